"""A report as the renderers see it: titled sheets of typed columns, notes and an optional chart.

Each report kind (coverage, non-compliance, annual) converts itself into a :class:`Document`; the
text, CSV, XLSX and HTML renderers only know this shape. JSON is rendered from the report objects
themselves (its shape is documented per report).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

from storage.formulas import escape
from storage.formulas import is_formula_like as is_formula_like  # re-exported for the renderers


class Kind(StrEnum):
    TEXT = "text"
    INT = "int"
    PCT = "pct"  # an int percentage; None prints as —
    LINK = "link"  # text; the row carries the target in ``links``


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    kind: Kind = Kind.TEXT
    width: int = 0  # XLSX width in characters; 0 = from the content
    nowrap: bool = False  # keep on one line (a unit's name, a date): the other columns wrap instead


@dataclass(frozen=True, slots=True)
class Chart:
    """A bar chart of one numeric column against the label column."""

    title: str
    label_column: int
    value_column: int
    axis_title: str = ""


@dataclass(slots=True)
class Sheet:
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    name: str = ""  # XLSX sheet name (≤31 characters, no []:*?/\)
    total: list[Any] | None = None
    notes: list[str] = field(default_factory=list)
    chart: Chart | None = None
    links: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) → URL
    highlight: set[int] = field(default_factory=set)  # row indexes to mark (flagged rows)
    empty_text: str = "（无）"
    subtitle: str = ""  # one line under the title: the date, the scope
    fills: dict[int, str] = field(default_factory=dict)  # row index → background RRGGBB (a status)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, RRGGBB) shown with the rows


@dataclass(slots=True)
class Document:
    title: str
    subtitle: str = ""
    sheets: list[Sheet] = field(default_factory=list)
    footer: str = ""


@lru_cache(maxsize=65536)
def _char_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal/spreadsheet columns a string occupies: CJK and full-width characters count two."""
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def safe_text(value: str) -> str:
    """A string a spreadsheet shows as text, never runs (the guard of ``storage/formulas.py``)."""
    return escape(value)


def cell_text(value: Any, kind: Kind) -> str:
    """How a cell prints in text, CSV and HTML."""
    if value is None:
        return "—" if kind in (Kind.PCT, Kind.INT) else ""
    if kind is Kind.PCT:
        return f"{value}%"
    return str(value)
