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
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.worksheet import Worksheet

from reports.tabular import Document, Kind, Sheet, cell_text, display_width, is_formula_like

_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
_FLAG_FILL = PatternFill("solid", fgColor="FFF2CC")
HEADER_ROW = 2  # row 1 holds the sheet title (row 2 its subtitle, when it has one: the header moves to 3)


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


def _print_setup(ws: Worksheet, header_row: int) -> None:
    """A4 landscape, every column on the page width, the title and header rows on every page."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as needed
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"1:{header_row}"
    ws.print_options.horizontalCentered = True
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"


def _fill_sheet(ws: Worksheet, sheet: Sheet, footer: str = "") -> None:
    ncols = max(len(sheet.columns), 1)
    ws.cell(row=1, column=1, value=sheet.title).font = Font(bold=True, size=13)
    ws.cell(row=1, column=1).data_type = "s"
    header_row = HEADER_ROW
    if sheet.subtitle:
        ws.cell(row=2, column=1, value=sheet.subtitle).data_type = "s"
        header_row += 1
    widths = [display_width(c.header) for c in sheet.columns]
    for j, col in enumerate(sheet.columns, start=1):
        cell = ws.cell(row=header_row, column=j, value=col.header)
        cell.data_type = "s"
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    r = header_row
    wrap = Alignment(wrap_text=True, vertical="top")
    for i, row in enumerate(sheet.rows):
        r += 1
        fill = PatternFill("solid", fgColor=sheet.fills[i]) if i in sheet.fills else None
        for j, (value, col) in enumerate(zip(row, sheet.columns, strict=True), start=1):
            _put(ws, r, j, value, col.kind)
            cell = ws.cell(row=r, column=j)
            widths[j - 1] = max(widths[j - 1], display_width(cell_text(value, col.kind)))
            link = sheet.links.get((i, j - 1))
            if link:
                cell.hyperlink = link
                cell.style = "Hyperlink"
            if col.width and not col.nowrap:
                cell.alignment = wrap
            if i in sheet.highlight:
                cell.fill = _FLAG_FILL
            elif fill is not None and j == 1:
                cell.fill = fill  # the status cell carries the status colour (as in the console)
    last_data = r
    if sheet.total is not None:
        r += 1
        for j, (value, col) in enumerate(zip(sheet.total, sheet.columns, strict=True), start=1):
            _put(ws, r, j, value, col.kind)
            ws.cell(row=r, column=j).font = Font(bold=True)
    if not sheet.rows and sheet.total is None:
        r += 1
        ws.cell(row=r, column=1, value=sheet.empty_text).data_type = "s"
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    ws.auto_filter.ref = f"A{header_row}:{get_column_letter(ncols)}{max(last_data, header_row + 1)}"
    for j, col in enumerate(sheet.columns, start=1):
        # Headers wrap, so cap them; data decides the rest. A one-line column is as wide as its text.
        fit = min(max(widths[j - 1], 6) + 2, 60)
        ws.column_dimensions[get_column_letter(j)].width = (
            max(col.width, fit) if col.nowrap else col.width or fit
        )
    _print_setup(ws, header_row)
    if sheet.legend:
        r += 2
        ws.cell(row=r, column=1, value="图例").font = Font(bold=True)
        for k, (text, colour) in enumerate(sheet.legend, start=2):
            cell = ws.cell(row=r, column=k, value=text)
            cell.data_type = "s"
            cell.fill = PatternFill("solid", fgColor=colour)
    if sheet.notes:
        r += 1
        for note in sheet.notes:
            r += 1
            cell = ws.cell(row=r, column=1, value="注：" + note)
            cell.data_type = "s"
            if is_formula_like(note):
                cell.quotePrefix = True
    if footer:
        # Printed with every sheet: a sheet is what an office prints and files.
        r += 2
        cell = ws.cell(row=r, column=1, value=footer)
        cell.data_type = "s"
        if is_formula_like(footer):
            cell.quotePrefix = True
    if sheet.chart is not None and sheet.rows:
        chart = BarChart()
        chart.type = "bar"
        chart.title = sheet.chart.title
        chart.y_axis.title = sheet.chart.axis_title or sheet.columns[sheet.chart.value_column].header
        chart.legend = None
        data = Reference(ws, min_col=sheet.chart.value_column + 1, min_row=header_row, max_row=last_data)
        cats = Reference(ws, min_col=sheet.chart.label_column + 1, min_row=header_row + 1, max_row=last_data)
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
        _fill_sheet(ws, sheet, doc.footer)
    wb.properties.title = doc.title
    wb.properties.creator = "badgewatch 网标巡检"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
