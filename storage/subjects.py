"""What a finding or capture is about: a :class:`Subject`, written ``site:12``, ``domain:7`` or
``unit:3`` in the database, the distributed frontier and the JSON outputs.

This is the one place that string is built (:meth:`Subject.__str__`) and read (:meth:`Subject.parse`).
A subject id is a code for logs and ``--json``; what an official reads names the site or domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SubjectKind(StrEnum):
    SITE = "site"  # a website (storage.models.Website): visited
    DOMAIN = "domain"  # a domain (storage.models.Domain): resolved, a Chinese one also fetched
    UNIT = "unit"  # a unit as a whole (storage.models.Unit): judged from the registry alone

    @property
    def prefix(self) -> str:
        """``"site:"``: what every subject of this kind begins with (for SQL ``LIKE`` and prefixes)."""
        return f"{self.value}:"


@dataclass(frozen=True, slots=True)
class Subject:
    kind: SubjectKind
    id: int

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Subject:
        """``"site:12"`` → ``Subject(SITE, 12)``; :class:`ValueError` for anything else."""
        kind, _, raw = text.partition(":")
        if kind not in SubjectKind.__members__.values() or not raw.isdigit():
            raise ValueError(f"not a subject: {text!r}")
        return cls(SubjectKind(kind), int(raw))

    @classmethod
    def site(cls, website_id: int) -> Subject:
        return cls(SubjectKind.SITE, website_id)

    @classmethod
    def domain(cls, domain_id: int) -> Subject:
        return cls(SubjectKind.DOMAIN, domain_id)

    @classmethod
    def unit(cls, unit_id: int) -> Subject:
        return cls(SubjectKind.UNIT, unit_id)


def kind_of(text: str) -> SubjectKind:
    """The kind of a stored subject string (:class:`ValueError` if it is not one)."""
    return Subject.parse(text).kind
