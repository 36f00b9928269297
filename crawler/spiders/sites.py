"""The ``sites`` spider: every website and every domain of a scan's scope.

Each subject enters as one cheap local ``data:`` request (so Scrapy's scheduler, not our code, orders
the work, and the scope is streamed lazily from the database); its callback then runs the subject's
whole procedure (:class:`crawler.flow.Flow`) with real requests through Scrapy's downloader. A subject
whose verdicts include a ``fail`` or a transient ``unknown`` goes back to the scheduler for another
attempt later in the scan; only the last attempt is stored, with how many attempts agreed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import sqlalchemy as sa
from scrapy import Request, Spider
from scrapy.http import Response
from sqlalchemy.engine import Engine

from checks.verdict import Verdict
from crawler import checking, conac_cache
from crawler.certs import CertJudge
from crawler.context import ScanContext, get_context
from crawler.fetcher import ScrapyFetcher
from crawler.flow import Flow, SubjectResult
from crawler.frontier import AddressFrontier
from crawler.jobs import DomainJob, Job, Scope, iter_jobs
from crawler.middlewares import target_address
from crawler.progress import DNS_LOOKUPS, IN_FLIGHT, RENDERS, SUBJECT_ERRORS, Counters
from crawler.render import Renderer
from crawler.scanlocks import close_scan, open_scan
from storage.config import Config
from storage.db import make_engine
from storage.evidence import EvidenceStore
from storage.models import Scan

log = logging.getLogger(__name__)

ENTRY_URL = "data:,"


class SitesSpider(Spider):
    """Visits the subjects of one scan.

    Constructor arguments (``process.crawl(crawler, scan_id=…, render=…)``, or ``scrapy crawl sites
    -a scan_id=N -a render=auto``): ``scan_id`` the scan to work on (without it, one is opened here
    and closed when the spider closes); ``render`` the browser rendering mode (default: the scan's).

    Everything else is built in :meth:`setup` from the crawler's settings and the scan's row, and is
    read by the other parts only through these declared attributes (the pipeline: ``db`` and
    ``scan_id``). Counters go to ``crawler.stats`` (:mod:`crawler.progress`); what becomes of stored
    subjects comes back as signals (:mod:`crawler.signals`)."""

    name = "sites"

    scan_id: int | None  # the scan (set in setup when the spider opens it itself)
    render_arg: str | None  # the render mode asked for; None: the scan's, then the configuration's
    own_scan: bool  # opened by this spider (``scrapy crawl sites``): closed by it too
    context: ScanContext  # resolver, politeness, address guard, TLS memory of this process
    config: Config
    db: Engine
    scope: Scope  # offices and limit of the scan
    renderer_obj: Renderer | None  # the browser, when rendering is not ``never``
    flow: Flow  # a subject's whole procedure
    confirm_attempts: int  # attempts at a failing subject within the scan
    confirm_delay: float  # seconds between them
    slots: asyncio.Semaphore  # subjects in flight, bounded (memory stays flat)

    def __init__(self, scan_id: int | str | None = None, render: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scan_id = int(scan_id) if scan_id is not None else None
        self.render_arg = render
        self.own_scan = False

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> SitesSpider:
        spider: SitesSpider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup()
        return spider

    def setup(self) -> None:
        ctx = get_context(self.crawler.settings)
        self.context = ctx
        config = ctx.config
        self.config = config
        self.db = make_engine(config.database_url)
        if self.scan_id is None:
            # `scrapy crawl sites` without a scan id: open one here, as `badgewatch scan` would.
            self.scan_id = open_scan(self.db, Scope(), config, render=self.render_arg or config.render)
            self.own_scan = True
        with self.db.connect() as conn:
            scope_raw = conn.execute(sa.select(Scan.scope).where(Scan.id == self.scan_id)).scalar_one()
        self.scope = Scope.from_json(scope_raw or {})
        render_mode = self.render_arg or (scope_raw or {}).get("render") or config.render
        renderer = None
        rules = checking.rules_from_config(config)
        # CONAC's answers kept across scans
        fetcher = conac_cache.wrap(ScrapyFetcher(self.crawler), config, rules)
        self.renderer_obj = None
        if render_mode != "never":
            self.renderer_obj = Renderer(ctx, fetcher)
            renderer = self.renderer_obj.render
        self.flow = Flow(
            fetcher,
            ctx.resolver,
            EvidenceStore(config.evidence_dir),
            rules,
            CertJudge(config.ca_file, config.intermediates_file),
            max_body=config.max_body_bytes,
            max_subresources=config.max_subresources,
            render_mode=render_mode,
            renderer=renderer,
            today=date.today(),
        )
        self.confirm_attempts = max(1, int(config.confirm_attempts))
        self.confirm_delay = config.confirm_delay_s
        # Subjects in flight are bounded so memory stays flat whatever the registry size.
        self.slots = asyncio.Semaphore(max(16, config.concurrency * 2))

    async def start(self) -> AsyncIterator[Request]:
        assert self.scan_id is not None
        jobs = iter_jobs(self.db, self.scope, self.scan_id)
        politeness = self.context.politeness
        if politeness is None:  # no per-address politeness configured: the registry's order
            for job in jobs:
                await self.slots.acquire()
                yield self._entry(job, first=time.monotonic())
            return
        frontier = AddressFrontier(jobs, politeness, lambda host: target_address(self.context, host))
        async for job, address in frontier:
            await self.slots.acquire()
            yield self._entry(job, first=time.monotonic(), address=address)
        self.crawler.stats.set_value("badgewatch/deferred_subjects", frontier.deferrals)

    def _entry(self, job: Job, first: float, priority: int = 0, address: str = "") -> Request:
        if job.attempt == 1:  # a subject starts (its later attempts re-enter until _done)
            self.crawler.stats.inc_value(IN_FLIGHT)
        return Request(
            ENTRY_URL,
            callback=self.run_job,
            errback=self.job_failed,
            dont_filter=True,
            priority=priority,
            meta={"job": job, "first": first, "download_slot": "entry", "address": address},
        )

    def _done(self, address: str) -> None:
        """A subject ends: its slot and its address's count of subjects in flight are freed."""
        self.crawler.stats.inc_value(IN_FLIGHT, -1)
        self.slots.release()
        if address and self.context.politeness is not None:
            self.context.politeness.finished(address)

    async def run_job(self, response: Response) -> AsyncIterator[Any]:
        job: Job = response.meta["job"]
        first: float = response.meta["first"]
        address: str = response.meta.get("address", "")
        if job.attempt > 1:
            wait = self.confirm_delay - (time.monotonic() - first)
            if wait > 0:
                await asyncio.sleep(wait)
        try:
            result = await self.flow.run(job)
        except Exception:
            # A bug must not lose the subject silently: it stays without findings (resume redoes it).
            log.exception("subject %s failed", job.subject)
            self._done(address)
            self.crawler.stats.inc_value(SUBJECT_ERRORS)
            self.subject_failed(job)
            return
        if checking.needs_confirmation(result.verdicts) and job.attempt < self.confirm_attempts:
            job.history.append(_summary(result.verdicts))
            job.attempt += 1
            yield self._entry(job, first, priority=-10, address=address)
            return
        result.capture.attempt = job.attempt
        agreed = _agreement(job.history, result.verdicts)
        self._done(address)
        yield FinalResult(result, agreed)

    async def job_failed(self, failure: Any) -> None:
        log.error("entry request failed: %s", failure)
        request = getattr(failure, "request", None)
        self._done(request.meta.get("address", "") if request is not None else "")
        # The subject has no findings: the scan ends "interrupted" and a resume visits it again.
        self.crawler.stats.inc_value(SUBJECT_ERRORS)
        job = request.meta.get("job") if request is not None else None
        if job is not None:
            self.subject_failed(job)

    def subject_failed(self, job: Job) -> None:
        """A subject ends without findings (its procedure raised); a distributed worker gives it up."""

    async def closed(self, reason: str) -> None:
        # The flow's own counts join the scan's counters.
        self.crawler.stats.set_value(RENDERS, self.flow.renders)
        self.crawler.stats.set_value(DNS_LOOKUPS, self.flow.resolver.lookups)
        if self.renderer_obj is not None:
            await self.renderer_obj.aclose()
        if self.own_scan and self.scan_id is not None:
            # Opened by `scrapy crawl sites` itself: close it (`badgewatch scan` closes its own).
            counters = Counters(self.crawler.stats)
            summary = {
                "subjects": counters.done,
                "by_status": counters.by_status,
                "problems": counters.problems,
            }
            close_scan(self.db, self.scan_id, "finished" if reason == "finished" else "interrupted", summary)


class FinalResult:
    """A subject's final attempt, with per check how many attempts agreed with the final verdict."""

    __slots__ = ("agreed", "result")

    def __init__(self, result: SubjectResult, agreed: dict[str, int]) -> None:
        self.result = result
        self.agreed = agreed


def _summary(verdicts: list[Verdict]) -> dict[str, tuple[str, str]]:
    return {v.check: (str(v.status), v.reason) for v in verdicts}


def _agreement(history: list[dict[str, tuple[str, str]]], verdicts: list[Verdict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in verdicts:
        final = (str(v.status), v.reason)
        out[v.check] = 1 + sum(1 for h in history if h.get(v.check) == final)
    return out


__all__ = ["DomainJob", "FinalResult", "SitesSpider"]
