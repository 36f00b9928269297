"""A verdict as the columns of its ``finding`` row: written by the store pipeline after a visit and by
``recheck`` from stored evidence, the same way (one place, so a recheck stores exactly what a scan
would)."""

from __future__ import annotations

from typing import Any

from checks.verdict import Verdict


def verdict_columns(v: Verdict) -> dict[str, Any]:
    """The columns of a finding that come from its verdict (the rest say where and when)."""
    return {
        "check": v.check,
        "status": str(v.status),
        "reason": v.reason,
        "detail": storable(v.detail),
        "evidence": jsonable([e.to_dict() for e in v.evidence]),
        "data": jsonable(dict(v.data)),
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {storable(str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return storable(value.decode("utf-8", "replace"))
    return storable(str(value))


def storable(text: str) -> str:
    """``text`` as every database stores it: NUL (refused by PostgreSQL in text and JSON) shown as
    U+FFFD, unpaired surrogates (which no codec writes) replaced. What a server sends ends up here:
    header values, Location targets, error messages quoting a status line."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
