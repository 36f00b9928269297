"""Item pipeline: findings and captures go to the database in batches, one transaction per batch.

A subject's capture and all its findings are written in the same transaction, so after a ``kill -9``
a subject is either complete in the database or absent (and a resumed scan redoes it): none is
missing, none is stored twice (the unique (scan, subject, check) constraint also guards this).

Writes are idempotent per (scan, subject): a subject that already has findings in the scan is left
out of the batch. In a distributed scan two workers may finish the same subject (a lease that expired
while its worker stalled, then was taken by another); on PostgreSQL the writers of one scan take a
transaction-scoped advisory lock, so the check and the insert cannot interleave. What became of each
subject is announced with the crawler's signals (:mod:`crawler.signals`): a distributed worker
acknowledges its subjects in Redis once their transaction committed; the counters are kept in
``crawler.stats`` (:class:`crawler.progress.Counters`).

No subject's data can fail the others of its batch: text is made storable (NUL characters, which
PostgreSQL refuses in text and JSON, and unpaired surrogates, which no database encodes), and when a
batch is refused all the same its subjects are written one by one; a subject that still cannot be
written is stored as ``unknown/internal_error`` with the reason, as if its procedure had raised.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from scrapy.utils.defer import maybe_deferred_to_future
from sqlalchemy.engine import Engine
from twisted.internet import task, threads

from crawler import signals
from crawler.checking import confirmed_at_once, internal_error_verdicts
from crawler.findings import jsonable, storable, verdict_columns
from crawler.progress import SUBJECT_ERRORS, Counters
from crawler.records import CaptureRecord, SubjectResult
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
        # Counts what is stored (crawler.stats when run by a crawler).
        self.progress: Counters | None = None
        self._loop: Any = None
        self._crawler: Any = None
        self._writing: Any = None
        self.write_errors = 0

    def open_spider(self, spider: Any = None) -> None:
        spider = spider or self._spider
        self.db = spider.db
        self.scan_id = spider.scan_id
        self._loop = task.LoopingCall(self._tick)
        self._loop.start(FLUSH_EVERY_S, now=False)

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        pipe = cls()
        pipe._crawler = crawler
        pipe.progress = Counters(crawler.stats)
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
        d = threads.deferToThread(self._write, batch, self._acknowledge)

        def written(outcome: tuple[list[str], list[tuple[SubjectResult, SubjectResult]]]) -> Any:
            unwritable, replaced = outcome
            for original, stand_in in replaced:
                self._restate(original, stand_in)
            if unwritable:
                self._unwritten(unwritable)
            self._send(signals.subjects_settled, subjects=subjects)
            return outcome

        def done(result: Any) -> Any:
            self._writing = None
            if len(self.buffer) >= BATCH:
                self.flush()
            return result

        def failed(failure: Any) -> None:
            # A failed write loses nothing: those subjects have no findings and a resume redoes them
            # (a distributed worker hands them back to the frontier at once).
            log.error("writing %d results failed: %s", len(batch), failure.getErrorMessage())
            self._unwritten(subjects)

        d.addCallbacks(written, failed)
        d.addBoth(done)
        self._writing = d

    def _send(self, signal: object, **kwargs: Any) -> list[tuple[Any, Any]]:
        """Announce on the crawler's signals (:mod:`crawler.signals`); the receivers' answers."""
        if self._crawler is None:
            return []
        answers: list[tuple[Any, Any]] = self._crawler.signals.send_catch_log(signal, **kwargs)
        return answers

    def _acknowledge(self, subjects: list[str], stats: dict[str, int]) -> None:
        """In the writer thread, right after the commit (a worker acknowledges them in Redis)."""
        self._send(signals.subjects_written, subjects=subjects, stats=stats)

    def _unwritten(self, subjects: list[str]) -> None:
        self.write_errors += len(subjects)
        if not self._send(signals.subjects_unwritten, subjects=subjects) and self._crawler is not None:
            # Nobody takes them back (a single-process scan): they count as errors, resumed later.
            self._crawler.stats.inc_value(SUBJECT_ERRORS, len(subjects))

    def _restate(self, original: SubjectResult, stand_in: SubjectResult) -> None:
        """The counters count what is stored: the stand-in's verdicts, not the refused ones."""
        if self.progress is not None:
            self.progress.restate(original, stand_in)

    def _write(
        self, batch: list[FinalResult], acknowledge: Any
    ) -> tuple[list[str], list[tuple[SubjectResult, SubjectResult]]]:
        """Write ``batch`` (in a thread); returns the subjects that could not be written at all, and the
        results stored as internal errors instead (with their stand-ins)."""
        assert self.db is not None
        replaced: list[tuple[SubjectResult, SubjectResult]] = []
        try:
            n = write_batch(self.db, self.scan_id, batch)
            written, unwritable = [fr.result.subject for fr in batch], list[str]()
        except Exception as exc:
            log.warning("writing %d results failed (%s): writing them one by one", len(batch), exc)
            n, written, unwritable = write_separately(self.db, self.scan_id, batch, replaced)
        if acknowledge is not None and written:
            done = set(written)
            requests = sum(
                int(getattr(fr.result, "requests", 0)) for fr in batch if fr.result.subject in done
            )
            acknowledge(written, {"requests": requests, "subjects": n})
        return unwritable, replaced


def write_separately(
    db: Engine,
    scan_id: int,
    batch: list[FinalResult],
    replaced: list[tuple[SubjectResult, SubjectResult]] | None = None,
) -> tuple[int, list[str], list[str]]:
    """Write each subject of a refused batch in a transaction of its own; a subject refused alone is
    written as ``unknown/internal_error`` instead (appended to ``replaced`` with its stand-in). Returns
    (subjects written, their names, the names of those not written at all). When even the stand-in of
    a subject is refused, the database itself is failing: the rest of the batch is left unwritten (a
    resume redoes it) rather than tried in vain.
    """
    n = 0
    written: list[str] = []
    for k, fr in enumerate(batch):
        subject = fr.result.subject
        try:
            n += write_batch(db, scan_id, [fr])
            written.append(subject)
            continue
        except Exception as exc:
            log.exception("writing the findings of %s failed", subject)
            stand_in = FinalResult(unwritable_result(fr.result, exc), {})
        try:
            n += write_batch(db, scan_id, [stand_in])
            written.append(subject)
            if replaced is not None:
                replaced.append((fr.result, stand_in.result))
        except Exception:
            log.exception("writing %s as an internal error failed too", subject)
            return n, written, [f.result.subject for f in batch[k:]]
    return n, written, []


def unwritable_result(result: SubjectResult, exc: BaseException) -> SubjectResult:
    """The stand-in of a result the database refused: every check ``unknown/internal_error`` with the
    reason, and a capture with nothing but the address (the refused evidence is not kept)."""
    detail = storable(f"storing the findings failed: {type(exc).__name__}: {exc}"[:500])
    capture = CaptureRecord(
        url=storable(result.capture.url)[:2000],
        started=result.capture.started,
        error=f"internal_error: {detail}",
        attempt=result.capture.attempt,
    )
    return SubjectResult(
        result.subject,
        result.website_id,
        result.domain_id,
        internal_error_verdicts(result.subject, detail),
        capture,
        result.requests,
        unit_id=result.unit_id,
    )


# Class id of the advisory locks that serialise the writers of one scan (PostgreSQL); the object id is
# the scan id.
ADVISORY_LOCK_CLASS = 0x6277  # "bw"


def write_batch(db: Engine, scan_id: int, batch: list[FinalResult]) -> int:
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
            _insert(conn, scan_id, fresh)
        now = utcnow()
        conn.execute(sa.update(Scan).where(Scan.id == scan_id).values(heartbeat_at=now))
        conn.execute(sa.update(ScanLock).where(ScanLock.scan_id == scan_id).values(heartbeat_at=now))
    if len(fresh) < len(batch):
        log.info("%d of %d subjects already had findings: skipped", len(batch) - len(fresh), len(batch))
    return len(fresh)


def _insert(conn: Any, scan_id: int, batch: list[FinalResult]) -> None:
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
                "url": storable(c.url)[:2000],
                "final_url": storable(c.final_url)[:2000],
                "status": c.status,
                "started": c.started,
                "duration": c.duration,
                "error": storable(c.error),
                "http_chain": jsonable(c.http_chain),
                "dns": jsonable(c.dns),
                "body_blob": c.body_blob,
                "headers_blob": c.headers_blob,
                "rendered_blob": c.rendered_blob,
                "screenshot_blob": c.screenshot_blob,
                "subresources": jsonable(c.subresources),
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
            # Network-observed failures are settled when the scan is done (storage/streaks.py).
            confirmed = confirmed_at_once(v)
            rows.append(
                {
                    "scan_id": scan_id,
                    "website_id": r.website_id,
                    "domain_id": r.domain_id,
                    "unit_id": r.unit_id,
                    "subject": r.subject,
                    **verdict_columns(v),
                    "attempts": attempts,
                    "confirmed": confirmed,
                    "capture_id": cap_id,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if rows:
        conn.execute(sa.insert(Finding), rows)
