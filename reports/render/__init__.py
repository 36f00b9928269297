"""Renderers of a :class:`reports.tabular.Document`: text, CSV, XLSX and HTML."""

from __future__ import annotations

from reports.render.csvout import render_csv
from reports.render.htmlout import render_html
from reports.render.textout import render_text
from reports.render.xlsxout import render_xlsx

FORMATS = ("text", "csv", "xlsx", "html", "json")

__all__ = ["FORMATS", "render_csv", "render_html", "render_text", "render_xlsx"]
