"""HTML: a printable page (A4 landscape) with an inline SVG bar chart; the browser renders the text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from reports.tabular import Chart, Column, Document, Kind, Sheet, cell_text

_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_env = Environment(
    loader=FileSystemLoader(str(_TEMPLATES)),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    text: str
    y: float
    width: float


@dataclass(frozen=True, slots=True)
class SvgChart:
    title: str
    bars: list[Bar]
    width: int
    height: int
    label_width: int
    plot_width: int
    reference_x: float | None  # the 100% line
    bar_height: int


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def svg_chart(sheet: Sheet, chart: Chart) -> SvgChart:
    """Geometry of a horizontal bar chart of ``chart.value_column`` by ``chart.label_column``."""
    label_width, plot_width, bar_h, gap = 110, 520, 16, 6
    kind = sheet.columns[chart.value_column].kind
    values = [
        (str(r[chart.label_column]), _number(r[chart.value_column]), r[chart.value_column])
        for r in sheet.rows
    ]
    top = max([v for _, v, _ in values if v is not None] + [100.0 if kind is Kind.PCT else 1.0])
    bars = []
    for i, (label, value, raw) in enumerate(values):
        w = 0.0 if value is None else plot_width * value / top
        bars.append(Bar(label, value or 0.0, cell_text(raw, kind), 30 + i * (bar_h + gap), w))
    ref = label_width + plot_width * 100 / top if kind is Kind.PCT else None
    height = 30 + len(bars) * (bar_h + gap) + 10
    return SvgChart(
        chart.title, bars, label_width + plot_width + 60, height, label_width, plot_width, ref, bar_h
    )


def _css_class(col: Column) -> str:
    if col.kind in (Kind.INT, Kind.PCT):
        return "num"
    return "nowrap" if col.nowrap else ""


def render_html(doc: Document) -> str:
    """The document as one self-contained HTML page (no external resources)."""
    sheets = []
    for sheet in doc.sheets:
        classes = [_css_class(c) for c in sheet.columns]
        rows = [
            [
                (cell_text(v, c.kind), sheet.links.get((i, j)), classes[j])
                for j, (v, c) in enumerate(zip(row, sheet.columns, strict=True))
            ]
            for i, row in enumerate(sheet.rows)
        ]
        total = (
            None
            if sheet.total is None
            else [
                (cell_text(v, c.kind), None, classes[j])
                for j, (v, c) in enumerate(zip(sheet.total, sheet.columns, strict=True))
            ]
        )
        chart = svg_chart(sheet, sheet.chart) if sheet.chart is not None and sheet.rows else None
        sheets.append({"sheet": sheet, "rows": rows, "total": total, "chart": chart})
    return _env.get_template("report.html.j2").render(doc=doc, sheets=sheets)
