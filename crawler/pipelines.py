"""Item pipeline: findings and captures go to the database in batches, one transaction per batch.

A subject's capture and all its findings are written in the same transaction, so after a ``kill -9``
a subject is either complete in the database or absent (and a resumed scan redoes it): none is
missing, none is stored twice (the unique (scan, subject, check) constraint also guards this).

Writes are idempotent per (scan, subject): a subject that already has findings in the scan is left
out of the batch. In a distributed scan two workers may finish the same subject (a lease that expired
while its worker stalled, then was taken by another); on PostgreSQL the writers of one scan take a
transaction-scoped advisory lock, so the check and the insert cannot interleave. A distributed worker
acknowledges its subjects in Redis once their transaction committed (``spider.subjects_written``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from scrapy.utils.defer import maybe_deferred_to_future
from sqlalchemy.engine import Engine
from twisted.internet import threads

from crawler.checking import confirmed_at_once
from crawler.progress import Progress
from crawler.spiders.sites import FinalResult
from storage.models import Capture, Finding, Scan, ScanLock
from storage.types import utcnow

log = logging.getLogger(__name__)

BATCH = 200
FLUSH_EVERY_S = 1.0


class StorePipeline:
    def __init__(self) -> None:
        self.buffer: list[FinalResult] = []
        self.last_flush = time.monotonic()
        self.db: Engine | None = None
        self.scan_id = 0
        self.confirm_attempts = 1
        self.progress: Progress | None = None
        self._loop: Any = None
        self._crawler: Any = None
        self._writing: Any = None
        self.write_errors = 0

    def open_spider(self, spider: Any = None) -> None:
        spider = spider or self._spider
        self.db = spider.db
        self.scan_id = spider.scan_id
        self.confirm_attempts = spider.confirm_attempts
        self.progress = getattr(spider, "progress", None)
        from twisted.internet import task

        self._loop = task.LoopingCall(self._tick)
        self._loop.start(FLUSH_EVERY_S, now=False)

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        pipe = cls()
        pipe._crawler = crawler
        return pipe

    @property
    def _spider(self) -> Any:
        return self._crawler.spider

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, FinalResult):
            return item
        self.buffer.append(item)
        if self.progress is not None:
            self.progress.record(item.result)
        if len(self.buffer) >= BATCH:
            self.flush()
        return item

    def _tick(self) -> None:
        if self.buffer and time.monotonic() - self.last_flush >= FLUSH_EVERY_S:
            self.flush()
        if self.progress is not None:
            self.progress.maybe_print()

    async def close_spider(self, spider: Any = None) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        while self._writing is not None:
            await maybe_deferred_to_future(self._writing)
        self.flush()
        while self._writing is not None:
            await maybe_deferred_to_future(self._writing)

    def flush(self) -> None:
        """Hand the buffer to a writer thread (one batch at a time; the reactor keeps crawling)."""
        if not self.buffer or self.db is None or self._writing is not None:
            return
        self.last_flush = time.monotonic()
        batch, self.buffer = self.buffer, []
        subjects = [fr.result.subject for fr in batch]
        spider = self._crawler.spider if self._crawler is not None else None
        acknowledge = getattr(spider, "subjects_written", None)
        d = threads.deferToThread(self._write, batch, acknowledge)

        def written(result: Any) -> Any:
            settled = getattr(spider, "subjects_settled", None)
            if settled is not None:
                settled(subjects)
            return result

        def done(result: Any) -> Any:
            self._writing = None
            if len(self.buffer) >= BATCH:
                self.flush()
            return result

        def failed(failure: Any) -> None:
            # A failed write loses nothing: those subjects have no findings and a resume redoes them
            # (a distributed worker hands them back to the frontier at once).
            log.error("writing %d results failed: %s", len(batch), failure.getErrorMessage())
            self.write_errors += len(batch)
            unwritten = getattr(spider, "subjects_unwritten", None)
            if unwritten is not None:
                unwritten(subjects)
            elif self._crawler is not None and self._crawler.stats is not None:
                self._crawler.stats.inc_value("badgewatch/subject_errors", len(batch))

        d.addCallbacks(written, failed)
        d.addBoth(done)
        self._writing = d

    def _write(self, batch: list[FinalResult], acknowledge: Any) -> int:
        assert self.db is not None
        n = write_batch(self.db, self.scan_id, batch, self.confirm_attempts)
        if acknowledge is not None:
            requests = sum(int(getattr(fr.result, "requests", 0)) for fr in batch)
            acknowledge([fr.result.subject for fr in batch], {"requests": requests, "subjects": n})
        return n


# Class id of the advisory locks that serialise the writers of one scan (PostgreSQL); the object id is
# the scan id.
ADVISORY_LOCK_CLASS = 0x6277  # "bw"


def write_batch(db: Engine, scan_id: int, batch: list[FinalResult], confirm_attempts: int) -> int:
    """Write captures and findings of ``batch`` in one transaction; beat the scan's heartbeat.

    Subjects that already have findings in the scan are skipped (idempotent per (scan, subject));
    returns how many subjects were written."""
    with db.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_CLASS, scan_id)))
        present = set(
            conn.execute(
                sa.select(Finding.subject)
                .where(Finding.scan_id == scan_id, Finding.subject.in_({fr.result.subject for fr in batch}))
                .distinct()
            ).scalars()
        )
        seen: set[str] = set()
        fresh = []
        for fr in batch:
            subject = fr.result.subject
            if subject in present or subject in seen:
                continue
            seen.add(subject)
            fresh.append(fr)
        if fresh:
            _insert(conn, scan_id, fresh, confirm_attempts)
        now = utcnow()
        conn.execute(sa.update(Scan).where(Scan.id == scan_id).values(heartbeat_at=now))
        conn.execute(sa.update(ScanLock).where(ScanLock.scan_id == scan_id).values(heartbeat_at=now))
    if len(fresh) < len(batch):
        log.info("%d of %d subjects already had findings: skipped", len(batch) - len(fresh), len(batch))
    return len(fresh)


def _insert(conn: Any, scan_id: int, batch: list[FinalResult], confirm_attempts: int) -> None:
    cap_rows = []
    # Unit-level results are decided from the registry (no visit): their findings carry no capture.
    captured = [fr for fr in batch if fr.result.unit_id is None]
    for fr in captured:
        r, c = fr.result, fr.result.capture
        cap_rows.append(
            {
                "scan_id": scan_id,
                "website_id": r.website_id,
                "domain_id": r.domain_id,
                "subject": r.subject,
                "attempt": c.attempt,
                "url": c.url[:2000],
                "final_url": c.final_url[:2000],
                "status": c.status,
                "started": c.started,
                "duration": c.duration,
                "error": c.error,
                "http_chain": c.http_chain,
                "dns": c.dns,
                "body_blob": c.body_blob,
                "headers_blob": c.headers_blob,
                "rendered_blob": c.rendered_blob,
                "screenshot_blob": c.screenshot_blob,
                "subresources": c.subresources,
            }
        )
    now = utcnow()
    ids = (
        conn.execute(sa.insert(Capture).returning(Capture.id, sort_by_parameter_order=True), cap_rows)
        .scalars()
        .all()
        if cap_rows
        else []
    )
    capture_of = {id(fr): cap_id for fr, cap_id in zip(captured, ids, strict=True)}
    rows = []
    for fr in batch:
        r = fr.result
        cap_id = capture_of.get(id(fr))
        for v in r.verdicts:
            attempts = fr.agreed.get(v.check, 1)
            confirmed = confirmed_at_once(v) or attempts >= confirm_attempts
            rows.append(
                {
                    "scan_id": scan_id,
                    "website_id": r.website_id,
                    "domain_id": r.domain_id,
                    "unit_id": r.unit_id,
                    "subject": r.subject,
                    "check": v.check,
                    "status": str(v.status),
                    "reason": v.reason,
                    "detail": v.detail,
                    "evidence": [e.to_dict() for e in v.evidence],
                    "data": _jsonable(dict(v.data)),
                    "attempts": attempts,
                    "confirmed": confirmed,
                    "capture_id": cap_id,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if rows:
        conn.execute(sa.insert(Finding), rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
