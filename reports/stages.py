"""The reports' stages of the nightly chain (``scheduler.py``): the scope's files, then its notices.

Each takes the finished scan's id (the scheduler has checked it finished) and returns the stage's
detail for ``schedule_stage``; a stage that must be tried again raises
:class:`storage.chain.StageFailed`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from reports.delivery.outbox import RetryPolicy, dispatch, enqueue
from reports.documents import coverage_document, noncompliance_document
from reports.notify import default_senders, plan_for_scan
from reports.render import render_xlsx
from reports.source import coverage_from_db, get_scan, noncompliance_from_db
from storage.chain import StageFailed
from storage.config import Config
from storage.evidence import EvidenceStore
from storage.files import write_atomic
from storage.models import Notification, NotificationStatus

log = logging.getLogger("badgewatch.scheduler")


def write_reports(engine: Engine, scan_id: int, office: str | None, out: Path) -> dict[str, Any]:
    """The ``reports`` stage: coverage table and non-compliance lists of the scope, as XLSX and JSON
    files in ``out``, each written whole (a reader never sees half a file)."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    with Session(engine) as session:
        table = coverage_from_db(session, office, dt.date.today(), scan_id=scan_id)
        nc = noncompliance_from_db(session, scan_id, office)
        files = {
            "coverage.xlsx": render_xlsx(coverage_document(table)),
            "coverage.json": _json_bytes(table.to_dict()),
            "noncompliance.xlsx": render_xlsx(noncompliance_document(nc)),
            "noncompliance.json": _json_bytes(nc.to_dict()),
        }
    for name, data in files.items():
        path = out / name
        write_atomic(path, data)
        written.append(str(path))
    failures = sum(len(o.failures) for o in nc.offices)
    return {"scan_id": scan_id, "files": written, "offices": len(nc.offices), "failures": failures}


def notify_scan(engine: Engine, cfg: Config, scan_id: int, retries: int) -> dict[str, Any]:
    """The ``notify`` stage: each office of the scan's scope its list, the center the whole list (each
    message once: a message already sent is never sent again)."""
    store = EvidenceStore(cfg.evidence_dir)
    with Session(engine, expire_on_commit=False) as session:
        # The lists go to the offices the scan covered (its scope is the schedule's office).
        scan = get_scan(session, scan_id)
        if scan is None:
            raise StageFailed(f"巡检 #{scan_id} 不存在", retry=False)
        p = plan_for_scan(session, cfg, scan)
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
            default_senders(cfg),
            store,
            # backoff_s=0: the stage's retry wait is the backoff, so no message waits past it.
            RetryPolicy(attempts_per_run=1, backoff_s=0.0, max_attempts=max(10, retries + 1)),
        )
        sent = len(result.sent)
        problems = [f"{n.recipient}：{n.last_error}" for n in result.retry + result.failed + result.waiting]
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


def _json_bytes(payload: Any) -> bytes:
    return (json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n").encode("utf-8")
