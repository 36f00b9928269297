"""Spreadsheet formula guard (OWASP "CSV injection"): the one rule every file we write for Excel or WPS
follows — registry exports (``storage/tables.py``) and reports (``reports/tabular.py``) alike.

A value is formula-like when, after leading spaces (Excel and WPS skip them before ``=``), it begins
with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return or a line feed, or their full-width forms
``＝ ＋ － ＠`` (WPS reads those as formulas too). Such a value is written behind a ``'``, which the
spreadsheet shows as text and our own readers take off again.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def is_formula_like(value: str) -> bool:
    return value.lstrip(" ").startswith(FORMULA_START) if value else False


def escape(value: str) -> str:
    """A string a spreadsheet shows as text, never runs: formula-like text gets a leading ``'``."""
    return "'" + value if is_formula_like(value) else value


def unescape(value: str) -> str:
    """Undo :func:`escape` when reading a file back: ``'=x`` → ``=x``."""
    if len(value) > 1 and value[0] == "'" and is_formula_like(value[1:]):
        return value[1:]
    return value
