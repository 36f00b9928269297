"""Nightly scans that run themselves: ``badgewatch schedule add|list|remove|run``.

A schedule is an APScheduler 3 job kept in the project database (``SQLAlchemyJobStore``), so it
survives restarts; ``coalesce``, ``max_instances=1`` and a misfire grace time make a missed night run
once when the daemon starts again, not once per missed night.

Each firing runs one *chain*: scan the scope → confirm → recheck → reports → notify. Every stage's
outcome is a row of ``schedule_stage``; a failed stage is retried with a doubling wait and, if it still
fails, reported to the domain center (``center_email``) while what earlier stages produced stays.
A stage after ``scan`` only ever runs on a scan whose status is ``finished``.

Running twice is prevented at two levels, both in the database so they hold across machines and on
SQLite and PostgreSQL alike:

* a firing is *claimed* by inserting ``(job, scheduled time)`` into ``schedule_run``, whose unique
  key refuses a second daemon firing the same job at the same time;
* the scan itself takes the crawler's per-office ``scan_lock`` rows, which also keep a daemon and a
  manual ``badgewatch scan`` of an overlapping scope apart (the stage is then retried later).

On SIGTERM/SIGINT the daemon stops taking new work, lets an in-process stage finish and asks a running
scan to stop cleanly (it keeps its findings and is marked interrupted); the run is checkpointed as
``interrupted`` and resumed from that stage (``scan --resume``) when a daemon starts again.

This module only schedules: APScheduler glue, claiming a firing, the chain's state machine, the daemon
and the ``schedule`` commands. The stages' bodies live with the packages that own the work
(``crawler/stages.py``, ``storage/streaks.py``, ``reports/stages.py``, alerts in
``reports/delivery/alerts.py``); stage names and statuses are the enums of ``storage/chain.py``.
Over 500 lines because the layout names one module for scheduling and these parts share the daemon's
context; each part is a section below.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import sqlalchemy as sa
from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from crawler.scanlocks import holder_alive, holder_id
from crawler.stages import ScanChild, confirm_stage, finished_scan, recheck_stage
from reports.delivery.alerts import FailedStage, center_addresses, mail_center_directly, send_stage_alert
from reports.stages import notify_scan, write_reports
from storage.chain import (
    RUNS,
    Interrupted,
    RunStatus,
    ScheduleError,
    Stage,
    StageFailed,
    StageStatus,
    aware,
    insert_run,
    iso,
    last_run,
    record_stage,
    set_run,
    stage_row,
)
from storage.config import Config
from storage.db import DatabaseError, current_revision, head_revision, make_engine, upgrade
from storage.models import Office

log = logging.getLogger("badgewatch.scheduler")

JOB_FUNC = "scheduler:nightly"  # a text reference: stored jobs survive restarts and code reloads
JOBS_TABLE = "apscheduler_jobs"
DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_GRACE_S = 6 * 3600  # a night missed by less than this still runs (once) when the daemon starts
POLL_S = 5.0  # how often the daemon looks for schedules added or removed by other processes
STALE_RUN_S = 600  # a "running" chain whose daemon has not beaten for this long is taken over
STAGES = tuple(Stage)  # in the order they run
# A confirmation interval shorter than this is reached the same night: the chain waits for it and runs a
# second pass over the pending failures; a longer one is reached by the next night's scan.
SAME_NIGHT_H = 12.0


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ensure_tables(engine: Engine) -> None:
    """Bring the schema to the current migration (the chain's tables are storage's, created by Alembic
    like every other) and create APScheduler's job table if missing. Two daemons starting at once on a
    fresh database race to create them: the loser retries and finds them there."""
    jobs = SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE).jobs_t
    for attempt in range(3):
        try:
            if current_revision(engine) != head_revision():
                upgrade(engine)
            jobs.create(engine, checkfirst=True)
            return
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError, DatabaseError):
            if attempt == 2:
                raise
            time.sleep(0.5)


# --- schedules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """What one schedule does each time it fires (kept as the job's keyword arguments)."""

    name: str
    cron: str
    tz: str = DEFAULT_TZ
    office: str | None = None
    limit: int | None = None
    render: str = "auto"
    output: str = "reports"
    retries: int = 2
    retry_wait_s: float = 300.0

    def to_kwargs(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_kwargs(cls, raw: dict[str, Any]) -> JobSpec:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})


def parse_cron(expr: str, tz: str) -> Any:
    """A CronTrigger from 5 crontab fields (分 时 日 月 周) or 6 with seconds first (秒 分 时 日 月 周)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"未知的时区: {tz!r}（例如 Asia/Shanghai）") from exc
    fields = expr.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expr, timezone=zone)
        if len(fields) == 6:
            second, minute, hour, day, month, dow = fields
            return CronTrigger(
                second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow, timezone=zone
            )
    except ValueError as exc:
        raise ScheduleError(f"cron 表达式无效: {expr!r}（{exc}）") from exc
    raise ScheduleError(f"cron 表达式应有 5 个字段（分 时 日 月 周）或 6 个（秒 分 时 日 月 周）: {expr!r}")


class RunTimeExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """A thread pool executor that tells the job which scheduled time it runs for.

    APScheduler 3 does not pass the scheduled time to the job; the chain needs it to claim the firing
    (two daemons must agree on the key), so the executor keeps it in a thread-local while the job runs.
    ``_do_submit_job`` is the method APScheduler's executors are written by (its own pool executors
    override it); no event or argument serves — ``docs/operations.md``, *APScheduler's hooks*.
    """

    def _do_submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        def call() -> Any:
            _CURRENT.run_time = run_times[-1] if run_times else None
            try:
                return run_job(job, job._jobstore_alias, run_times, self._logger.name)
            finally:
                _CURRENT.run_time = None

        def done(f: Any) -> None:
            exc = f.exception()
            if exc:
                self._run_job_error(job.id, exc, getattr(exc, "__traceback__", None))
            else:
                self._run_job_success(job.id, f.result())

        self._pool.submit(call).add_done_callback(done)


_CURRENT = threading.local()


class Scheduler(BackgroundScheduler):  # type: ignore[misc]
    """APScheduler's background scheduler that runs due jobs only while it is running.

    APScheduler processes due jobs once more while shutting down (and a paused scheduler that is shut
    down does too): with its executors gone, the firing would be lost and its next run time advanced.
    No public hook runs before that pass (``docs/operations.md``, *APScheduler's hooks*), so
    ``_process_jobs`` is overridden: a missed firing waits for the next daemon instead."""

    def _process_jobs(self) -> float | None:
        if self.state != STATE_RUNNING:
            return None
        wait: float | None = super()._process_jobs()
        return wait


def make_scheduler(engine: Engine, grace_s: int = DEFAULT_GRACE_S, workers: int = 4) -> Scheduler:
    """A scheduler whose jobs live in ``engine``'s database (not started)."""
    return Scheduler(
        jobstores={
            "default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE),
            # One-off resumptions of interrupted chains belong to this daemon only.
            "volatile": MemoryJobStore(),
        },
        executors={"default": RunTimeExecutor(workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace_s},
        timezone=dt.UTC,
    )


@contextmanager
def _paused(engine: Engine) -> Iterator[Any]:
    """A scheduler that reads and writes the job store without running anything."""
    sched = make_scheduler(engine)
    sched.start(paused=True)
    try:
        yield sched
    finally:
        sched.shutdown(wait=False)


def add_schedule(engine: Engine, spec: JobSpec, grace_s: int = DEFAULT_GRACE_S) -> dt.datetime | None:
    """Store (or replace) the schedule; returns its next run time."""
    trigger = parse_cron(spec.cron, spec.tz)
    if spec.render not in ("auto", "never", "always"):
        raise ScheduleError(f"--render 只能是 auto、never 或 always，而不是 {spec.render!r}")
    ensure_tables(engine)
    with _paused(engine) as sched:
        job = sched.add_job(
            JOB_FUNC,
            trigger=trigger,
            id=spec.name,
            name=spec.name,
            kwargs=spec.to_kwargs(),
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace_s,
        )
        # A paused scheduler computes the first run time only when it wakes; ask the trigger now.
        nxt: dt.datetime | None = job.next_run_time or trigger.get_next_fire_time(None, now_utc())
        return nxt


@dataclass
class ScheduleInfo:
    name: str
    cron: str
    tz: str
    office: str | None
    limit: int | None
    next_run_time: dt.datetime | None
    last: dict[str, Any] | None = None


def list_schedules(engine: Engine) -> list[ScheduleInfo]:
    """Every stored schedule with its next run time and the outcome of its last run."""
    ensure_tables(engine)
    with _paused(engine) as sched:
        jobs = sched.get_jobs(jobstore="default")
    out = []
    for job in sorted(jobs, key=lambda j: j.id):
        spec = JobSpec.from_kwargs(dict(job.kwargs))
        out.append(
            ScheduleInfo(
                spec.name,
                spec.cron,
                spec.tz,
                spec.office,
                spec.limit,
                job.next_run_time,
                last_run(engine, job.id),
            )
        )
    return out


def remove_schedule(engine: Engine, name: str) -> None:
    with _paused(engine) as sched:
        try:
            sched.remove_job(name, jobstore="default")
        except JobLookupError as exc:
            raise ScheduleError(f"没有名为 {name!r} 的定时任务") from exc


# --- the daemon's context -------------------------------------------------------------------------


@dataclass
class Daemon:
    """What a running ``schedule run`` shares with its jobs."""

    config: Config
    config_path: str | None = None
    verbose: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    holder: str = field(default_factory=holder_id)
    children: set[subprocess.Popen[str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_DAEMON: Daemon | None = None


def _daemon() -> Daemon:
    """The running daemon, or (a job run outside one, e.g. from a test) a context from the config."""
    global _DAEMON
    if _DAEMON is None:
        _DAEMON = Daemon(Config.load())
    return _DAEMON


def nightly(**kwargs: Any) -> str:
    """The job every schedule runs: claim this firing, then run the chain. Returns the run's status."""
    d = _daemon()
    spec = JobSpec.from_kwargs(kwargs)
    when: dt.datetime | None = getattr(_CURRENT, "run_time", None)
    if when is None:  # called directly, not by the scheduler
        when = now_utc().replace(microsecond=0)
    engine = make_engine(d.config.database_url)
    try:
        try:
            ensure_tables(engine)
            run_id = claim_run(engine, spec, when, d.holder)
        except (sa.exc.SQLAlchemyError, DatabaseError) as exc:
            # Nothing can be recorded: say so in the log and, straight over SMTP, to the center.
            message = f"数据库不可用，本次未运行：{getattr(exc, 'orig', None) or exc}"
            log.error("schedule %s at %s: %s", spec.name, when, message)
            mail_center_directly(d.config, spec.name, when, message)
            return RunStatus.FAILED
        if run_id is None:
            log.info("schedule %s at %s: already claimed by another daemon, skipped", spec.name, when)
            return RunStatus.SKIPPED
        log.info("schedule %s at %s: run #%s started", spec.name, when, run_id)
        return Chain(engine, d, run_id, spec).run()
    finally:
        engine.dispose()


def resume(run_id: int) -> str:
    """A job this daemon adds on start for a chain that was interrupted: go on from its stage."""
    d = _daemon()
    engine = make_engine(d.config.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).one()
        spec = JobSpec.from_kwargs(dict(row.spec))
        log.info("schedule %s: resuming run #%s at stage %s", spec.name, run_id, row.stage or Stage.SCAN)
        return Chain(engine, d, run_id, spec).run()
    finally:
        engine.dispose()


def claim_run(engine: Engine, spec: JobSpec, when: dt.datetime, holder: str) -> int | None:
    """Claim the firing of ``spec`` at ``when`` (its ``schedule_run`` row); None if another daemon
    already has it."""
    return insert_run(engine, spec.name, spec.to_kwargs(), when, holder)


def unfinished_runs(engine: Engine) -> list[int]:
    """Runs to take up: interrupted ones, and running ones whose daemon is gone (latest per job)."""
    ensure_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(RUNS)
            .where(RUNS.c.status.in_((RunStatus.INTERRUPTED, RunStatus.RUNNING)))
            .order_by(RUNS.c.id)
        ).all()
        latest = dict(
            conn.execute(sa.select(RUNS.c.job_name, sa.func.max(RUNS.c.id)).group_by(RUNS.c.job_name)).all()
        )
    # An older unfinished run is left alone: a newer night has run since and its scan supersedes it.
    return [int(r.id) for r in rows if latest.get(r.job_name) == r.id and _takeable(r)]


def _takeable(row: Any) -> bool:
    """Interrupted, or running for a daemon that is gone (same host) or silent too long (any host)."""
    if row.status == RunStatus.INTERRUPTED:
        return True
    if row.status != RunStatus.RUNNING:
        return False
    beat = aware(row.heartbeat_at)
    stale = beat is None or now_utc() - beat > dt.timedelta(seconds=STALE_RUN_S)
    return stale or not holder_alive(row.holder)


def take_over(engine: Engine, run_id: int, holder: str) -> bool:
    """Compare-and-set the run to this daemon; False if another daemon took it first."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(RUNS.c.status, RUNS.c.holder, RUNS.c.heartbeat_at).where(RUNS.c.id == run_id)
        ).one()
        if not _takeable(row):
            return False
        result = conn.execute(
            sa.update(RUNS)
            .where(RUNS.c.id == run_id, RUNS.c.status == row.status, RUNS.c.holder == row.holder)
            .values(status=RunStatus.RUNNING, holder=holder, heartbeat_at=now_utc())
        )
        return bool(result.rowcount == 1)


# --- the chain ----------------------------------------------------------------------------------


class Chain:
    """One run of the nightly chain, resumable at the stage where it stopped: the state machine only;
    each stage's body lives with the package that owns the work (``storage/chain.py`` says where)."""

    def __init__(self, engine: Engine, daemon: Daemon, run_id: int, spec: JobSpec) -> None:
        self.engine = engine
        self.d = daemon
        self.cfg = daemon.config
        self.run_id = run_id
        self.spec = spec
        with engine.connect() as conn:
            self.scan_id: int | None = conn.execute(
                sa.select(RUNS.c.scan_id).where(RUNS.c.id == run_id)
            ).scalar_one()
        self.child = ScanChild(engine, self._badgewatch(), daemon.stop, self._checkpoint)
        self.child.children, self.child.lock = daemon.children, daemon.lock
        self.stages: dict[Stage, Callable[[], dict[str, Any]]] = {
            Stage.SCAN: lambda: self.child.scan(self.scan_id, spec.office, spec.limit, spec.render),
            Stage.SECOND_PASS: lambda: self.child.second_pass(self.scan_id, self.cfg, SAME_NIGHT_H),
            Stage.CONFIRM: lambda: confirm_stage(engine, self._finished(), self.cfg),
            Stage.RECHECK: lambda: recheck_stage(engine, self.scan_id, self.cfg),
            Stage.REPORTS: lambda: write_reports(
                engine, self._finished(), spec.office, Path(spec.output) / spec.name / f"scan-{self.scan_id}"
            ),
            Stage.NOTIFY: lambda: notify_scan(engine, self.cfg, self._finished(), spec.retries),
        }

    def _badgewatch(self) -> list[str]:
        cmd = [sys.executable, "-m", "badgewatch"]
        if self.d.config_path:
            cmd += ["--config", self.d.config_path]
        if self.d.verbose:
            cmd.append("-" + "v" * self.d.verbose)
        return cmd

    def _checkpoint(self, scan_id: int) -> None:
        """A scan child reported (or left behind) its scan: a later attempt resumes that scan."""
        self.scan_id = scan_id
        set_run(self.engine, self.run_id, scan_id=scan_id)

    def _finished(self) -> int:
        return finished_scan(self.engine, self.scan_id)

    def beat(self) -> None:
        set_run(self.engine, self.run_id)

    def run(self) -> str:
        """Run the stages not yet done; returns the run's final status."""
        done = threading.Event()

        def beating() -> None:
            # Other daemons take over a run whose heartbeat is stale; long stages must not look dead.
            while not done.wait(60):
                try:
                    self.beat()
                except sa.exc.SQLAlchemyError as exc:
                    log.warning("run #%s: heartbeat failed: %s", self.run_id, exc)

        beat = threading.Thread(target=beating, name=f"heartbeat-{self.run_id}", daemon=True)
        beat.start()
        try:
            return self._run()
        finally:
            done.set()
            beat.join()

    def _run(self) -> str:
        for stage in Stage:
            row = stage_row(self.engine, self.run_id, stage)
            if row is not None and row.status == StageStatus.OK:
                continue  # done before an interruption: what it produced stands
            if self.d.stop.is_set():
                return self._interrupted(stage, row.attempts if row else 0, "守护进程停止，尚未开始")
            previous = row.attempts if row is not None else 0
            outcome = self._attempt(stage, previous)
            if outcome != StageStatus.OK:
                return outcome
        set_run(
            self.engine, self.run_id, status=RunStatus.FINISHED, stage="", finished_at=now_utc(), error=""
        )
        log.info("schedule %s: run #%s finished (scan #%s)", self.spec.name, self.run_id, self.scan_id)
        return RunStatus.FINISHED

    def _attempt(self, stage: Stage, previous: int) -> str:
        attempts = previous
        tries = 0
        while True:
            attempts += 1
            tries += 1
            set_run(self.engine, self.run_id, stage=stage)
            record_stage(self.engine, self.run_id, stage, StageStatus.RUNNING, attempts, {})
            log.info(
                "schedule %s: run #%s stage %s (attempt %s)", self.spec.name, self.run_id, stage, attempts
            )
            try:
                detail = self.stages[stage]()
            except Interrupted as exc:
                return self._interrupted(stage, attempts, str(exc))
            except Exception as exc:  # any failure of a stage is recorded, retried and reported
                retry = exc.retry if isinstance(exc, StageFailed) else True
                message = str(exc) if isinstance(exc, StageFailed) else f"{type(exc).__name__}: {exc}"
                log.warning(
                    "schedule %s: run #%s stage %s failed (attempt %s): %s",
                    self.spec.name,
                    self.run_id,
                    stage,
                    attempts,
                    message,
                )
                if retry and tries <= self.spec.retries:
                    record_stage(self.engine, self.run_id, stage, StageStatus.RETRYING, attempts, {}, message)
                    wait = self.spec.retry_wait_s * (2 ** (tries - 1))
                    if self.d.stop.wait(wait):
                        return self._interrupted(
                            stage, attempts, f"等待重试时守护进程停止；上次错误：{message}"
                        )
                    continue
                record_stage(self.engine, self.run_id, stage, StageStatus.FAILED, attempts, {}, message)
                set_run(
                    self.engine,
                    self.run_id,
                    status=RunStatus.FAILED,
                    stage=stage,
                    finished_at=now_utc(),
                    error=message,
                )
                self.alert(stage, attempts, message)
                return RunStatus.FAILED
            record_stage(self.engine, self.run_id, stage, StageStatus.OK, attempts, detail)
            return StageStatus.OK

    def _interrupted(self, stage: Stage, attempts: int, message: str) -> str:
        record_stage(
            self.engine,
            self.run_id,
            stage,
            StageStatus.INTERRUPTED,
            attempts,
            {"scan_id": self.scan_id},
            message,
        )
        set_run(self.engine, self.run_id, status=RunStatus.INTERRUPTED, stage=stage, error=message)
        log.warning(
            "schedule %s: run #%s interrupted at stage %s; it resumes when a daemon starts",
            self.spec.name,
            self.run_id,
            stage,
        )
        return RunStatus.INTERRUPTED

    def alert(self, stage: Stage, attempts: int, message: str) -> None:
        """Tell the domain center that a stage failed for good (once per run and stage)."""
        if not center_addresses(self.cfg):
            log.error(
                "schedule %s: run #%s failed at %s and center_email is not set: %s",
                self.spec.name,
                self.run_id,
                stage,
                message,
            )
            return
        s = self.spec
        failed = FailedStage(
            s.name, s.cron, s.tz, s.office, self.run_id, stage, stage.label, attempts, message, self.scan_id
        )
        try:
            send_stage_alert(self.cfg, failed)
        except Exception:  # the failure itself is recorded; an unreachable mail server must not hide it
            log.exception("schedule %s: could not report the failure of run #%s", self.spec.name, self.run_id)


# --- the daemon ---------------------------------------------------------------------------------


def run_daemon(d: Daemon, grace_s: int = DEFAULT_GRACE_S, poll_s: float = POLL_S, workers: int = 4) -> None:
    """Run schedules until SIGTERM/SIGINT; then checkpoint the running chain and return."""
    global _DAEMON
    _DAEMON = d
    engine = make_engine(d.config.database_url)
    ensure_tables(engine)
    sched = make_scheduler(engine, grace_s, workers)

    def on_signal(signum: int, _frame: Any) -> None:
        if not d.stop.is_set():
            log.warning(
                "received %s: stopping after the running stage (checkpointing a scan)",
                signal.Signals(signum).name,
            )
        d.stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        sched.start()
        for job in sched.get_jobs(jobstore="default"):
            log.info("schedule %s: next run %s", job.id, job.next_run_time)
        for run_id in unfinished_runs(engine):
            if take_over(engine, run_id, d.holder):
                sched.add_job(
                    "scheduler:resume",
                    args=[run_id],
                    id=f"resume-{run_id}",
                    jobstore="volatile",
                    misfire_grace_time=None,
                )
        log.info("scheduler running (%s); SIGTERM or Ctrl-C stops it", d.holder)
        while not d.stop.wait(poll_s):
            sched.wakeup()  # pick up schedules other processes added, changed or removed
        log.info("stopping: waiting for the running chain to checkpoint")
        sched.shutdown(wait=True)
        log.info("scheduler stopped")
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if sched.running:
            sched.shutdown(wait=False)
        engine.dispose()
        _DAEMON = None


# --- command line -------------------------------------------------------------------------------


def _config(ctx: click.Context) -> Config:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Config) else Config.load()


@contextmanager
def _engine(ctx: click.Context) -> Iterator[Engine]:
    """The database of the command (its errors, ours and SQLAlchemy's, are reported by badgewatch.py)."""
    engine = make_engine(_config(ctx).database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@click.group("schedule")
def schedule() -> None:
    """定时巡检：添加、查看、删除定时任务，运行调度守护进程。"""


@schedule.command("add")
@click.argument("name")
@click.option("--cron", required=True, help='cron 表达式："分 时 日 月 周"，或带秒 "秒 分 时 日 月 周"')
@click.option("--tz", default=DEFAULT_TZ, show_default=True, help="cron 所用时区")
@click.option("--office", default=None, help="只巡检该编办（含下级）")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="最多巡检 N 个网站")
@click.option("--render", type=click.Choice(["auto", "never", "always"]), default="auto", show_default=True)
@click.option("--output", default="reports", show_default=True, help="报表输出目录（添加时转为绝对路径）")
@click.option(
    "--retries", type=click.IntRange(min=0), default=2, show_default=True, help="每个步骤失败后重试次数"
)
@click.option(
    "--retry-wait",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="首次重试前等待的秒数（之后加倍）",
)
@click.option(
    "--misfire-grace",
    type=click.IntRange(min=1),
    default=DEFAULT_GRACE_S,
    show_default=True,
    help="错过运行时间多少秒以内，启动时仍补跑一次",
)
@click.pass_context
def add_cmd(
    ctx: click.Context,
    name: str,
    cron: str,
    tz: str,
    office: str | None,
    limit: int | None,
    render: str,
    output: str,
    retries: int,
    retry_wait: float,
    misfire_grace: int,
) -> None:
    """添加（或替换）名为 NAME 的定时巡检。"""
    if office is not None:
        with _engine(ctx) as engine, engine.connect() as conn:
            if conn.execute(sa.select(Office.code).where(Office.code == office)).first() is None:
                raise click.ClickException(f"编办代码 {office} 不存在")
    spec = JobSpec(name, cron, tz, office, limit, render, str(Path(output).resolve()), retries, retry_wait)
    with _engine(ctx) as engine:
        nxt = add_schedule(engine, spec, misfire_grace)
    click.echo(f"已添加定时任务 {name}：{cron}（{tz}），下次运行 {_local(nxt, tz)}")


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """列出定时任务：下次运行时间、上次结果。"""
    with _engine(ctx) as engine:
        items = list_schedules(engine)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "cron": i.cron,
                        "tz": i.tz,
                        "office": i.office,
                        "limit": i.limit,
                        "next_run_time": iso(i.next_run_time),
                        "last": i.last,
                    }
                    for i in items
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if not items:
        click.echo("没有定时任务。")
        return
    for i in items:
        click.echo(
            f"{i.name}  {i.cron}（{i.tz}）  范围：{i.office or '全部编办'}"
            + (f"，最多 {i.limit} 个网站" if i.limit is not None else "")
        )
        click.echo(f"  下次运行：{_local(i.next_run_time, i.tz)}")
        last = i.last
        if last is None:
            click.echo("  上次运行：无")
            continue
        stages = "，".join(f"{s['stage']} {s['status']}" for s in last["stages"])
        click.echo(
            f"  上次运行：#{last['run_id']}（计划 {last['scheduled_for']}）{last['status']}"
            + (f"，巡检 #{last['scan_id']}" if last["scan_id"] else "")
            + (f"；{stages}" if stages else "")
        )
        if last["error"]:
            click.echo(f"  错误：{last['error']}")


@schedule.command("remove")
@click.argument("name")
@click.pass_context
def remove_cmd(ctx: click.Context, name: str) -> None:
    """删除名为 NAME 的定时任务（已有的运行记录保留）。"""
    with _engine(ctx) as engine:
        remove_schedule(engine, name)
    click.echo(f"已删除定时任务 {name}")


@schedule.command("run")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.2),
    default=POLL_S,
    show_default=True,
    help="多久检查一次其他进程对定时任务的修改（秒）",
)
@click.pass_context
def run_cmd(ctx: click.Context, poll: float) -> None:
    """前台运行调度守护进程（SIGTERM 或 Ctrl-C 结束：当前步骤完成或保存进度后退出）。"""
    root = ctx.find_root()
    verbose = int(root.params.get("verbose") or 0)
    # A daemon's log is its record: INFO by default (journald keeps it), -v for debug.
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.INFO if verbose else logging.WARNING)
    d = Daemon(_config(ctx), config_path=root.params.get("config_path"), verbose=verbose)
    try:
        run_daemon(d, poll_s=poll)
    except (DatabaseError, sa.exc.OperationalError) as exc:
        raise click.ClickException(f"调度守护进程无法使用数据库: {exc}") from exc


def _local(value: dt.datetime | None, tz: str) -> str:
    if value is None:
        return "无（已暂停或不再运行）"
    try:
        return value.astimezone(ZoneInfo(tz)).isoformat()
    except (ZoneInfoNotFoundError, ValueError):
        return value.isoformat()


COMMANDS: list[click.Command] = [schedule]
