"""The crawler's own signals (Scrapy's way for its parts to talk; sent on ``crawler.signals``).

The store pipeline (:mod:`crawler.pipelines`) announces what became of the subjects it was given; a
distributed worker's spider (:mod:`crawler.spiders.distributed`) listens to settle its leases. Counts go
to ``crawler.stats`` instead (:mod:`crawler.progress`). Nobody reaches into another part's attributes.

Arguments are keywords, as Scrapy sends them:

* :data:`subjects_written` ``(subjects, stats)`` — the findings of ``subjects`` are committed (sent
  from the writer thread, right after the commit); ``stats`` counts requests and subjects written.
* :data:`subjects_settled` ``(subjects)`` — the pipeline is done with ``subjects`` (written or not).
* :data:`subjects_unwritten` ``(subjects)`` — writing ``subjects`` failed: nothing of theirs is stored.
"""

from __future__ import annotations

subjects_written = object()
subjects_settled = object()
subjects_unwritten = object()
