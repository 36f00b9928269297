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
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from checks.errors import StateError
from crawler.scanlocks import holder_alive, holder_id
from storage.config import Config
from storage.db import DatabaseError, current_revision, head_revision, upgrade
from storage.models import ScheduleRun, ScheduleStage

log = logging.getLogger("badgewatch.scheduler")
child_log = logging.getLogger("badgewatch.scheduler.scan")  # what a scan child writes to stderr

JOB_FUNC = "scheduler:nightly"  # a text reference: stored jobs survive restarts and code reloads
JOBS_TABLE = "apscheduler_jobs"
DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_GRACE_S = 6 * 3600  # a night missed by less than this still runs (once) when the daemon starts
POLL_S = 5.0  # how often the daemon looks for schedules added or removed by other processes
STALE_RUN_S = 600  # a "running" chain whose daemon has not beaten for this long is taken over
STAGES = ("scan", "second_pass", "confirm", "recheck", "reports", "notify")
# A confirmation interval shorter than this is reached the same night: the chain waits for it and runs a
# second pass over the pending failures; a longer one is reached by the next night's scan.
SAME_NIGHT_H = 12.0


class ScheduleError(StateError):
    """A schedule cannot be added, run or found (the message says which and why, in Chinese)."""


class StageFailed(ScheduleError):
    """One attempt of a stage failed; ``retry`` says whether trying again may help."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Interrupted(ScheduleError):
    """The daemon was asked to stop while a stage was running; the stage kept a checkpoint."""


# --- tables of the chain: storage models (migration 0003), used here through SQLAlchemy Core ------

RUNS: sa.Table = ScheduleRun.__table__  # type: ignore[assignment]
STAGE_ROWS: sa.Table = ScheduleStage.__table__  # type: ignore[assignment]


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands timestamps back naive; they were written as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def ensure_tables(engine: Engine) -> None:
    """Bring the schema to the current migration (the chain's tables are storage's, created by Alembic
    like every other) and create APScheduler's job table if missing. Two daemons starting at once on a
    fresh database race to create them: the loser retries and finds them there."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

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
    from apscheduler.triggers.cron import CronTrigger

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


class _RunTimeExecutor:
    """Factory for a thread pool executor that tells the job which scheduled time it runs for.

    APScheduler does not pass the scheduled time to the job; the chain needs it to claim the firing
    (two daemons must agree on the key), so the executor keeps it in a thread-local while the job runs.
    """

    @staticmethod
    def make(max_workers: int) -> Any:
        from apscheduler.executors.base import run_job
        from apscheduler.executors.pool import ThreadPoolExecutor

        class Executor(ThreadPoolExecutor):  # type: ignore[misc]
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

        return Executor(max_workers)


_CURRENT = threading.local()


def make_scheduler(engine: Engine, grace_s: int = DEFAULT_GRACE_S, workers: int = 4) -> Any:
    """A BackgroundScheduler whose jobs live in ``engine``'s database (not started)."""
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.base import STATE_RUNNING

    class Scheduler(BackgroundScheduler):  # type: ignore[misc]
        def _process_jobs(self) -> float | None:
            # APScheduler processes due jobs once more while shutting down (and a paused scheduler that
            # is shut down does too): with its executors gone, the firing would be lost and its next
            # run time advanced. Only a running scheduler runs jobs; a missed one waits for the next.
            if self.state != STATE_RUNNING:
                return None
            wait: float | None = super()._process_jobs()
            return wait

    return Scheduler(
        jobstores={
            "default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE),
            # One-off resumptions of interrupted chains belong to this daemon only.
            "volatile": MemoryJobStore(),
        },
        executors={"default": _RunTimeExecutor.make(workers)},
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
    from apscheduler.jobstores.base import JobLookupError

    with _paused(engine) as sched:
        try:
            sched.remove_job(name, jobstore="default")
        except JobLookupError as exc:
            raise ScheduleError(f"没有名为 {name!r} 的定时任务") from exc


def last_run(engine: Engine, job_name: str) -> dict[str, Any] | None:
    """The latest run of ``job_name`` with its stages, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(RUNS).where(RUNS.c.job_name == job_name).order_by(RUNS.c.id.desc()).limit(1)
        ).first()
        if row is None:
            return None
        stages = conn.execute(
            sa.select(STAGE_ROWS).where(STAGE_ROWS.c.run_id == row.id).order_by(STAGE_ROWS.c.id)
        ).all()
    return {
        "run_id": row.id,
        "scheduled_for": _iso(row.scheduled_for),
        "status": row.status,
        "stage": row.stage,
        "scan_id": row.scan_id,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "error": row.error,
        "stages": [
            {
                "stage": s.stage,
                "status": s.status,
                "attempts": s.attempts,
                "detail": s.detail,
                "error": s.error,
            }
            for s in stages
        ],
    }


def _iso(value: dt.datetime | None) -> str | None:
    v = _aware(value)
    return v.isoformat() if v is not None else None


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
    from storage.db import make_engine

    engine = make_engine(d.config.database_url)
    try:
        try:
            ensure_tables(engine)
            run_id = claim_run(engine, spec, when, d.holder)
        except sa.exc.SQLAlchemyError as exc:
            # Nothing can be recorded: say so in the log and, straight over SMTP, to the center.
            message = f"数据库不可用，本次未运行：{getattr(exc, 'orig', None) or exc}"
            log.error("schedule %s at %s: %s", spec.name, when, message)
            _mail_center_directly(d.config, spec, when, message)
            return "failed"
        if run_id is None:
            log.info("schedule %s at %s: already claimed by another daemon, skipped", spec.name, when)
            return "skipped"
        log.info("schedule %s at %s: run #%s started", spec.name, when, run_id)
        return Chain(engine, d, run_id, spec).run()
    finally:
        engine.dispose()


def resume(run_id: int) -> str:
    """A job this daemon adds on start for a chain that was interrupted: go on from its stage."""
    d = _daemon()
    from storage.db import make_engine

    engine = make_engine(d.config.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).one()
        spec = JobSpec.from_kwargs(dict(row.spec))
        log.info("schedule %s: resuming run #%s at stage %s", spec.name, run_id, row.stage or "scan")
        return Chain(engine, d, run_id, spec).run()
    finally:
        engine.dispose()


def claim_run(engine: Engine, spec: JobSpec, when: dt.datetime, holder: str) -> int | None:
    """Insert the run of ``spec`` for ``when``; None if another daemon already has it."""
    now = now_utc()
    try:
        with engine.begin() as conn:
            return int(
                conn.execute(
                    sa.insert(RUNS).returning(RUNS.c.id),
                    {
                        "job_name": spec.name,
                        "scheduled_for": when.astimezone(dt.UTC),
                        "status": "running",
                        "stage": "",
                        "holder": holder,
                        "spec": spec.to_kwargs(),
                        "started_at": now,
                        "heartbeat_at": now,
                        "error": "",
                    },
                ).scalar_one()
            )
    except sa.exc.IntegrityError:
        return None


def unfinished_runs(engine: Engine) -> list[int]:
    """Runs to take up: interrupted ones, and running ones whose daemon is gone (latest per job)."""
    ensure_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(RUNS).where(RUNS.c.status.in_(("interrupted", "running"))).order_by(RUNS.c.id)
        ).all()
        latest = dict(
            conn.execute(sa.select(RUNS.c.job_name, sa.func.max(RUNS.c.id)).group_by(RUNS.c.job_name)).all()
        )
    # An older unfinished run is left alone: a newer night has run since and its scan supersedes it.
    return [int(r.id) for r in rows if latest.get(r.job_name) == r.id and _takeable(r)]


def _takeable(row: Any) -> bool:
    """Interrupted, or running for a daemon that is gone (same host) or silent too long (any host)."""
    if row.status == "interrupted":
        return True
    if row.status != "running":
        return False
    beat = _aware(row.heartbeat_at)
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
            .values(status="running", holder=holder, heartbeat_at=now_utc())
        )
        return bool(result.rowcount == 1)


# --- the chain ----------------------------------------------------------------------------------


class Chain:
    """One run of the nightly chain, resumable at the stage where it stopped."""

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

    # bookkeeping

    def _set_run(self, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(RUNS).where(RUNS.c.id == self.run_id).values(heartbeat_at=now_utc(), **values)
            )

    def beat(self) -> None:
        self._set_run()

    def _stage_row(self, stage: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(STAGE_ROWS).where(STAGE_ROWS.c.run_id == self.run_id, STAGE_ROWS.c.stage == stage)
            ).first()

    def _record(
        self, stage: str, status: str, attempts: int, detail: dict[str, Any], error: str = ""
    ) -> None:
        values = {
            "status": status,
            "attempts": attempts,
            "detail": detail,
            "error": error[:4000],
            "finished_at": None if status == "running" else now_utc(),
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(STAGE_ROWS)
                .where(STAGE_ROWS.c.run_id == self.run_id, STAGE_ROWS.c.stage == stage)
                .values(**values)
            ).rowcount
            if not updated:
                conn.execute(
                    sa.insert(STAGE_ROWS),
                    {"run_id": self.run_id, "stage": stage, "started_at": now_utc(), **values},
                )

    # running

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
        stages: dict[str, Callable[[], dict[str, Any]]] = {
            "scan": self.stage_scan,
            "second_pass": self.stage_second_pass,
            "confirm": self.stage_confirm,
            "recheck": self.stage_recheck,
            "reports": self.stage_reports,
            "notify": self.stage_notify,
        }
        for stage in STAGES:
            row = self._stage_row(stage)
            if row is not None and row.status == "ok":
                continue  # done before an interruption: what it produced stands
            if self.d.stop.is_set():
                return self._interrupted(stage, row.attempts if row else 0, "守护进程停止，尚未开始")
            previous = row.attempts if row is not None else 0
            outcome = self._attempt(stage, stages[stage], previous)
            if outcome != "ok":
                return outcome
        self._set_run(status="finished", stage="", finished_at=now_utc(), error="")
        log.info("schedule %s: run #%s finished (scan #%s)", self.spec.name, self.run_id, self.scan_id)
        return "finished"

    def _attempt(self, stage: str, func: Callable[[], dict[str, Any]], previous: int) -> str:
        attempts = previous
        tries = 0
        while True:
            attempts += 1
            tries += 1
            self._set_run(stage=stage)
            self._record(stage, "running", attempts, {})
            log.info(
                "schedule %s: run #%s stage %s (attempt %s)", self.spec.name, self.run_id, stage, attempts
            )
            try:
                detail = func()
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
                    self._record(stage, "retrying", attempts, {}, message)
                    wait = self.spec.retry_wait_s * (2 ** (tries - 1))
                    if self.d.stop.wait(wait):
                        return self._interrupted(
                            stage, attempts, f"等待重试时守护进程停止；上次错误：{message}"
                        )
                    continue
                self._record(stage, "failed", attempts, {}, message)
                self._set_run(status="failed", stage=stage, finished_at=now_utc(), error=message)
                self.alert(stage, attempts, message)
                return "failed"
            self._record(stage, "ok", attempts, detail)
            return "ok"

    def _interrupted(self, stage: str, attempts: int, message: str) -> str:
        self._record(stage, "interrupted", attempts, {"scan_id": self.scan_id}, message)
        self._set_run(status="interrupted", stage=stage, error=message)
        log.warning(
            "schedule %s: run #%s interrupted at stage %s; it resumes when a daemon starts",
            self.spec.name,
            self.run_id,
            stage,
        )
        return "interrupted"

    def _finished_scan(self) -> int:
        """The run's scan id, refusing to go on unless that scan finished."""
        from storage.models import Scan, ScanStatus

        if self.scan_id is None:
            raise StageFailed("本次运行没有巡检记录，后续步骤不能执行", retry=False)
        with self.engine.connect() as conn:
            status = conn.execute(sa.select(Scan.status).where(Scan.id == self.scan_id)).scalar_one_or_none()
        if status != ScanStatus.FINISHED:
            raise StageFailed(
                f"巡检 #{self.scan_id} 的状态是 {status}，未完成，后续步骤不能执行", retry=False
            )
        return self.scan_id

    # stages

    def _badgewatch(self) -> list[str]:
        cmd = [sys.executable, "-m", "badgewatch"]
        if self.d.config_path:
            cmd += ["--config", self.d.config_path]
        if self.d.verbose:
            cmd.append("-" + "v" * self.d.verbose)
        return cmd

    def stage_scan(self) -> dict[str, Any]:
        """Run ``badgewatch scan`` in a child process (Scrapy's reactor runs once per process)."""
        from storage.models import Scan, ScanStatus

        args = ["scan", "--json"]
        if self.scan_id is not None:
            with self.engine.connect() as conn:
                status = conn.execute(
                    sa.select(Scan.status).where(Scan.id == self.scan_id)
                ).scalar_one_or_none()
            if status == ScanStatus.FINISHED:
                return {"scan_id": self.scan_id, "status": "finished", "resumed": False}
            args += ["--resume", str(self.scan_id)]
        else:
            if self.spec.office:
                args += ["--office", self.spec.office]
            if self.spec.limit is not None:
                args += ["--limit", str(self.spec.limit)]
            args += ["--render", self.spec.render]
        return self._scan_child(args)

    def stage_second_pass(self) -> dict[str, Any]:
        """With a confirmation interval shorter than a night, wait until the scan's first pending
        failure is due and visit the pending subjects again (``badgewatch scan --second-pass``), so the
        night's lists hold failures seen on two visits that far apart. Nothing to do otherwise."""
        from storage.streaks import due_at

        scan_id = self._finished_scan()
        hours = self.cfg.confirm_interval_h
        if hours <= 0 or hours >= SAME_NIGHT_H:
            return {"scan_id": scan_id, "skipped": f"confirm_interval_h = {hours:g}"}
        due = due_at(self.engine, scan_id, dt.timedelta(hours=hours))
        if due is None:
            return {"scan_id": scan_id, "pending": 0}
        wait = (due - now_utc()).total_seconds()
        if wait > 0:
            log.info("run #%s: second pass of scan #%s at %s (in %.0f s)", self.run_id, scan_id, due, wait)
            if self.d.stop.wait(wait):
                raise Interrupted(f"等待第二遍巡检（{due:%H:%M} UTC）时守护进程停止")
        detail = self._scan_child(["scan", "--json", "--second-pass", str(scan_id)])
        return {**detail, "second_pass_of": scan_id}

    def _scan_child(self, args: list[str]) -> dict[str, Any]:
        """Run ``badgewatch <args>`` (a scan) in a child process and follow it; its summary."""
        from storage.models import ScanStatus

        started = now_utc()
        proc = subprocess.Popen(
            self._badgewatch() + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Its own session: a terminal's Ctrl-C reaches the daemon only, which asks the scan to stop
            # once (a second SIGINT would make Scrapy stop uncleanly).
            start_new_session=True,
        )
        with self.d.lock:
            self.d.children.add(proc)
        # Its progress and errors go to the daemon's log as they come (the journal shows a night's
        # progress); the last lines are kept for the stage's error message, the JSON summary from stdout.
        out_lines: list[str] = []
        err_tail: deque[str] = deque(maxlen=20)

        def pump(stream: Any, sink: Callable[[str], None]) -> None:
            for line in stream:
                sink(line.rstrip("\n"))

        def to_log(line: str) -> None:
            err_tail.append(line)
            child_log.info("%s", line)

        readers = [
            threading.Thread(target=pump, args=(proc.stdout, out_lines.append), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, to_log), daemon=True),
        ]
        for r in readers:
            r.start()
        asked = False
        try:
            while True:
                try:
                    proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    if self.d.stop.is_set() and not asked:
                        log.info("asking scan (pid %s) to stop and keep its progress", proc.pid)
                        proc.send_signal(signal.SIGINT)
                        asked = True
            for r in readers:
                r.join(timeout=10)
        finally:
            with self.d.lock:
                self.d.children.discard(proc)
        out = "\n".join(out_lines)
        err = "\n".join(err_tail)
        summary = _json_tail(out)
        scan_id = summary.get("scan_id") if summary else None
        if scan_id is None:
            scan_id = self.scan_id or self._scan_of_child(proc.pid, started if asked else None)
        if scan_id is not None and scan_id != self.scan_id:
            self.scan_id = int(scan_id)
            self._set_run(scan_id=self.scan_id)  # the checkpoint: a later attempt resumes this scan
        status = summary.get("status") if summary else None
        if proc.returncode == 0 and status == ScanStatus.FINISHED:
            return {"scan_id": self.scan_id, "status": status, "counters": summary.get("counters", {})}
        if summary.get("error") == "vantage_failed" and not asked:
            # The vantage check failed (crawler/vantage.py): no scan was opened, nothing was written.
            # Retried as any failed stage (a network outage may pass), then the center gets the message.
            raise StageFailed(str(summary.get("message") or "巡检未开始：参照网站检查失败"))
        tail = (err or "").strip().splitlines()[-5:]
        message = "；".join(tail) or f"退出码 {proc.returncode}"
        if asked:
            raise Interrupted(f"巡检 #{self.scan_id} 已按停止请求中断并保存进度：{message}")
        if status == ScanStatus.FINISHED:
            raise StageFailed(f"巡检 #{self.scan_id} 退出码 {proc.returncode}：{message}")
        raise StageFailed(
            f"巡检{'' if self.scan_id is None else f' #{self.scan_id}'}未完成（{status}）：{message}"
        )

    def _scan_of_child(self, pid: int, since: dt.datetime | None) -> int | None:
        """The scan a child opened but could not report: its locks name the child (killed hard); or,
        when we stopped it ourselves, an unfinished scan opened since it started (it released its locks
        on the way out, and no overlapping scan can have started meanwhile)."""
        from storage.models import Scan, ScanLock, ScanStatus

        with self.engine.connect() as conn:
            sid = conn.execute(
                sa.select(sa.func.max(ScanLock.scan_id)).where(
                    ScanLock.holder == f"{socket.gethostname()}:{pid}"
                )
            ).scalar_one_or_none()
            if sid is None and since is not None:
                sid = conn.execute(
                    sa.select(sa.func.max(Scan.id)).where(
                        Scan.started_at >= since, Scan.status != ScanStatus.FINISHED
                    )
                ).scalar_one_or_none()
        return int(sid) if sid is not None else None

    def stage_confirm(self) -> dict[str, Any]:
        """Settle which failures of the night are confirmed: seen on visits ``confirm_interval_h``
        apart (``storage/streaks.py``; the scan did it already, this is idempotent and covers a scan
        closed by another process)."""
        from storage.streaks import confirm

        scan_id = self._finished_scan()
        return confirm(self.engine, scan_id, self.cfg).to_dict()

    def stage_recheck(self) -> dict[str, Any]:
        """Re-derive the scan's findings from its stored evidence with the current rules."""
        from crawler.checking import rules_from_config
        from crawler.recheck import recheck_scan
        from storage.evidence import EvidenceStore

        scan_id = self._finished_scan()
        s = recheck_scan(
            self.engine, scan_id, EvidenceStore(self.cfg.evidence_dir), rules_from_config(self.cfg)
        )
        if s.missing_evidence:
            log.warning("scan #%s: evidence of %s subjects is missing", scan_id, s.missing_evidence)
        return {
            "scan_id": scan_id,
            "subjects": s.subjects,
            "changed": s.changed,
            "missing_evidence": s.missing_evidence,
        }

    def stage_reports(self) -> dict[str, Any]:
        """Coverage table and non-compliance lists of the scope, as XLSX and JSON files."""
        from sqlalchemy.orm import Session

        from reports.documents import coverage_document, noncompliance_document
        from reports.render import render_xlsx
        from reports.source import coverage_from_db, noncompliance_from_db

        scan_id = self._finished_scan()
        out = Path(self.spec.output) / self.spec.name / f"scan-{scan_id}"
        out.mkdir(parents=True, exist_ok=True)
        written: list[str] = []
        with Session(self.engine) as session:
            table = coverage_from_db(session, self.spec.office, dt.date.today(), scan_id=scan_id)
            nc = noncompliance_from_db(session, scan_id, self.spec.office)
            files = {
                "coverage.xlsx": render_xlsx(coverage_document(table)),
                "coverage.json": _json_bytes(table.to_dict()),
                "noncompliance.xlsx": render_xlsx(noncompliance_document(nc)),
                "noncompliance.json": _json_bytes(nc.to_dict()),
            }
        for name, data in files.items():
            path = out / name
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)  # a reader never sees half a file
            written.append(str(path))
        failures = sum(len(o.failures) for o in nc.offices)
        return {"scan_id": scan_id, "files": written, "offices": len(nc.offices), "failures": failures}

    def stage_notify(self) -> dict[str, Any]:
        """Each office of the scope its list, the center the whole list (each message once)."""
        from sqlalchemy.orm import Session

        from reports.delivery.outbox import RetryPolicy, dispatch, enqueue
        from reports.notify import default_senders, plan_for_scan
        from reports.source import get_scan
        from storage.evidence import EvidenceStore
        from storage.models import Notification, NotificationStatus

        scan_id = self._finished_scan()
        store = EvidenceStore(self.cfg.evidence_dir)
        with Session(self.engine, expire_on_commit=False) as session:
            # The lists go to the offices the scan covered (its scope is the schedule's office).
            scan = get_scan(session, scan_id)
            assert scan is not None
            p = plan_for_scan(session, self.cfg, scan)
            recorded = 0
            for msg in p.messages:
                _, created = enqueue(session, msg, store)
                recorded += created
            session.commit()
            keys = [m.dedupe_key for m in p.messages]
            rows = (
                list(
                    session.scalars(
                        sa.select(Notification)
                        .where(
                            Notification.dedupe_key.in_(keys),
                            Notification.status == NotificationStatus.PENDING.value,
                        )
                        .order_by(Notification.id)
                    )
                )
                if keys
                else []
            )
            # The chain's own retries space the attempts; within one attempt, try each message once.
            result = dispatch(
                session,
                rows,
                default_senders(self.cfg),
                store,
                # backoff_s=0: the stage's retry wait is the backoff, so no message waits past it.
                RetryPolicy(attempts_per_run=1, backoff_s=0.0, max_attempts=max(10, self.spec.retries + 1)),
            )
            sent = len(result.sent)
            problems = [
                f"{n.recipient}：{n.last_error}" for n in result.retry + result.failed + result.waiting
            ]
        for s in p.skipped:
            log.warning("scan #%s: %s", scan_id, s)
        if problems:
            raise StageFailed(f"{len(problems)} 封邮件未发出：" + "；".join(problems[:5]))
        return {
            "scan_id": scan_id,
            "messages": len(p.messages),
            "recorded": recorded,
            "sent": sent,
            "skipped": p.skipped,
        }

    # reporting a failure

    def alert(self, stage: str, attempts: int, message: str) -> None:
        """Tell the domain center that a stage failed for good (once per run and stage)."""
        from reports.notify import addresses

        centers = [a for a in addresses(self.cfg.center_email) if "@" in a]
        if not centers:
            log.error(
                "schedule %s: run #%s failed at %s and center_email is not set: %s",
                self.spec.name,
                self.run_id,
                stage,
                message,
            )
            return
        try:
            _send_alert(self.cfg, self.run_id, self.spec, stage, attempts, message, self.scan_id, centers)
        except Exception:  # the failure itself is recorded; an unreachable mail server must not hide it
            log.exception("schedule %s: could not report the failure of run #%s", self.spec.name, self.run_id)


def _send_alert(
    cfg: Config,
    run_id: int,
    spec: JobSpec,
    stage: str,
    attempts: int,
    message: str,
    scan_id: int | None,
    centers: list[str],
) -> None:
    from html import escape

    from sqlalchemy.orm import Session

    from reports.delivery.outbox import Outgoing, RetryPolicy, dispatch, enqueue
    from reports.notify import default_senders
    from storage.db import make_engine

    labels = {
        "scan": "巡检",
        "confirm": "确认",
        "recheck": "重新判定",
        "reports": "生成报表",
        "notify": "发送通知",
    }
    subject = f"【网标巡检】定时任务 {spec.name} 失败：{labels.get(stage, stage)}（运行 #{run_id}）"
    body = (
        f"<html><body><p>定时任务 <b>{escape(spec.name)}</b>（{escape(spec.cron)}，{escape(spec.tz)}，"
        f"范围：{escape(spec.office or '全部编办')}）的第 #{run_id} 次运行在“{labels.get(stage, stage)}”"
        f"步骤失败，已尝试 {attempts} 次。</p>"
        f'<p style="white-space: pre-wrap"><b>错误：</b>{escape(message)}</p>'
        f"<p>巡检编号：{scan_id if scan_id is not None else '无'}。此前各步骤的结果已保存，"
        f"处理办法见运维手册 docs/operations.md（“某一夜失败时”）。</p></body></html>"
    )
    engine = make_engine(cfg.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            rows = []
            for addr in centers:
                row, _ = enqueue(
                    session,
                    Outgoing(
                        f"schedule:{run_id}:{stage}:failed:email:{addr.lower()}", "email", addr, subject, body
                    ),
                    None,
                )
                rows.append(row)
            session.commit()
            dispatch(
                session, rows, default_senders(cfg), None, RetryPolicy(attempts_per_run=2, backoff_s=1.0)
            )
    finally:
        engine.dispose()


def _mail_center_directly(cfg: Config, spec: JobSpec, when: dt.datetime, message: str) -> None:
    """An alert that cannot go through the outbox (the database is down): sent once, not recorded."""
    from html import escape

    from reports.delivery.mail import DeliveryError, SmtpSettings, build_email, send_email
    from reports.notify import addresses

    subject = f"【网标巡检】定时任务 {spec.name} 未能运行（计划 {when.isoformat()}）"
    for addr in (a for a in addresses(cfg.center_email) if "@" in a):
        try:
            msg = build_email(cfg.smtp_from, addr, subject, f"<p>{escape(message)}</p>", message)
            send_email(SmtpSettings.from_config(cfg), msg)
        except (DeliveryError, ValueError) as exc:
            log.error("could not tell %s that schedule %s did not run: %s", addr, spec.name, exc)


def _json_tail(text: str | None) -> dict[str, Any]:
    """The JSON object ``scan --json`` prints last (empty if there is none)."""
    if not text:
        return {}
    start = text.find("{")
    while start != -1:
        try:
            value = json.loads(text[start:])
            return value if isinstance(value, dict) else {}
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    return {}


def _json_bytes(payload: Any) -> bytes:
    return (json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n").encode("utf-8")


# --- the daemon ---------------------------------------------------------------------------------


def run_daemon(d: Daemon, grace_s: int = DEFAULT_GRACE_S, poll_s: float = POLL_S, workers: int = 4) -> None:
    """Run schedules until SIGTERM/SIGINT; then checkpoint the running chain and return."""
    global _DAEMON
    from storage.db import make_engine

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
    from storage.db import DatabaseError, make_engine

    try:
        engine = make_engine(_config(ctx).database_url)
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield engine
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from exc
    except sa.exc.OperationalError as exc:
        raise click.ClickException(f"数据库无法使用: {exc.orig}") from exc
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
        from storage.models import Office

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
                        "next_run_time": _iso(i.next_run_time),
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
    from storage.db import DatabaseError

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
