"""A scan's life: open (or resume) it under a lock, run the crawler, close it with its counters.

Two scans whose scopes overlap cannot run at once: a scan takes one :class:`storage.models.ScanLock`
row per office in its scope (an INSERT the primary key refuses to a second holder). A lock whose
holder process is gone (same host, pid no longer alive) or whose heartbeat is older than
:data:`STALE_AFTER_S` is taken over, so a scan killed with ``kill -9`` can be resumed at once.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from crawler.jobs import Scope, count_subjects, expand_offices, lock_names
from storage.config import Config
from storage.models import Finding, Scan, ScanLock, ScanStatus
from storage.streaks import ConfirmSummary, confirm_scan, pending_subjects
from storage.types import utcnow

log = logging.getLogger(__name__)

STALE_AFTER_S = 300
# Lock holder of a distributed scan: no single process holds it (the workers beat its heartbeat).
DISTRIBUTED_HOLDER = "workers@"


class ScanError(RuntimeError):
    """A scan cannot start or resume (the message says why, in Chinese)."""


class ScanLockedError(ScanError):
    """Another scan of an overlapping scope is running."""


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_alive(holder: str) -> bool:
    """Whether the process named by a lock's holder id may still be running."""
    if holder.startswith(DISTRIBUTED_HOLDER):
        return True  # the scan's workers, wherever they run: only the heartbeat can tell
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: only the heartbeat can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(row: Any) -> bool:
    if not holder_alive(row.holder):
        return True
    beat = row.heartbeat_at
    return beat is None or utcnow() - beat > timedelta(seconds=STALE_AFTER_S)


def _acquire(conn: Connection, names: list[str], scan_id: int, holder: str | None = None) -> None:
    holder = holder or holder_id()
    rows = conn.execute(sa.select(ScanLock).where(ScanLock.name.in_(names))).all() if names else []
    for row in rows:
        if row.scan_id == scan_id or _stale(row):
            conn.execute(sa.delete(ScanLock).where(ScanLock.name == row.name, ScanLock.holder == row.holder))
            continue
        office = row.name.removeprefix("office:")
        raise ScanLockedError(
            f"巡检 #{row.scan_id} 正在进行（{row.holder}），与本次范围重叠（编办 {office}），"
            f"请等待其结束；若它已中断，可用 --resume {row.scan_id} 续扫"
        )
    now = utcnow()
    if names:
        conn.execute(
            sa.insert(ScanLock),
            [
                {"name": n, "scan_id": scan_id, "holder": holder, "acquired_at": now, "heartbeat_at": now}
                for n in names
            ],
        )


def open_scan(
    db: Engine,
    scope: Scope,
    config: Config,
    *,
    render: str = "auto",
    resume: int | None = None,
    holder: str | None = None,
    again: bool = False,
) -> int:
    """Create a scan (or take up ``resume``) and take its locks; returns the scan id.

    ``holder`` names who holds the locks (default: this process; a distributed scan's are held by
    its workers, :data:`DISTRIBUTED_HOLDER`). ``again`` takes up a finished scan for its second pass."""
    try:
        with db.begin() as conn:
            if resume is not None:
                row = conn.execute(sa.select(Scan.status, Scan.scope).where(Scan.id == resume)).first()
                if row is None:
                    raise ScanError(f"巡检 #{resume} 不存在")
                if row.status == ScanStatus.FINISHED and not again:
                    raise ScanError(f"巡检 #{resume} 已完成，无需续扫")
                if row.status != ScanStatus.FINISHED and again:
                    raise ScanError(f"巡检 #{resume} 尚未完成，先续扫（--resume {resume}）再做第二遍")
                scan_id = resume
                scope = Scope.from_json(row.scope or {})
                conn.execute(
                    sa.update(Scan)
                    .where(Scan.id == scan_id)
                    .values(status=ScanStatus.RUNNING, heartbeat_at=utcnow(), finished_at=None)
                )
            else:
                raw = {**scope.to_json(), "render": render}
                scan_id = conn.execute(
                    sa.insert(Scan).returning(Scan.id),
                    {
                        "scope": raw,
                        "status": ScanStatus.RUNNING,
                        "started_at": utcnow(),
                        "heartbeat_at": utcnow(),
                        "counters": {},
                        "error": "",
                    },
                ).scalar_one()
            with Session(bind=conn) as s:
                names = lock_names(s, scope)
            _acquire(conn, names, scan_id, holder)
    except sa.exc.IntegrityError as exc:
        raise ScanLockedError("另一个范围重叠的巡检刚刚开始，请稍后再试") from exc
    return int(scan_id)


def close_scan(db: Engine, scan_id: int, status: str, counters: dict[str, Any], error: str = "") -> None:
    with db.begin() as conn:
        conn.execute(
            sa.update(Scan)
            .where(Scan.id == scan_id)
            .values(status=status, finished_at=utcnow(), counters=counters, error=error)
        )
        conn.execute(sa.delete(ScanLock).where(ScanLock.scan_id == scan_id))


def subjects_done(db: Engine, scan_id: int) -> int:
    with db.connect() as conn:
        q = sa.select(sa.func.count(sa.distinct(Finding.subject))).where(Finding.scan_id == scan_id)
        return int(conn.execute(q).scalar_one())


@dataclass
class ScanSummary:
    scan_id: int
    status: str
    counters: dict[str, Any] = field(default_factory=dict)


def crawler_process(
    config: Config, spider_cls: type[Any], settings_overrides: dict[str, Any]
) -> tuple[Any, Any, list[str]]:
    """A Scrapy process and crawler for ``spider_cls`` with our settings, and the list the crawler's
    close reasons are appended to (``["finished"]`` after a complete run)."""
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from crawler.context import reset_context
    from crawler.settings import build_settings

    reset_context(config)
    settings = build_settings(config, **settings_overrides)
    # Scrapy logs its start-up at INFO through the root handler: keep the terminal to our verbosity.
    for handler in logging.getLogger().handlers:
        if handler.level == logging.NOTSET:
            handler.setLevel(logging.getLogger().getEffectiveLevel())
    process = CrawlerProcess(settings)
    # Scrapy pins its own loggers to DEBUG; follow the command line's verbosity instead.
    logging.getLogger("scrapy").setLevel(logging.getLogger().getEffectiveLevel())
    crawler = process.create_crawler(spider_cls)
    close_reasons: list[str] = []

    def on_closed(spider: Any, reason: str) -> None:
        close_reasons.append(reason)

    crawler.signals.connect(on_closed, signal=signals.spider_closed, weak=False)
    return process, crawler, close_reasons


def run_scan(
    config: Config,
    *,
    office: str | None = None,
    limit: int | None = None,
    concurrency: int | None = None,
    render: str | None = None,
    resume: int | None = None,
    second_pass: int | None = None,
    stream: TextIO | None = None,
    settings_overrides: dict[str, Any] | None = None,
    skip_vantage: bool = False,
) -> ScanSummary:
    """Run one scan in this process (Scrapy's reactor: once per process).

    ``second_pass`` visits again the subjects of that finished scan whose failures are not confirmed
    yet (confirmation over time, ``storage/streaks.py``): their findings are replaced by the new visit's
    and the scan's failures are confirmed once more.

    First of all (before a scan is opened, resumed or its second pass clears anything) the vantage
    check (:mod:`crawler.vantage`) fetches the configured reference sites; when too few answer it raises
    :class:`crawler.vantage.VantageError` and nothing is written. ``skip_vantage`` leaves it out."""
    from crawler.progress import Progress
    from crawler.spiders.sites import SitesSpider
    from storage.db import make_engine

    if concurrency:
        config.concurrency = concurrency
    render_mode = render or config.render
    if render_mode not in ("auto", "never", "always"):
        raise ScanError(f"--render 只能是 auto、never 或 always，而不是 {render_mode!r}")
    vantage_gate(config, skip=skip_vantage, stream=stream)
    db = make_engine(config.database_url)
    earlier: dict[str, Any] = {}
    if second_pass is not None:
        pending = prepare_second_pass(db, second_pass)
        if pending is None:
            db.dispose()
            return ScanSummary(second_pass, str(ScanStatus.FINISHED), {"second_pass": {"subjects": 0}})
        earlier = pending
        resume = second_pass
    if resume is None:
        with Session(db) as s:
            try:
                offices = expand_offices(s, office)
            except LookupError as exc:
                raise ScanError(str(exc)) from exc
        scope = Scope(offices, limit)
    scan_id = open_scan(
        db,
        scope if resume is None else Scope(),
        config,
        render=render_mode,
        resume=resume,
        again=second_pass is not None,
    )
    with db.connect() as conn:
        raw_scope = conn.execute(sa.select(Scan.scope).where(Scan.id == scan_id)).scalar_one() or {}
    scope = Scope.from_json(raw_scope)
    if resume is not None and render is None:
        render_mode = raw_scope.get("render", render_mode)
    counts = count_subjects(db, scope)
    done = subjects_done(db, scan_id)
    progress = Progress(counts.total, done, stream=stream, label=f"[巡检 #{scan_id}] ")
    process, crawler, close_reasons = crawler_process(config, SitesSpider, settings_overrides or {})
    process.crawl(crawler, scan_id=scan_id, render=render_mode, progress=progress)
    status = ScanStatus.FAILED
    error = ""
    try:
        process.start()
        status = ScanStatus.FINISHED if close_reasons == ["finished"] else ScanStatus.INTERRUPTED
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        status = ScanStatus.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ScanStatus.FAILED
        raise
    finally:
        counters = progress.summary()
        counters["sites"] = counts.sites
        counters["domains"] = counts.domains
        counters["units"] = counts.units
        errors = crawler.stats.get_value("badgewatch/subject_errors", 0) if crawler.stats else 0
        counters["subject_errors"] = errors
        spider = crawler.spider
        flow = getattr(spider, "flow", None)
        if flow is not None:
            counters["renders"] = flow.renders
            counters["dns_lookups"] = flow.resolver.lookups
        if errors and status == ScanStatus.FINISHED:
            status = ScanStatus.INTERRUPTED
            error = f"{errors} 个对象处理出错，可用 --resume {scan_id} 重试"
        if earlier:  # a second pass: the night's figures stay, the pass is added to them
            counters = {**earlier["counters"], "second_pass": {**counters, "subjects": earlier["subjects"]}}
        if status == ScanStatus.FINISHED:
            counters["confirmation"] = confirm(db, scan_id, config).to_dict()
        close_scan(db, scan_id, str(status), counters, error)
        if status == ScanStatus.FINISHED:
            apply_retention(db, config)
        db.dispose()
    return ScanSummary(scan_id, str(status), counters)


def vantage_gate(config: Config, *, skip: bool = False, stream: TextIO | None = None) -> None:
    """The vantage check before a scan (or a worker) starts: raises
    :class:`crawler.vantage.VantageError` when too few reference sites answer; says how many did."""
    from crawler.vantage import require_vantage

    report = require_vantage(config, skip=skip)
    if report is not None:
        failed = "；".join(f"{p.url}：{p.message}" for p in report.probes if not p.ok)
        print(report.summary_line() + (f"（失败：{failed}）" if failed else ""), file=stream or sys.stderr)


def confirm(db: Engine, scan_id: int, config: Config) -> ConfirmSummary:
    """Settle which failures of a finished scan are confirmed (``confirm_interval_h`` apart)."""
    interval = timedelta(hours=max(0.0, config.confirm_interval_h))
    return confirm_scan(db, scan_id, interval, max(1, int(config.confirm_attempts)))


def prepare_second_pass(db: Engine, scan_id: int) -> dict[str, Any] | None:
    """Clear the findings of the subjects of ``scan_id`` with unconfirmed failures so that resuming the
    scan visits them again; ``{"subjects", "counters"}`` (None when nothing is pending). Their captures
    stay: the first visit's evidence is kept beside the second's."""
    with db.begin() as conn:
        row = conn.execute(sa.select(Scan.status, Scan.counters).where(Scan.id == scan_id)).first()
        if row is None:
            raise ScanError(f"巡检 #{scan_id} 不存在")
        if row.status != ScanStatus.FINISHED:
            raise ScanError(f"巡检 #{scan_id} 尚未完成，先续扫（--resume {scan_id}）再做第二遍")
    subjects = pending_subjects(db, scan_id)
    if not subjects:
        return None
    with db.begin() as conn:
        for i in range(0, len(subjects), 500):
            batch = subjects[i : i + 500]
            conn.execute(sa.delete(Finding).where(Finding.scan_id == scan_id, Finding.subject.in_(batch)))
    counters = dict(row.counters or {})
    counters.pop("confirmation", None)
    return {"subjects": len(subjects), "counters": counters}


def apply_retention(db: Engine, config: Config) -> None:
    """Apply the evidence retention setting after a finished scan (never fails the scan)."""
    from storage.evidence import EvidenceStore, prune_captures

    try:
        summary = prune_captures(db, EvidenceStore(config.evidence_dir), config.evidence_retention_days)
    except Exception:
        log.exception("evidence retention failed")
        return
    if summary.captures_deleted or summary.blobs_deleted:
        log.info("retention: %s", summary.to_dict())
