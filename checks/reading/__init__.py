"""The reading layer of the checks: what a page shows, as typed facts, with every speed trick.

Reading never judges: it knows nothing of reason codes or verdicts. It turns a
:class:`~checks.page.Page` into facts — :class:`~checks.reading.sightings.NumberSightings` (every match of
an identifier's pattern in visible text and what could not be read),
:class:`~checks.reading.sitecode_sources.SiteCodeSightings`, :class:`~checks.reading.badge_facts.BadgeFacts`
(badge candidates, kind signals, the verification page) — and says which sub-resources would let it read
more. The judging modules (:mod:`checks.badge`, :mod:`checks.icp`, :mod:`checks.police`,
:mod:`checks.sitecode`) turn facts, :class:`~checks.expected.Expected` and :class:`~checks.rules.Rules`
into a verdict. Whatever is derived from a document or a page is kept in ``Document.memo`` /
``Page.memo`` and freed with it (``docs/bench/checks.md`` says why).

Modules: ``lines`` (line index), ``visible`` (visible text and its source map), ``contexts`` (where the
trigger words are), ``scripts`` (which scripts run and what they write), ``sightings`` (number
sightings), ``sitecode_sources``, ``badge_hosts`` (where CONAC hosts occur: the fast paths),
``badge_scan`` (badge candidates), ``badge_facts`` (kind signals and the verification page).
"""
