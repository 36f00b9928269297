"""CSV with a UTF-8 BOM, so Excel and WPS open the Chinese text correctly."""

from __future__ import annotations

import csv
import io

from reports.tabular import Document, Kind, cell_text, safe_text


def _cell(value: object, kind: Kind) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and kind is Kind.INT:
        return str(value)  # numbers stay numbers: "-3" in a count column is a number, not a formula
    return safe_text(cell_text(value, kind))


def render_csv(doc: Document) -> bytes:
    """One CSV file: a header row, then every sheet's rows.

    A document with several sheets (a list per office) gets a first column 表 naming the sheet, so
    that the file stays one rectangular table that filters and pivots in Excel. Notes follow after
    an empty line, each in the first column.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    multi = len(doc.sheets) > 1
    if doc.sheets:
        first = doc.sheets[0]
        writer.writerow((["表"] if multi else []) + [safe_text(c.header) for c in first.columns])
    notes: list[str] = []
    for sheet in doc.sheets:
        if [c.header for c in sheet.columns] != [c.header for c in doc.sheets[0].columns]:
            raise ValueError(f"CSV 只能容纳列相同的表：{sheet.title} 与 {doc.sheets[0].title} 的列不同")
        prefix = [safe_text(sheet.name or sheet.title)] if multi else []
        for row in sheet.rows:
            writer.writerow(prefix + [_cell(v, c.kind) for v, c in zip(row, sheet.columns, strict=True)])
        if sheet.total is not None:
            writer.writerow(
                prefix + [_cell(v, c.kind) for v, c in zip(sheet.total, sheet.columns, strict=True)]
            )
        notes.extend(sheet.notes)
    if notes:
        writer.writerow([])
        for note in notes:
            writer.writerow([safe_text("注：" + note)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
