"""A distributed scan's life: open and seed it (``scan --distributed``), run workers
(``badgewatch worker``), close it once every subject has its findings.

* ``scan --distributed`` opens the scan exactly as ``scan`` does (scope, lock in the database), seeds
  the scan's frontier in Redis with its pending subjects, tells how to start workers, and (unless
  ``--no-wait``) reports progress until the scan is closed.
* ``worker`` runs the ``sites_distributed`` spider on the frontier until nothing is pending and nothing
  is leased anywhere.
* Closing (status, counters from the database, locks released, Redis keys deleted, evidence retention)
  is done by whoever sees the frontier drained first — a worker or the waiting ``scan`` — exactly once:
  a ``SET NX`` token in Redis picks the closer, and the status update only applies to a running scan.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crawler.distributed import DistributedError, Frontier, active_scans, connect, worker_id
from crawler.jobs import Scope, count_subjects, expand_offices, iter_subjects
from crawler.middlewares import DISTRIBUTED_KEY
from crawler.progress import Progress
from crawler.scanlocks import DISTRIBUTED_HOLDER, ScanError, open_scan, subjects_done
from crawler.scanlog import scan_log
from crawler.scanrun import apply_retention, crawler_process, vantage_gate
from crawler.spiders.distributed import DistributedSitesSpider
from storage.config import Config
from storage.db import make_engine
from storage.models import Finding, Scan, ScanLock, ScanStatus
from storage.streaks import confirm
from storage.subjects import SubjectKind
from storage.types import utcnow

log = logging.getLogger(__name__)

POLL_S = 2.0


@dataclass
class DistributedSummary:
    scan_id: int
    status: str
    counters: dict[str, Any] = field(default_factory=dict)
    seeded: int = 0


def require_postgres(config: Config) -> None:
    if not config.database_url.startswith("postgresql"):
        raise ScanError(
            "分布式巡检需要 PostgreSQL 数据库：请设置 BADGEWATCH_DATABASE_URL=postgresql://…"
            "（SQLite 只能由一台机器上的一个进程写入，各工作进程无法共享）"
        )


def _frontier(config: Config, scan_id: int) -> Frontier:
    try:
        client = connect(config.redis_url)
    except DistributedError as exc:
        raise ScanError(str(exc)) from exc
    return Frontier(client, config.redis_prefix, scan_id, config.lease_timeout_s)


def start_distributed_scan(
    config: Config,
    *,
    office: str | None = None,
    limit: int | None = None,
    render: str | None = None,
    resume: int | None = None,
    wait: bool = True,
    stream: TextIO | None = None,
    skip_vantage: bool = False,
) -> DistributedSummary:
    """Open (or resume) a scan, seed its frontier; wait for the workers unless ``wait`` is false.

    The vantage check (:mod:`crawler.vantage`) runs first, before anything is opened or seeded; each
    worker checks its own machine again when it starts (workers may run elsewhere)."""

    out = stream if stream is not None else sys.stderr
    require_postgres(config)
    render_mode = render or config.render
    if render_mode not in ("auto", "never", "always"):
        raise ScanError(f"--render 只能是 auto、never 或 always，而不是 {render_mode!r}")
    try:
        probe = connect(config.redis_url)
    except DistributedError as exc:
        raise ScanError(str(exc)) from exc
    probe.close()
    vantage_gate(config, skip=skip_vantage, stream=out)
    db = make_engine(config.database_url)
    try:
        scope = Scope()
        if resume is None:
            with Session(db) as s:
                try:
                    scope = Scope(expand_offices(s, office), limit)
                except LookupError as exc:
                    raise ScanError(str(exc)) from exc
        holder = f"{DISTRIBUTED_HOLDER}{worker_id()}"
        scan_id = open_scan(db, scope, config, render=render_mode, resume=resume, holder=holder)
        scope = _scope_of(db, scan_id)
        counts = count_subjects(db, scope)
        before = subjects_done(db, scan_id)
        frontier = _frontier(config, scan_id)
        seeded = frontier.seed(iter_subjects(db, scope, scan_id), total=counts.total, done_before=before)
        print(
            f"[巡检 #{scan_id}] 已在 Redis 中放入 {seeded} 个待巡检对象"
            f"（网站 {counts.sites} 个，域名 {counts.domains} 个，单位 {counts.units} 个，"
            f"此前已完成 {before} 个）。\n"
            f"在每台巡检机上启动工作进程（可多台、多个）：\n"
            f"  badgewatch worker --scan {scan_id}\n"
            f"（各机需能访问同一 PostgreSQL、Redis 与共享证据目录，见 docs/deployment.md）",
            file=out,
            flush=True,
        )
        if seeded == 0:
            status, counters = close_distributed(db, frontier, config) or ("", {})
            return DistributedSummary(scan_id, status or _status(db, scan_id), counters, seeded)
        if not wait:
            return DistributedSummary(scan_id, _status(db, scan_id), {}, seeded)
        status, counters = wait_scan(db, frontier, config, stream=out)
        return DistributedSummary(scan_id, status, counters, seeded)
    finally:
        db.dispose()


def wait_scan(
    db: Engine, frontier: Frontier, config: Config, *, stream: TextIO, poll_s: float = POLL_S
) -> tuple[str, dict[str, Any]]:
    """Report progress until the scan is closed (closing it if this process sees the end first)."""
    started = time.monotonic()
    first_done: int | None = None
    while True:
        status = _status(db, frontier.scan_id)
        if status != ScanStatus.RUNNING:
            return status, _counters_of(db, frontier.scan_id)
        st = frontier.status()
        if st.drained:
            closed = close_distributed(db, frontier, config)
            if closed is not None:
                return closed
        else:
            done = st.done_before + st.done
            first_done = done if first_done is None else first_done
            rate = (done - first_done) / max(time.monotonic() - started, 1e-6)
            pct = 100.0 * done / st.total if st.total else 100.0
            print(
                f"[巡检 #{frontier.scan_id}] {done}/{st.total} ({pct:.1f}%)  {rate:.1f}/s  "
                f"待领取 {st.pending}，处理中 {st.leased}，工作进程 {frontier.worker_count()}"
                + (f"，放弃 {st.failed}" if st.failed else ""),
                file=stream,
                flush=True,
            )
        time.sleep(poll_s)


def close_distributed(db: Engine, frontier: Frontier, config: Config) -> tuple[str, dict[str, Any]] | None:
    """Close the scan if its frontier is drained and nobody else is closing it; ``None`` otherwise.

    The scan is ``finished`` when every subject in scope has findings; otherwise (subjects given up)
    ``interrupted``, and ``scan --distributed --resume`` seeds the rest again."""
    me = worker_id()
    if not frontier.drained() or not frontier.claim_close(me):
        return None
    try:
        if not frontier.drained():  # a worker gave subjects back just now
            frontier.unclaim_close(me)
            return None
        scan_id = frontier.scan_id
        scope = _scope_of(db, scan_id)
        missing = sum(1 for _ in iter_subjects(db, scope, scan_id))
        status = ScanStatus.FINISHED if missing == 0 else ScanStatus.INTERRUPTED
        error = "" if missing == 0 else f"{missing} 个对象没有结论，可用 --resume {scan_id} 续扫"
        counters = _final_counters(db, frontier, scope)
        with db.begin() as conn:
            updated = conn.execute(
                sa.update(Scan)
                .where(Scan.id == scan_id, Scan.status == ScanStatus.RUNNING)
                .values(status=status, finished_at=utcnow(), counters=counters, error=error)
            ).rowcount
            conn.execute(sa.delete(ScanLock).where(ScanLock.scan_id == scan_id))
        frontier.delete()
    except BaseException:
        frontier.unclaim_close(me)
        raise
    if not updated:
        return _status(db, scan_id), _counters_of(db, scan_id)
    log.info("scan %d closed: %s", scan_id, status)
    if status == ScanStatus.FINISHED:
        summary = confirm(db, scan_id, config).to_dict()
        counters["confirmation"] = summary
        with db.begin() as conn:
            conn.execute(sa.update(Scan).where(Scan.id == scan_id).values(counters=counters))
        apply_retention(db, config)
    return str(status), counters


def _final_counters(db: Engine, frontier: Frontier, scope: Scope) -> dict[str, Any]:
    """The scan's counters, from its findings (every worker's) and the workers' shared stats."""
    scan_id = frontier.scan_id
    counts = count_subjects(db, scope)
    st = frontier.status()
    stats = frontier.stats()
    with db.connect() as conn:
        by_status = dict(
            conn.execute(
                sa.select(Finding.status, sa.func.count())
                .where(Finding.scan_id == scan_id)
                .group_by(Finding.status)
            ).all()
        )
        problems = conn.execute(
            sa.select(Finding.reason, sa.func.count())
            .where(Finding.scan_id == scan_id, Finding.status.in_(("fail", "unknown")))
            .group_by(Finding.reason)
            .order_by(sa.func.count().desc())
        ).all()
        started = conn.execute(sa.select(Scan.started_at).where(Scan.id == scan_id)).scalar_one()
        done_sites = conn.execute(
            sa.select(sa.func.count(sa.distinct(Finding.subject))).where(
                Finding.scan_id == scan_id, Finding.subject.like(SubjectKind.SITE.prefix + "%")
            )
        ).scalar_one()
    elapsed = (utcnow() - started).total_seconds() if started is not None else 0.0
    subjects = int(stats.get("subjects", 0))
    return {
        "subjects": subjects,
        "subjects_before_resume": st.done_before,
        "total": counts.total,
        "sites": counts.sites,
        "domains": counts.domains,
        "units": counts.units,
        "sites_done": int(done_sites),
        "requests": int(stats.get("requests", 0)),
        "elapsed_s": round(elapsed, 2),
        "subjects_per_s": round(subjects / elapsed, 2) if elapsed > 0 else 0.0,
        "by_status": {str(k): int(v) for k, v in by_status.items()},
        "problems": {str(r): int(n) for r, n in problems},
        "renders": int(stats.get("renders", 0)),
        "dns_lookups": int(stats.get("dns_lookups", 0)),
        "subject_errors": st.failed,
        "workers": frontier.worker_count(),
        "distributed": True,
    }


def _scope_of(db: Engine, scan_id: int) -> Scope:
    with db.connect() as conn:
        raw = conn.execute(sa.select(Scan.scope).where(Scan.id == scan_id)).scalar_one() or {}
    return Scope.from_json(raw)


def _status(db: Engine, scan_id: int) -> str:
    with db.connect() as conn:
        return str(conn.execute(sa.select(Scan.status).where(Scan.id == scan_id)).scalar_one())


def _counters_of(db: Engine, scan_id: int) -> dict[str, Any]:
    with db.connect() as conn:
        raw = conn.execute(sa.select(Scan.counters).where(Scan.id == scan_id)).scalar_one()
    return dict(raw or {})


# --- the worker -----------------------------------------------------------------------------------------


@dataclass
class WorkerSummary:
    scan_id: int
    subjects: int
    status: str  # the scan's status when the worker ended
    counters: dict[str, Any] = field(default_factory=dict)


def pick_scan(config: Config, scan_id: int | None) -> int:
    """The scan a worker serves: the one named, else the only one with a frontier."""
    client = connect(config.redis_url)
    try:
        if scan_id is not None:
            return scan_id
        scans = active_scans(client, config.redis_prefix)
    finally:
        client.close()
    if not scans:
        raise ScanError("Redis 中没有待巡检的分布式巡检（请先运行 badgewatch scan --distributed）")
    if len(scans) > 1:
        listed = "、".join(f"#{s}" for s in scans)
        raise ScanError(f"有多个分布式巡检在进行（{listed}），请用 --scan 指定")
    return scans[0]


def run_worker(
    config: Config,
    *,
    scan_id: int | None = None,
    concurrency: int | None = None,
    stream: TextIO | None = None,
    settings_overrides: dict[str, Any] | None = None,
    skip_vantage: bool = False,
) -> WorkerSummary:
    """Run one worker process on a distributed scan until its frontier is drained.

    Before taking any subject the worker runs the vantage check from its own machine: a worker on a
    machine that cannot see the sites refuses to start (:class:`crawler.vantage.VantageError`)."""

    require_postgres(config)
    if concurrency:
        config.concurrency = concurrency
    try:
        scan_id = pick_scan(config, scan_id)
    except DistributedError as exc:
        raise ScanError(str(exc)) from exc
    frontier = _frontier(config, scan_id)
    db = make_engine(config.database_url)
    try:
        status = _status(db, scan_id)
    except sa.exc.NoResultFound as exc:
        raise ScanError(f"巡检 #{scan_id} 不存在") from exc
    if not frontier.exists():
        db.dispose()
        if status == ScanStatus.RUNNING:
            raise ScanError(
                f"巡检 #{scan_id} 在 Redis 中没有任务队列（请用 scan --distributed --resume {scan_id}）"
            )
        print(f"[巡检 #{scan_id}] 已结束（{status}），没有可做的工作", file=stream or sys.stderr)
        return WorkerSummary(scan_id, 0, status)
    try:
        vantage_gate(config, skip=skip_vantage, stream=stream)
    except BaseException:
        db.dispose()
        raise
    st = frontier.status()
    worker = worker_id()
    progress = Progress(
        st.total,
        st.done_before + st.done,
        stream=stream,
        label=f"[巡检 #{scan_id} {worker}] ",
        timeout_s=config.timeout_s,
    )
    overrides = {DISTRIBUTED_KEY: True, "REDIS_URL": config.redis_url, **(settings_overrides or {})}
    process, crawler, close_reasons = crawler_process(config, DistributedSitesSpider, overrides)
    progress.attach(crawler)
    process.crawl(crawler, scan_id=scan_id, worker=worker)
    try:
        with scan_log(config, scan_id, worker):
            process.start()
    finally:
        # The flow's counts, as the spider left them in the crawler's stats when it closed.
        stats = {k: v for k in ("renders", "dns_lookups") if (v := progress.summary().get(k)) is not None}
        try:
            if frontier.exists():
                frontier.add_stats(stats)
        except Exception:
            log.exception("adding the worker's counters failed")
    if close_reasons != ["finished"]:
        db.dispose()
        # Its leases expire and another worker takes them; nothing is lost.
        raise ScanError(f"工作进程异常结束（{', '.join(close_reasons) or '未能启动'}），详见日志")
    closed = close_distributed(db, frontier, config)
    status = closed[0] if closed is not None else _status(db, scan_id)
    db.dispose()
    counters = progress.summary()
    return WorkerSummary(scan_id, progress.done, status, counters)
