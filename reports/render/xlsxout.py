"""XLSX: one sheet per table, frozen header, filters, column widths, native bar charts.

Text cells are always stored as strings (never formulas) and formula-like text also gets Excel's
quote prefix, so editing such a cell does not turn it into a formula either.
"""

from __future__ import annotations

import io
import re
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from reports.tabular import Document, Kind, Sheet, cell_text, display_width, is_formula_like

_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
_FLAG_FILL = PatternFill("solid", fgColor="FFF2CC")
HEADER_ROW = 2  # row 1 holds the sheet title


def sheet_name(raw: str, taken: set[str]) -> str:
    """A valid, unique worksheet name (≤31 characters, none of []:*?/\\)."""
    base = _BAD_SHEET_CHARS.sub("_", raw).strip("'") or "Sheet"
    base = base[:31]
    name, n = base, 2
    while name.lower() in taken:
        suffix = f"({n})"
        name = base[: 31 - len(suffix)] + suffix
        n += 1
    taken.add(name.lower())
    return name


def _put(ws: Worksheet, row: int, col: int, value: Any, kind: Kind) -> None:
    cell = ws.cell(row=row, column=col)
    if value is None:
        cell.value = "—" if kind in (Kind.INT, Kind.PCT) else None
        return
    if kind in (Kind.INT, Kind.PCT) and isinstance(value, int) and not isinstance(value, bool):
        cell.value = value
        if kind is Kind.PCT:
            cell.number_format = '0"%"'
        return
    text = cell_text(value, kind)
    cell.value = text
    cell.data_type = "s"  # openpyxl would otherwise store "=…" as a formula
    if is_formula_like(text):
        cell.quotePrefix = True


def _fill_sheet(ws: Worksheet, sheet: Sheet) -> None:
    ncols = max(len(sheet.columns), 1)
    ws.cell(row=1, column=1, value=sheet.title).font = Font(bold=True, size=13)
    ws.cell(row=1, column=1).data_type = "s"
    widths = [display_width(c.header) for c in sheet.columns]
    for j, col in enumerate(sheet.columns, start=1):
        cell = ws.cell(row=HEADER_ROW, column=j, value=col.header)
        cell.data_type = "s"
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    r = HEADER_ROW
    for i, row in enumerate(sheet.rows):
        r += 1
        for j, (value, col) in enumerate(zip(row, sheet.columns, strict=True), start=1):
            _put(ws, r, j, value, col.kind)
            widths[j - 1] = max(widths[j - 1], display_width(cell_text(value, col.kind)))
            link = sheet.links.get((i, j - 1))
            if link:
                ws.cell(row=r, column=j).hyperlink = link
                ws.cell(row=r, column=j).style = "Hyperlink"
            if i in sheet.highlight:
                ws.cell(row=r, column=j).fill = _FLAG_FILL
    last_data = r
    if sheet.total is not None:
        r += 1
        for j, (value, col) in enumerate(zip(sheet.total, sheet.columns, strict=True), start=1):
            _put(ws, r, j, value, col.kind)
            ws.cell(row=r, column=j).font = Font(bold=True)
    if not sheet.rows and sheet.total is None:
        r += 1
        ws.cell(row=r, column=1, value=sheet.empty_text).data_type = "s"
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=1)
    ws.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(ncols)}{max(last_data, HEADER_ROW + 1)}"
    for j, col in enumerate(sheet.columns, start=1):
        # Headers wrap, so cap them; data decides the rest.
        ws.column_dimensions[get_column_letter(j)].width = col.width or min(max(widths[j - 1], 6) + 2, 60)
    if sheet.notes:
        r += 1
        for note in sheet.notes:
            r += 1
            cell = ws.cell(row=r, column=1, value="注：" + note)
            cell.data_type = "s"
            if is_formula_like(note):
                cell.quotePrefix = True
    if sheet.chart is not None and sheet.rows:
        chart = BarChart()
        chart.type = "bar"
        chart.title = sheet.chart.title
        chart.y_axis.title = sheet.chart.axis_title or sheet.columns[sheet.chart.value_column].header
        chart.legend = None
        data = Reference(ws, min_col=sheet.chart.value_column + 1, min_row=HEADER_ROW, max_row=last_data)
        cats = Reference(ws, min_col=sheet.chart.label_column + 1, min_row=HEADER_ROW + 1, max_row=last_data)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(cats)
        chart.height = max(7.5, 0.55 * len(sheet.rows))
        chart.width = 18
        ws.add_chart(chart, f"A{r + 3}")


def render_xlsx(doc: Document) -> bytes:
    """The document as an XLSX workbook (bytes)."""
    wb = Workbook()
    taken: set[str] = set()
    first = True
    for sheet in doc.sheets or [Sheet(doc.title, [], [])]:
        ws = wb.active if first else wb.create_sheet()
        assert ws is not None
        first = False
        ws.title = sheet_name(sheet.name or sheet.title, taken)
        _fill_sheet(ws, sheet)
    wb.properties.title = doc.title
    wb.properties.creator = "badgewatch 网标巡检"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
