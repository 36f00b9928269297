"""The outcome of one check (its own module: the reason catalogue and the verdict both need it)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Outcome of one check. ``unknown`` never counts as non-compliance."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    UNKNOWN = "unknown"
