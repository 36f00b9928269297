"""Percentages as the official tables print them: whole percent, rounded half-up (52.5% → 53%)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def pct_half_up(numerator: int, denominator: int) -> int | None:
    """``numerator / denominator`` as a whole percentage rounded half-up; ``None`` when undefined.

    Exact decimal arithmetic: binary floats round 52.5 to 52 half the time (banker's rounding
    and representation error), which would not reproduce the published tables.
    """
    if denominator <= 0:
        return None
    value = Decimal(numerator) * 100 / Decimal(denominator)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_pct(value: int | None) -> str:
    """``53%``, or ``—`` when the percentage is undefined (no institutions on the roster)."""
    return "—" if value is None else f"{value}%"
