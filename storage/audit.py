"""The lasting audit trail: append, read and verify :class:`~storage.models.AuditEvent` rows.

Every row carries ``prev_hash`` (the previous row's ``hash``, or :data:`GENESIS` for the first) and
``hash`` = SHA-256 over ``prev_hash`` and the row's content in a canonical JSON form. Appending takes
a lock first (PostgreSQL: a transaction-level advisory lock; SQLite: the write lock a transaction
holds once it has written), so two writers never chain onto the same predecessor — and the unique
``prev_hash`` refuses it if they ever did. The database refuses UPDATE and DELETE (triggers of
migration 0008); the chain makes a change made with the triggers dropped visible to :func:`verify`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import AuditEvent
from storage.types import utcnow

GENESIS = "0" * 64
# Any constant: the advisory lock that serialises appends on PostgreSQL ("bwau").
_PG_LOCK = 0x62776175
# Channels a submission or decision comes in by.
CHANNELS = ("console", "api", "import")
HASHED = (
    "at",
    "kind",
    "actor",
    "user_id",
    "role",
    "via",
    "client",
    "report_id",
    "unit_id",
    "unit_name",
    "office_code",
    "year",
    "version",
    "detail",
)


def _canonical_at(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_of(row: AuditEvent) -> dict[str, Any]:
    """The hashed content of ``row`` (everything but ``id`` and the hashes)."""
    out = {k: getattr(row, k) for k in HASHED}
    out["at"] = _canonical_at(row.at)
    return out


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + "\n" + text).encode("utf-8")).hexdigest()


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    else:
        # SQLite: a write statement takes the database's write lock for the rest of the transaction,
        # so the predecessor read below cannot change before our insert commits. (No row matches.)
        session.execute(sa.update(AuditEvent).where(sa.false()).values(kind=AuditEvent.kind))


def head(session: Session) -> AuditEvent | None:
    return session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()


def append(
    session: Session,
    *,
    kind: str,
    actor: str,
    via: str,
    client: str = "",
    user_id: int | None = None,
    role: str = "",
    report_id: int | None = None,
    unit_id: int | None = None,
    unit_name: str = "",
    office_code: str = "",
    year: int | None = None,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEvent:
    """Chain one event onto the trail (flushed, not committed: it commits with what it records)."""
    if via not in CHANNELS:
        raise ValueError(f"unknown channel {via!r} (expected one of {CHANNELS})")
    session.flush()
    _lock(session)
    last = head(session)
    # Microseconds are what both databases keep: the hash is computed over what will be read back.
    row = AuditEvent(
        at=at or utcnow(),
        kind=kind,
        actor=actor[:200],
        user_id=user_id,
        role=role,
        via=via,
        client=client[:200],
        report_id=report_id,
        unit_id=unit_id,
        unit_name=unit_name[:200],
        office_code=office_code,
        year=year,
        version=version,
        detail=json.loads(json.dumps(detail or {}, ensure_ascii=False, default=str)),
        prev_hash=last.hash if last is not None else GENESIS,
    )
    row.hash = chain_hash(row.prev_hash, content_of(row))
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What :func:`verify` found: rows read, the head hash, and the first break (if any)."""

    count: int
    head: str
    broken_at: int | None = None  # id of the first row whose hash or link does not hold
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def _rows(session: Session, batch: int = 1000) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        chunk = list(
            session.scalars(
                sa.select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
            )
        )
        if not chunk:
            return
        yield from chunk
        last_id = chunk[-1].id
        session.expunge_all()


def verify(session: Session) -> ChainCheck:
    """Walk the whole trail and check every link and hash."""
    prev = GENESIS
    n = 0
    for row in _rows(session):
        n += 1
        if row.prev_hash != prev:
            return ChainCheck(n, prev, row.id, f"第{n}条事件（编号 {row.id}）之前的事件被删除或改动过")
        if chain_hash(prev, content_of(row)) != row.hash:
            return ChainCheck(n, prev, row.id, f"第{n}条事件（编号 {row.id}）的内容被改动过")
        prev = row.hash
    return ChainCheck(n, prev)


def evidence_of(details: Iterable[Any]) -> tuple[set[int], set[int]]:
    """Capture ids and finding ids that the ``shown`` records in ``details`` name (what decisions
    rest on, which retention keeps)."""
    captures: set[int] = set()
    findings: set[int] = set()
    for detail in details:
        shown = detail.get("shown") if isinstance(detail, dict) else None
        if not isinstance(shown, dict):
            continue
        for cap in shown.get("captures") or []:
            if isinstance(cap, dict) and isinstance(cap.get("id"), int):
                captures.add(cap["id"])
        for key in ("finding_ids",):
            findings.update(x for x in shown.get(key) or [] if isinstance(x, int))
    return captures, findings
