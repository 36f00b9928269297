"""Terminal tables via rich (it measures CJK characters as two columns wide)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from reports.tabular import Column, Document, Kind, Sheet, cell_text, display_width

# rich lays a table out at about 13 ms a row of a list (wrapping every cell); coverage tables (a few
# dozen rows) get its boxed layout, longer sheets the plain aligned layout below, which is linear.
RICH_MAX_ROWS = 60


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(width - display_width(text), 0)
    return gap + text if right else text + gap


def _plain_sheet(sheet: Sheet, cap: int = 48) -> list[str]:
    cols: list[Column] = sheet.columns
    body = [
        [cell_text(v, c.kind).replace("\n", " ") for v, c in zip(row, cols, strict=True)]
        for row in sheet.rows
    ]
    if sheet.total is not None:
        body.append([cell_text(v, c.kind) for v, c in zip(sheet.total, cols, strict=True)])
    widths = [
        min(max([display_width(c.header)] + [display_width(r[j]) for r in body]), cap)
        for j, c in enumerate(cols)
    ]
    right = [c.kind in (Kind.INT, Kind.PCT) for c in cols]
    out = [
        sheet.title,
        *([sheet.subtitle] if sheet.subtitle else []),
        "  ".join(_pad(c.header, w, False) for c, w in zip(cols, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for i, row in enumerate(body):
        if sheet.total is not None and i == len(body) - 1:
            out.append("  ".join("-" * w for w in widths))
        out.append("  ".join(_pad(t, w, r) for t, w, r in zip(row, widths, right, strict=True)).rstrip())
    return out


def render_text(doc: Document, width: int = 160, color: bool = False) -> str:
    """The document as plain (or ANSI-coloured) text tables, one per sheet, notes below each.

    Every string goes in as :class:`rich.text.Text`: unit names and reasons are data, never rich
    markup (a name containing ``[…]`` must print as it is).
    """
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        soft_wrap=False,
        emoji=False,
        markup=False,
    )
    console.print(Text(doc.title, style="bold"))
    if doc.subtitle:
        console.print(Text(doc.subtitle))
    for sheet in doc.sheets:
        console.print()
        if len(sheet.rows) > RICH_MAX_ROWS:
            buf.write("\n".join(_plain_sheet(sheet)) + "\n")
        elif not sheet.rows and sheet.total is None:
            console.print(Text(sheet.title, style="bold"))
            if sheet.subtitle:
                console.print(Text(sheet.subtitle))
            console.print(Text(sheet.empty_text))
        else:
            if sheet.subtitle:
                console.print(Text(sheet.title, style="bold"))
                console.print(Text(sheet.subtitle))
            console.print(_rich_table(sheet, title=not sheet.subtitle))
        for note in sheet.notes:
            console.print(Text(f"注：{note}"))
    if doc.footer:
        console.print()
        console.print(Text(doc.footer))
    return buf.getvalue()


def _rich_table(sheet: Sheet, title: bool = True) -> Table:
    table = Table(title=Text(sheet.title) if title else None, show_lines=False, title_justify="left")
    for col in sheet.columns:
        numeric = col.kind in (Kind.INT, Kind.PCT)
        table.add_column(Text(col.header), justify="right" if numeric else "left", overflow="fold")
    for i, row in enumerate(sheet.rows):
        style = "yellow" if i in sheet.highlight else None
        table.add_row(
            *(Text(cell_text(v, c.kind)) for v, c in zip(row, sheet.columns, strict=True)), style=style
        )
    if sheet.total is not None:
        table.add_section()
        table.add_row(
            *(Text(cell_text(v, c.kind)) for v, c in zip(sheet.total, sheet.columns, strict=True)),
            style="bold",
        )
    return table
