"""The nightly chain's vocabulary and records: its stages and statuses (the one place they are spelled),
the errors a stage raises, and the rows of ``schedule_run`` / ``schedule_stage`` (migration 0003).

The scheduler (``scheduler.py``) drives the chain; the stages' bodies live with the packages that own
the work (``crawler/stages.py``: scan and recheck, ``storage/streaks.py``: confirmation,
``reports/stages.py``: reports and notification) and raise :class:`StageFailed` / :class:`Interrupted`
from here, so none of them imports the scheduler.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from checks.errors import StateError
from storage.models import ScheduleRun, ScheduleStage
from storage.types import utcnow


class Stage(StrEnum):
    """The stages of the chain, in the order they run (``docs/operations.md``)."""

    SCAN = "scan"
    SECOND_PASS = "second_pass"
    CONFIRM = "confirm"
    RECHECK = "recheck"
    REPORTS = "reports"
    NOTIFY = "notify"

    @property
    def label(self) -> str:
        """The stage's name for the domain center (alert e-mails)."""
        return _LABELS[self]


_LABELS = {
    Stage.SCAN: "巡检",
    Stage.SECOND_PASS: "第二遍巡检",
    Stage.CONFIRM: "确认",
    Stage.RECHECK: "重新判定",
    Stage.REPORTS: "生成报表",
    Stage.NOTIFY: "发送通知",
}


class RunStatus(StrEnum):
    """``schedule_run.status``. A job's return value is one of these or :attr:`SKIPPED` (not stored:
    another daemon claimed the firing)."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"


class StageStatus(StrEnum):
    """``schedule_stage.status``: ``retrying`` while a failed attempt waits for the next one."""

    RUNNING = "running"
    OK = "ok"
    RETRYING = "retrying"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ScheduleError(StateError):
    """A schedule cannot be added, run or found (the message says which and why, in Chinese)."""


class StageFailed(ScheduleError):
    """One attempt of a stage failed; ``retry`` says whether trying again may help."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Interrupted(ScheduleError):
    """The daemon was asked to stop while a stage was running; the stage kept a checkpoint."""


# The chain's tables, used through SQLAlchemy Core (the daemon's threads share no ORM session).
RUNS: sa.Table = ScheduleRun.__table__  # type: ignore[assignment]
STAGE_ROWS: sa.Table = ScheduleStage.__table__  # type: ignore[assignment]


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands timestamps back naive; they were written as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    v = aware(value)
    return v.isoformat() if v is not None else None


def insert_run(engine: Engine, name: str, spec: dict[str, Any], when: dt.datetime, holder: str) -> int | None:
    """Insert the run of schedule ``name`` for ``when``; None if another daemon already has it."""
    now = utcnow()
    try:
        with engine.begin() as conn:
            return int(
                conn.execute(
                    sa.insert(RUNS).returning(RUNS.c.id),
                    {
                        "job_name": name,
                        "scheduled_for": when.astimezone(dt.UTC),
                        "status": RunStatus.RUNNING,
                        "stage": "",
                        "holder": holder,
                        "spec": spec,
                        "started_at": now,
                        "heartbeat_at": now,
                        "error": "",
                    },
                ).scalar_one()
            )
    except sa.exc.IntegrityError:
        return None


def set_run(engine: Engine, run_id: int, **values: Any) -> None:
    """Update the run's row (and beat its heartbeat)."""
    with engine.begin() as conn:
        conn.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(heartbeat_at=utcnow(), **values))


def stage_row(engine: Engine, run_id: int, stage: Stage) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(STAGE_ROWS).where(STAGE_ROWS.c.run_id == run_id, STAGE_ROWS.c.stage == stage)
        ).first()


def record_stage(
    engine: Engine,
    run_id: int,
    stage: Stage,
    status: StageStatus,
    attempts: int,
    detail: dict[str, Any],
    error: str = "",
) -> None:
    """Write the stage's row of the run (inserted the first time)."""
    values = {
        "status": status,
        "attempts": attempts,
        "detail": detail,
        "error": error[:4000],
        "finished_at": None if status == StageStatus.RUNNING else utcnow(),
    }
    with engine.begin() as conn:
        updated = conn.execute(
            sa.update(STAGE_ROWS)
            .where(STAGE_ROWS.c.run_id == run_id, STAGE_ROWS.c.stage == stage)
            .values(**values)
        ).rowcount
        if not updated:
            conn.execute(
                sa.insert(STAGE_ROWS), {"run_id": run_id, "stage": stage, "started_at": utcnow(), **values}
            )


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
        "scheduled_for": iso(row.scheduled_for),
        "status": row.status,
        "stage": row.stage,
        "scan_id": row.scan_id,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
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


__all__ = [
    "RUNS",
    "STAGE_ROWS",
    "Interrupted",
    "RunStatus",
    "ScheduleError",
    "Stage",
    "StageFailed",
    "StageStatus",
    "insert_run",
    "last_run",
    "record_stage",
    "set_run",
    "stage_row",
]
