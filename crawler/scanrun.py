"""A scan's life: open (or resume) it under its locks (:mod:`crawler.scanlocks`), run the crawler,
close it with its counters."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import sqlalchemy as sa
from scrapy import signals
from scrapy.crawler import CrawlerProcess
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crawler.checking import rules_from_config
from crawler.context import reset_context
from crawler.jobs import Scope, count_subjects, expand_offices
from crawler.progress import SUBJECT_ERRORS, Progress
from crawler.scanlocks import ScanError, close_scan, open_scan, subjects_done
from crawler.scanlog import ScanLog, scan_log
from crawler.settings import build_settings
from crawler.spiders.sites import SitesSpider
from crawler.vantage import require_vantage
from storage.config import Config
from storage.db import make_engine
from storage.evidence import EvidenceStore, prune_captures
from storage.models import Finding, Scan, ScanStatus
from storage.streaks import confirm, pending_subjects

log = logging.getLogger(__name__)


@dataclass
class ScanSummary:
    scan_id: int
    status: str
    counters: dict[str, Any] = field(default_factory=dict)
    log_path: str = ""  # the scan's log file (crawler/scanlog.py)
    library_records: int = 0  # Scrapy/Twisted records kept off the terminal (they are in the log)


def crawler_process(
    config: Config, spider_cls: type[Any], settings_overrides: dict[str, Any]
) -> tuple[Any, Any, list[str]]:
    """A Scrapy process and crawler for ``spider_cls`` with our settings, and the list the crawler's
    close reasons are appended to (``["finished"]`` after a complete run)."""
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
    if concurrency:
        config.concurrency = concurrency
    render_mode = render or config.render
    if render_mode not in ("auto", "never", "always"):
        raise ScanError(f"--render 只能是 auto、never 或 always，而不是 {render_mode!r}")
    rules_from_config(config)  # a rule setting no check can use is refused before anything starts
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
    progress = Progress(
        counts.total, done, stream=stream, label=f"[巡检 #{scan_id}] ", timeout_s=config.timeout_s
    )
    process, crawler, close_reasons = crawler_process(config, SitesSpider, settings_overrides or {})
    progress.attach(crawler)
    process.crawl(crawler, scan_id=scan_id, render=render_mode)
    status = ScanStatus.FAILED
    error = ""
    slog = ScanLog()
    try:
        with scan_log(config, scan_id) as slog:
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
        errors = int(progress.stats.get_value(SUBJECT_ERRORS, 0))
        counters["subject_errors"] = errors
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
    return ScanSummary(scan_id, str(status), counters, str(slog.path or ""), slog.library_records)


def vantage_gate(config: Config, *, skip: bool = False, stream: TextIO | None = None) -> None:
    """The vantage check before a scan (or a worker) starts: raises
    :class:`crawler.vantage.VantageError` when too few reference sites answer; says how many did."""
    report = require_vantage(config, skip=skip)
    if report is not None:
        failed = "；".join(f"{p.url}：{p.message}" for p in report.probes if not p.ok)
        print(report.summary_line() + (f"（失败：{failed}）" if failed else ""), file=stream or sys.stderr)


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
    try:
        summary = prune_captures(db, EvidenceStore(config.evidence_dir), config.evidence_retention_days)
    except Exception:
        log.exception("evidence retention failed")
        return
    if summary.captures_deleted or summary.blobs_deleted:
        log.info("retention: %s", summary.to_dict())
