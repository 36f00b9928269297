"""The ``sites_distributed`` spider: a worker of a distributed scan (``badgewatch worker``).

The same procedure as :class:`crawler.spiders.sites.SitesSpider`, but its subjects come from the
scan's shared frontier in Redis (:class:`crawler.distributed.Frontier`) instead of the database. It is
a scrapy-redis :class:`~scrapy_redis.spiders.RedisMixin` spider: ``setup_redis`` connects it (the
``REDIS_URL`` setting), ``fetch_data`` pops a batch of subjects — as leases, see below — and
``next_requests`` turns them into the usual cheap ``data:`` entry requests (one registry query per
batch, :func:`crawler.jobs.load_jobs`), and the ``spider_idle`` hook keeps the spider open while other
workers still hold leases. On top of that, :meth:`start` streams batches whenever the worker has room,
so the downloader never waits for the spider to go idle before it gets more work.

Every subject taken is leased to this worker; the worker renews its leases every third of
``lease_timeout_s`` and acknowledges a subject once the pipeline has committed its findings. Retries
for confirmation stay inside the worker that holds the lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy import Request
from scrapy.exceptions import DontCloseSpider
from scrapy_redis.spiders import RedisMixin
from twisted.internet import task

from crawler import signals
from crawler.distributed import Frontier, connect, worker_id
from crawler.jobs import Job, load_jobs
from crawler.spiders.sites import SitesSpider

log = logging.getLogger(__name__)

POLL_S = 0.5  # wait before asking again when the frontier is empty but leases are still held
BATCH = 64  # subjects per pop


class DistributedSitesSpider(RedisMixin, SitesSpider):  # type: ignore[misc]
    name = "sites_distributed"
    redis_batch_size = BATCH
    max_idle_time = 0

    worker: str  # this worker's id in the frontier's leases (``host:pid`` by default)
    held: set[str]  # subjects leased to this worker and not yet settled
    frontier: Frontier
    capacity: int  # subjects this worker holds at most

    def __init__(
        self,
        scan_id: int | str | None = None,
        render: str | None = None,
        worker: str | None = None,
        **kw: Any,
    ) -> None:
        """``scan_id`` is required (the distributed scan to work on); ``worker`` names this worker."""
        if scan_id is None:
            raise ValueError("a distributed worker needs the scan id (-a scan_id=N)")
        super().__init__(scan_id=scan_id, render=render, **kw)
        self.worker = worker or worker_id()
        self.held: set[str] = set()
        self.gone = 0

    def setup(self) -> None:
        super().setup()
        assert self.scan_id is not None
        self.frontier = Frontier(
            connect(self.config.redis_url),
            self.config.redis_prefix,
            self.scan_id,
            self.config.lease_timeout_s,
        )
        self.redis_key = self.frontier.pending
        self.setup_redis(self.crawler)
        # scrapy-redis pops and forgets (LPOP): ours leases instead, on the same key.
        self.fetch_data = self._take
        self.capacity = max(16, self.config.concurrency * 2)
        self._renewer: Any = None
        # What the store pipeline did with our subjects (crawler/signals.py).
        on = self.crawler.signals.connect
        on(self.subjects_written, signal=signals.subjects_written)
        on(self.subjects_settled, signal=signals.subjects_settled)
        on(self.subjects_unwritten, signal=signals.subjects_unwritten)

    def _start_renewing(self) -> None:
        # Not in setup(): the looping call needs the reactor, which Scrapy installs after the spider.
        self._renewer = task.LoopingCall(self._renew)
        self._renewer.start(max(0.2, self.config.lease_timeout_s / 3), now=True)

    # --- taking work ------------------------------------------------------------------------------------

    def _take(self, key: str, n: int) -> list[str]:
        subjects = self.frontier.take(self.worker, n)
        self.held.update(subjects)
        return subjects

    def _load(self, subjects: list[str]) -> tuple[list[Job], list[str]]:
        """The jobs of ``subjects``, and those gone from the registry mid-scan (acknowledged here:
        nothing is left to check for them). Runs in a thread."""
        jobs = load_jobs(self.db, subjects)
        found = {j.subject for j in jobs}
        gone = [s for s in subjects if s not in found]
        if gone:
            self.subjects_written(gone, {"gone": len(gone)})
        return jobs, gone

    def next_requests(self) -> Iterator[Request]:
        """A batch from the frontier as entry requests (scrapy-redis's idle hook calls this)."""
        free = self.capacity - len(self.held)
        if free <= 0:
            return
        subjects = self.fetch_data(self.redis_key, min(free, self.redis_batch_size))
        jobs, gone = self._load(subjects)
        self.subjects_settled(gone)
        for job in jobs:
            yield self._entry(job, first=time.monotonic())

    async def start(self) -> AsyncIterator[Request]:
        self._start_renewing()
        batch = int(self.redis_batch_size or BATCH)
        while True:
            free = self.capacity - len(self.held)
            if free < min(batch, self.capacity) // 2:
                await asyncio.sleep(0.02)
                continue
            # Redis and the registry are asked from a thread; ``held`` is only touched on the loop.
            subjects = await asyncio.to_thread(self.frontier.take, self.worker, min(free, batch))
            if subjects:
                self.held.update(subjects)
                jobs, gone = await asyncio.to_thread(self._load, subjects)
                self.subjects_settled(gone)
                for job in jobs:
                    yield self._entry(job, first=time.monotonic())
                continue
            status = await asyncio.to_thread(self.frontier.status)
            if status.drained:
                return
            await asyncio.sleep(POLL_S)

    def spider_idle(self) -> None:
        """Close only when no subject is left anywhere: neither pending nor leased by any worker."""
        self.schedule_next_requests()
        if self.held or not self.frontier.drained():
            raise DontCloseSpider

    # --- leases -----------------------------------------------------------------------------------------

    def _renew(self) -> None:
        try:
            lost = self.frontier.renew(self.worker, list(self.held))
        except Exception:
            # Redis briefly unreachable: the leases last lease_timeout_s; the next round tries again.
            log.exception("renewing leases failed")
            return
        if lost:
            # Our lease expired (a long stall) and another worker took them: both may finish them;
            # the findings are written once (write_batch skips subjects that already have them).
            log.warning("%d leases were lost to other workers", len(lost))

    def subjects_written(self, subjects: list[str], stats: dict[str, int] | None = None) -> None:
        """The findings of ``subjects`` are committed: acknowledge them (called from a thread)."""
        self.frontier.ack(subjects, stats)

    def subjects_settled(self, subjects: list[str]) -> None:
        """``subjects`` are acknowledged or released: this worker no longer holds them."""
        self.held.difference_update(subjects)

    def subjects_unwritten(self, subjects: list[str]) -> bool:
        """Writing ``subjects`` failed: hand them back to the frontier at once (True: taken back)."""
        try:
            self.frontier.release(subjects)
        except Exception:
            log.exception("releasing %d subjects failed (their leases expire instead)", len(subjects))
        self.held.difference_update(subjects)
        return True

    def subject_failed(self, job: Job) -> None:
        self.frontier.fail([job.subject])
        self.held.discard(job.subject)

    async def closed(self, reason: str) -> None:
        if self._renewer is not None and self._renewer.running:
            self._renewer.stop()
        await super().closed(reason)


__all__ = ["DistributedSitesSpider"]
