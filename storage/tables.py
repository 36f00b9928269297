"""Reading and writing registry tables: CSV (UTF-8 with or without BOM, GB18030) and XLSX.

A :class:`Table` is a header and data rows with their line numbers in the file (CSV: the physical
line a record starts on; XLSX: the sheet row), so every error can point at the line a person sees.
Writing neutralises spreadsheet formulas (the rule of ``storage/formulas.py``): a formula-like CSV value
is written behind a ``'`` (and read back without it); XLSX cells are always written as text, never as
formulas.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from checks.errors import InputError
from storage.formulas import escape, unescape

OFFICE_SHEET_NAMES = ("编办", "编办表", "offices", "office")


class TableError(InputError, ValueError):
    """A file that cannot be read as a table (says which file and why, in Chinese)."""


@dataclass
class Table:
    """A header row and data rows. ``source`` names the file (and sheet) for messages."""

    source: str
    header: list[str]
    header_line: int
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


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


def read_csv(path: Path) -> Table:
    """Read a CSV file (comma, or tab when the header has tabs and no commas)."""
    source = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TableError(f"{source}：无法读取文件（{exc.strerror}）") from exc
    text = decode_bytes(data, source)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    next_line = 1
    try:
        for record in reader:
            line = next_line
            next_line = reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header, header_line = record, line
                continue
            # Only a record that contains a quote can hold an escaped value (checked in C, not per cell).
            if "'" in "".join(record):
                record = [unescape(c) for c in record]
            rows.append((line, record))
    except csv.Error as exc:
        raise TableError(f"{source}：第{reader.line_num}行不是有效的CSV（{exc}）") from exc
    if header is None:
        raise TableError(f"{source}：文件为空")
    return Table(source, header, header_line, rows)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return unescape(str(value))


def _sheet_table(ws: object, source: str) -> Table:
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    for index, values in enumerate(ws.iter_rows(values_only=True), start=1):  # type: ignore[attr-defined]
        cells = [_cell_text(v) for v in values]
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header, header_line = cells, index
            continue
        rows.append((index, cells))
    if header is None:
        raise TableError(f"{source}：工作表为空")
    return Table(source, header, header_line, rows)


def read_xlsx(path: Path) -> tuple[Table, Table | None]:
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
        registry = _sheet_table(registry_ws, f"{path.name}【{registry_ws.title}】")
        offices = None
        if office_ws is not None:
            offices = _sheet_table(office_ws, f"{path.name}【{office_ws.title}】")
        return registry, offices
    finally:
        wb.close()


def read_office_table(path: Path) -> Table:
    """An offices file: a CSV, or an XLSX whose 编办 sheet (else first sheet) holds the offices."""
    if not path.exists():
        raise TableError(f"{path}：文件不存在")
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return read_csv(path)
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
        return _sheet_table(ws, f"{path.name}【{ws.title}】")
    finally:
        wb.close()


def read_table(path: Path) -> tuple[Table, Table | None]:
    """A registry file: ``.xlsx`` (with its 编办 sheet if any) or CSV (anything else)."""
    if not path.exists():
        raise TableError(f"{path}：文件不存在")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    return read_csv(path), None


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """UTF-8 with BOM (so that Excel reads the Chinese), formulas neutralised."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow([escape(v) for v in row])


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[str]]]]) -> None:
    """One sheet per ``(title, header, rows)``; every cell is a text cell (never a formula)."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    wb = openpyxl.Workbook(write_only=True)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title)
        ws.append(list(header))
        for row in rows:
            cells = []
            for value in row:
                cell = WriteOnlyCell(ws, value=value)
                # openpyxl would store "=..." as a formula; force a string cell.
                cell.data_type = "s"
                cells.append(cell)
            ws.append(cells)
    wb.save(path)
