"""Renderers: text, CSV (BOM), XLSX (openpyxl reads it back), HTML (headless Chromium screenshot)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from reports.coverage import CoverageTable, build_coverage
from reports.documents import coverage_document
from reports.render import render_csv, render_html, render_text, render_xlsx
from reports.tabular import Column, Document, Kind, Sheet, safe_text

from .seed import seed_counts, seed_table

AS_OF = dt.date(2015, 3, 31)
EVIL = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "  =1+1", "\t=1", "＝1+1"]


def _table() -> CoverageTable:
    return build_coverage("130600", "保定市", AS_OF, seed_counts(), published=seed_table())


def test_text_table_has_every_row_and_total() -> None:
    table = _table()
    out = render_text(coverage_document(table))
    assert "保定市域名注册及网站标识申请情况" in out
    for row in table.rows:
        assert row.name in out
    assert "合计" in out and "8730" in out and "62%" in out
    assert "注：" in out and "63%" in out


def test_csv_has_bom_and_matches_the_table() -> None:
    table = _table()
    data = render_csv(coverage_document(table))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:7] == [
        "地区",
        "行政事业单位机构数",
        "已注册",
        "注册单位覆盖率",
        "已注册域名数",
        "党政机关网站标识申请通过数量",
        "事业单位网站标识申请通过数量",
    ]
    body = {r[0]: r for r in rows[1:] if r and not r[0].startswith("注")}
    for row in table.rows:
        assert body[row.name][1:7] == [
            str(row.counts.institutions),
            str(row.counts.registered_units),
            f"{row.coverage_pct}%",
            str(row.counts.domains),
            str(row.counts.party_badges),
            str(row.counts.institution_badges),
        ]
    assert body["合计"][3] == "62%"


def test_formula_like_text_is_neutralised_everywhere(tmp_path: Path) -> None:
    sheet = Sheet("注入", [Column("名称"), Column("数", Kind.INT)], [[e, -3] for e in EVIL])
    doc = Document("注入测试", sheets=[sheet])
    rows = list(csv.reader(io.StringIO(render_csv(doc).decode("utf-8-sig"))))
    for e, r in zip(EVIL, rows[1:], strict=True):
        assert r[0] == "'" + e
        assert r[1] == "-3"  # a number stays a number
    wb = load_workbook(io.BytesIO(render_xlsx(doc)))
    ws = wb.active
    assert ws is not None
    for i, e in enumerate(EVIL, start=3):
        cell = ws.cell(row=i, column=1)
        assert cell.value == e and cell.data_type == "s", e
        assert cell.quotePrefix
        assert ws.cell(row=i, column=2).value == -3
    assert safe_text("正常文字") == "正常文字"
    html = render_html(Document("x", sheets=[Sheet("s", [Column("a")], [["<script>alert(1)</script>"]])]))
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_xlsx_cells_header_filter_widths_and_chart() -> None:
    table = _table()
    wb = load_workbook(io.BytesIO(render_xlsx(coverage_document(table))))
    ws = wb["覆盖率"]
    assert ws["A1"].value == "保定市域名注册及网站标识申请情况"
    assert ws["A2"].value == "地区" and ws["D2"].value == "注册单位覆盖率"
    assert ws.freeze_panes == "A3"
    assert ws.auto_filter.ref == f"A2:H{2 + len(table.rows)}"
    by_name = {ws.cell(row=r, column=1).value: r for r in range(3, 3 + len(table.rows) + 1)}
    for row in table.rows:
        r = by_name[row.name]
        assert [ws.cell(row=r, column=c).value for c in range(2, 8)] == [
            row.counts.institutions,
            row.counts.registered_units,
            row.coverage_pct,
            row.counts.domains,
            row.counts.party_badges,
            row.counts.institution_badges,
        ]
    total_row = 3 + len(table.rows)
    assert ws.cell(row=total_row, column=1).value == "合计"
    assert ws.cell(row=total_row, column=4).value == 62
    assert ws.cell(row=total_row, column=4).number_format == '0"%"'
    assert ws.column_dimensions["A"].width >= 10
    assert ws.cell(row=by_name["易县"], column=8).value == "覆盖率超100%"
    charts = ws._charts
    assert len(charts) == 1 and charts[0].tagname == "barChart"
    notes = [ws.cell(row=r, column=1).value for r in range(total_row + 1, ws.max_row + 1)]
    assert any(isinstance(n, str) and "63%" in n for n in notes)


def test_coverage_json_shape() -> None:
    table = _table()
    data = json.loads(json.dumps(table.to_dict(), ensure_ascii=False))
    assert data["as_of"] == "2015-03-31"
    row = data["rows"][0]
    for key in (
        "code",
        "name",
        "institutions",
        "registered_units",
        "coverage_pct",
        "domains",
        "party_badges",
        "institution_badges",
    ):
        assert key in row
    assert data["total"]["coverage_pct"] == 62


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def screenshot(html_path: Path, png: Path, size: str = "1200,1400") -> None:
    """Render ``html_path`` in headless Chromium to ``png`` (file:// only: nothing leaves the machine)."""
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--window-size={size}",
            f"--screenshot={png}",
            html_path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )


@pytest.mark.browser
def test_html_renders_in_chromium_with_chinese_text(artifacts_dir: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/system-deps.sh installs it)")
    table = _table()
    html = render_html(coverage_document(table))
    assert "<svg" in html and "满城县" in html
    assert html.count("<rect") == len(table.rows)
    src = tmp_path / "coverage.html"
    src.write_text(html, encoding="utf-8")
    png = artifacts_dir / "reports-coverage.png"
    png.unlink(missing_ok=True)
    screenshot(src, png)
    assert png.stat().st_size > 10_000
    assert _cjk_glyphs_render(tmp_path)


def _cjk_glyphs_render(tmp_path: Path) -> bool:
    """Whether Chinese text renders as distinct glyphs, not as identical boxes (missing font).

    Renders two different characters in the report's font stack; a missing CJK font draws both as
    the same .notdef box, so the screenshots come out identical.
    """
    from hashlib import sha256

    shots = []
    for ch in ("保", "覆"):
        page = tmp_path / f"glyph-{ord(ch)}.html"
        page.write_text(
            '<html><body style=\'margin:0;font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif\'>'
            f"<div style='font-size:120px;line-height:1'>{ch}</div></body></html>",
            encoding="utf-8",
        )
        out = tmp_path / f"glyph-{ord(ch)}.png"
        screenshot(page, out, "200,200")
        shots.append(sha256(out.read_bytes()).hexdigest())
    return shots[0] != shots[1]


def test_large_sheets_use_the_linear_text_layout() -> None:
    rows = [[f"单位{i}", i, i % 120] for i in range(2000)]
    sheet = Sheet(
        "大表",
        [Column("名称"), Column("数", Kind.INT), Column("率", Kind.PCT)],
        rows,
        total=["合计", sum(r[1] for r in rows), None],
        notes=["说明"],
    )
    out = render_text(Document("标题", sheets=[sheet]))
    lines = out.splitlines()
    assert sum(1 for ln in lines if ln.startswith("单位")) == 2000
    assert ["单位1999", "1999", "79%"] in [ln.split() for ln in lines]
    assert lines[-2].startswith("合计") and lines[-1] == "注：说明"


def test_text_prints_markup_like_names_verbatim() -> None:
    names = ["[bold]某局[/bold]", "[/]", "单位:smile:", "[link=http://x]点我[/link]"]
    sheet = Sheet("表", [Column("名称")], [[n] for n in names], notes=["[red]注意[/red]"])
    out = render_text(Document("[标题]", sheets=[sheet]))
    for n in [*names, "[red]注意[/red]", "[标题]"]:
        assert n in out
