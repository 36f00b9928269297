"""Reading and writing registry tables: CSV (UTF-8 with or without BOM, GB18030) and XLSX.

A :class:`Table` is a header and data rows with their line numbers in the file (CSV: the physical
line a record starts on; XLSX: the sheet row), so every error can point at the line a person sees.
The header need not be the first row: officials put a title (and a blank row) above it, so the caller
passes a function that picks the header among the first rows; the rows above it are kept as
``skipped`` to be named in the summary.
Writing neutralises spreadsheet formulas (the rule of ``storage/formulas.py``): a formula-like CSV value
is written behind a ``'`` (and read back without it); XLSX cells are always written as text, never as
formulas.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from checks.errors import InputError
from storage.formulas import escape, unescape

OFFICE_SHEET_NAMES = ("编办", "编办表", "offices", "office")
# How many non-empty rows from the top a header finder is shown.
HEADER_CANDIDATES = 10

HeaderFinder = Callable[[Sequence[Sequence[str]]], int]
"""Given the first non-empty rows of a sheet, the index of the header row among them."""


def _first_row(rows: Sequence[Sequence[str]]) -> int:
    return 0


class TableError(InputError, ValueError):
    """A file that cannot be read as a table (says which file and why, in Chinese)."""


@dataclass
class Table:
    """A header row and data rows. ``source`` names the file (and sheet) for messages."""

    source: str
    header: list[str]
    header_line: int
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    # Non-empty rows above the header (titles, notes): line and text.
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _split_header(
    records: list[tuple[int, list[str]]], find_header: HeaderFinder
) -> tuple[list[str], int, list[tuple[int, list[str]]], list[tuple[int, str]]]:
    at = find_header([cells for _, cells in records[:HEADER_CANDIDATES]])
    header_line, header = records[at]
    skipped = [(line, " ".join(c.strip() for c in cells if c.strip())) for line, cells in records[:at]]
    return header, header_line, records[at + 1 :], skipped


def decode_bytes(data: bytes, source: str) -> str:
    """UTF-8 (BOM or not), UTF-16 with BOM, else GB18030; GB2312 and GBK files are GB18030 subsets."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "strict")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise TableError(
            f"{source}：文件编码无法识别（支持 UTF-8 和 GB18030/GBK），第{exc.start}字节附近无法解码"
        ) from exc


def _delimiter(text: str) -> str:
    """Comma, or tab when the first lines hold more tabs than commas (a title line may hold neither)."""
    head = text[:8192].split("\n", HEADER_CANDIDATES)[:HEADER_CANDIDATES]
    tabs = sum(line.count("\t") for line in head)
    commas = sum(line.count(",") for line in head)
    return "\t" if tabs > commas else ","


def read_csv(path: Path, find_header: HeaderFinder = _first_row) -> Table:
    """Read a CSV file (comma or tab separated); the header is the row ``find_header`` picks."""
    source = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TableError(f"{source}：无法读取文件（{exc.strerror}）") from exc
    text = decode_bytes(data, source)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    records: list[tuple[int, list[str]]] = []
    next_line = 1
    try:
        for record in reader:
            line = next_line
            next_line = reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            # Only a record that contains a quote can hold an escaped value (checked in C, not per cell).
            if "'" in "".join(record):
                record = [unescape(c) for c in record]
            records.append((line, record))
    except csv.Error as exc:
        raise TableError(f"{source}：第{reader.line_num}行不是有效的CSV（{exc}）") from exc
    if not records:
        raise TableError(f"{source}：文件为空")
    header, header_line, rows, skipped = _split_header(records, find_header)
    return Table(source, header, header_line, rows, skipped)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        if abs(value) >= 1e15:
            # Beyond 15 significant digits a spreadsheet number has lost digits (an 18-digit code
            # typed into a General cell): show it as Excel does, so the validator names the cause.
            return f"{value:.15G}"
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return unescape(str(value))


def _sheet_table(ws: object, source: str, find_header: HeaderFinder) -> Table:
    records: list[tuple[int, list[str]]] = []
    for index, values in enumerate(ws.iter_rows(values_only=True), start=1):  # type: ignore[attr-defined]
        cells = [_cell_text(v) for v in values]
        if any(c.strip() for c in cells):
            records.append((index, cells))
    if not records:
        raise TableError(f"{source}：工作表为空")
    header, header_line, rows, skipped = _split_header(records, find_header)
    return Table(source, header, header_line, rows, skipped)


def read_xlsx(
    path: Path, find_header: HeaderFinder = _first_row, find_office_header: HeaderFinder = _first_row
) -> tuple[Table, Table | None]:
    """The registry sheet (the first sheet that is not 编办) and the 编办 sheet if there is one."""
    from zipfile import BadZipFile

    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, BadZipFile, KeyError, ValueError) as exc:
        raise TableError(f"{path.name}：不是有效的 XLSX 文件（{exc}）") from exc
    try:
        office_ws = None
        registry_ws = None
        for ws in wb.worksheets:
            if ws.title.strip().lower() in OFFICE_SHEET_NAMES:
                office_ws = office_ws or ws
            elif registry_ws is None:
                registry_ws = ws
        if registry_ws is None:
            raise TableError(f"{path.name}：没有登记表工作表（只有编办工作表）")
        registry = _sheet_table(registry_ws, f"{path.name}【{registry_ws.title}】", find_header)
        offices = None
        if office_ws is not None:
            offices = _sheet_table(office_ws, f"{path.name}【{office_ws.title}】", find_office_header)
        return registry, offices
    finally:
        wb.close()


def read_office_table(path: Path, find_header: HeaderFinder = _first_row) -> Table:
    """An offices file: a CSV, or an XLSX whose 编办 sheet (else first sheet) holds the offices."""
    if not path.exists():
        raise TableError(f"{path}：文件不存在")
    if not is_xlsx(path):
        return read_csv(path, find_header)
    from zipfile import BadZipFile

    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, BadZipFile, KeyError, ValueError) as exc:
        raise TableError(f"{path.name}：不是有效的 XLSX 文件（{exc}）") from exc
    try:
        ws = next(
            (w for w in wb.worksheets if w.title.strip().lower() in OFFICE_SHEET_NAMES), wb.worksheets[0]
        )
        return _sheet_table(ws, f"{path.name}【{ws.title}】", find_header)
    finally:
        wb.close()


def is_xlsx(path: Path) -> bool:
    return path.suffix.lower() in (".xlsx", ".xlsm")


def read_table(
    path: Path, find_header: HeaderFinder = _first_row, find_office_header: HeaderFinder = _first_row
) -> tuple[Table, Table | None]:
    """A registry file: ``.xlsx`` (with its 编办 sheet if any) or CSV (anything else)."""
    if not path.exists():
        raise TableError(f"{path}：文件不存在")
    if is_xlsx(path):
        return read_xlsx(path, find_header, find_office_header)
    return read_csv(path, find_header), None


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """UTF-8 with BOM (so that Excel reads the Chinese), formulas neutralised."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow([escape(v) for v in row])


def display_width(text: str) -> int:
    """Columns a value takes in a spreadsheet: a CJK (wide) character counts two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def column_widths(header: Sequence[str], rows: Sequence[Sequence[str]], *, most: int = 60) -> list[float]:
    """Widths that show each column's longest value (header included) on one line, within ``most``."""
    widths = [display_width(h) for h in header]
    for row in rows:
        for i, value in enumerate(row):
            w = display_width(value) if value else 0
            if i >= len(widths):
                widths.append(w)
            elif w > widths[i]:
                widths[i] = w
    return [float(min(max(w + 2, 6), most)) for w in widths]


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[str]]]]) -> None:
    """One sheet per ``(title, header, rows)``: every cell a text cell in text format (``@``), never a
    formula, so that a code typed into it later stays text (an 18-digit code stored as a number loses
    digits); columns as wide as their values, the header row frozen."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    wb = openpyxl.Workbook(write_only=True)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title)
        body = [list(r) for r in rows]
        for i, width in enumerate(column_widths(header, body), start=1):
            dim = ws.column_dimensions[get_column_letter(i)]
            dim.width = width
            dim.number_format = "@"
        ws.freeze_panes = "A2"

        def text_cell(value: str, ws: object = ws) -> WriteOnlyCell:
            # An empty value stays a blank cell, formatted as text all the same.
            cell = WriteOnlyCell(ws, value=value or None)
            if value:
                # openpyxl would store "=..." as a formula; force a string cell.
                cell.data_type = "s"
            cell.number_format = "@"
            return cell

        ws.append([text_cell(h) for h in header])
        for row in body:
            ws.append([text_cell(v) for v in row])
    wb.save(path)
