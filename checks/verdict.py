"""Verdict types shared by every check.

:class:`~checks.status.Status` lives in its own module so that the reason catalogue (which gives each
code its status) and the verdict (which reads its message from the catalogue) import in one direction:
``status`` ← ``reasons`` ← ``verdict``. It is re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from checks.reasons import describe
from checks.status import Status

__all__ = ["Evidence", "Status", "Verdict"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """The exact markup or text a verdict rests on.

    ``source`` names the document: ``home`` (decoded home page), ``rendered`` (browser DOM),
    ``script:<url>``, ``bszs``, ``image:<url>``, ``dns``, ``http``. ``start``/``end`` are character
    offsets into that decoded document when known.
    """

    source: str
    excerpt: str
    start: int | None = None
    end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "excerpt": self.excerpt, "start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One check's conclusion: status, stable reason code, specifics, evidence and extracted data.

    ``data`` carries what the check read (badge kind/code/verify_id, ICP number, ...); its keys are
    documented per check in ``docs/reasons.md``.
    """

    check: str
    status: Status
    reason: str
    detail: str = ""
    evidence: tuple[Evidence, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """The reason in plain Chinese, from the catalogue."""
        return describe(self.reason).message

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": str(self.status),
            "reason": self.reason,
            "message": self.message,
            "detail": self.detail,
            "evidence": [e.to_dict() for e in self.evidence],
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Verdict:
        return cls(
            check=str(raw["check"]),
            status=Status(raw["status"]),
            reason=str(raw["reason"]),
            detail=str(raw.get("detail", "")),
            evidence=tuple(
                Evidence(e["source"], e["excerpt"], e.get("start"), e.get("end"))
                for e in raw.get("evidence", ())
            ),
            data=dict(raw.get("data", {})),
        )
