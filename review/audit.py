"""What a reviewer was shown when deciding: one row per decision, beside the workflow's audit trail.

``AnnualReportEvent`` (storage) records who moved a report from which state to which, when and why.
The evidence the reviewer had in front of them (findings, captures and the blobs behind them, the
derived values and disagreements) is kept here, keyed by the event id.

This table lives outside the Alembic-managed schema until ``AnnualReportEvent`` gets a column for it
(requested from storage); :func:`ensure_schema` creates it if missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import UtcDateTime, utcnow


class _AuditBase(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: sa.JSON()}  # noqa: RUF012


class ReviewDecision(_AuditBase):
    """One decision taken in the console or through the API, with the evidence shown."""

    __tablename__ = "review_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(index=True, unique=True)
    report_id: Mapped[int] = mapped_column(index=True)
    user_id: Mapped[int]
    user_name: Mapped[str] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(20))
    via: Mapped[str] = mapped_column(sa.String(10))  # "console" | "api"
    client: Mapped[str] = mapped_column(sa.String(100), default="")  # client address
    shown: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


def ensure_schema(engine: Engine) -> None:
    """Create the decision table when it is missing (idempotent)."""
    _AuditBase.metadata.create_all(engine, checkfirst=True)
