"""What a reviewer was shown when deciding, read back from the workflow's audit trail.

Each decision is an ``AnnualReportEvent`` (storage): who moved the report from which state to which,
when and why, and in its ``shown``/``via``/``client`` columns the evidence the reviewer had in front
of them (finding ids, captures and blob keys, derived values and disagreements), how the decision came
in and from which client address. The schema is Alembic's (migration 0002); nothing is created here.
"""

from __future__ import annotations

from typing import Any

from storage.models import AnnualReport, AnnualReportEvent

# How a reviewer's decision comes in; other events ("import", "system", "") are not review decisions.
REVIEW_CHANNELS = ("console", "api")


def record_decision(event: AnnualReportEvent, *, shown: dict[str, Any], via: str, client: str) -> None:
    """Attach what the reviewer was shown, the channel and the client address to ``event``."""
    if via not in REVIEW_CHANNELS:
        raise ValueError(f"unknown review channel {via!r} (expected one of {REVIEW_CHANNELS})")
    event.shown = shown
    event.via = via
    event.client = client[:100]


def decisions_of(report: AnnualReport) -> dict[int, AnnualReportEvent]:
    """The report's review decisions (events taken in the console or through the API), by event id."""
    return {e.id: e for e in report.events if e.via in REVIEW_CHANNELS}
