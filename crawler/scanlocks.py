"""A scan's row and its locks: open (or resume) a scan under its per-office locks, close it.

Two scans whose scopes overlap cannot run at once: a scan takes one :class:`storage.models.ScanLock`
row per office in its scope (an INSERT the primary key refuses to a second holder). A lock whose
holder process is gone (same host, pid no longer alive) or whose heartbeat is older than
:data:`STALE_AFTER_S` is taken over, so a scan killed with ``kill -9`` can be resumed at once.

Kept apart from :mod:`crawler.scanrun` (which starts Scrapy) so that the spider, the distributed runner
and the scheduler can open and close scans without importing the runner.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from checks.errors import StateError
from crawler.jobs import Scope, lock_names
from storage.config import Config
from storage.models import Finding, Scan, ScanLock, ScanStatus
from storage.types import utcnow

STALE_AFTER_S = 300
# Lock holder of a distributed scan: no single process holds it (the workers beat its heartbeat).
DISTRIBUTED_HOLDER = "workers@"


class ScanError(StateError):
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
