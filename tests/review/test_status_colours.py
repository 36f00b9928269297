"""One palette and one legend: the console's style sheet, the HTML list and the Excel list mark each
status with the colour of ``storage/status.py``."""

from __future__ import annotations

import io
import re
from pathlib import Path

from openpyxl import load_workbook

from reports.documents import noncompliance_document
from reports.noncompliance import FindingRecord, build_noncompliance
from reports.render import render_html, render_xlsx
from review.console import STATIC_DIR
from storage.status import COLOURS, LABELS, ORDER, State


def _records() -> list[FindingRecord]:
    codes = {"fail": "badge.missing", "unknown": "http.timeout", "warn": "icp.link_outdated"}
    return [
        FindingRecord(
            finding_id=i,
            scan_id=1,
            office_code="130681",
            office_name="涿州市",
            unit_id=i,
            unit_name=f"单位{i}",
            unit_kind="党政机关",
            subject=f"site:{i}",
            check=code.split(".")[0],
            status=status,
            reason=code,
            confirmed=True,
            site_url=f"http://s{i}.example/",
        )
        for i, (status, code) in enumerate(codes.items(), start=1)
    ]


def test_console_css_uses_the_status_palette() -> None:
    css = (Path(STATIC_DIR) / "style.css").read_text(encoding="utf-8")
    for state in ORDER:
        rules = re.findall(rf"\.st-{state.value}\s*\{{([^}}]*)\}}", css)
        assert rules, state
        background, ink = COLOURS[state]
        # The last rule wins in CSS: it must carry the palette's colours.
        assert f"background: #{background}" in rules[-1] and f"color: #{ink}" in rules[-1], state


def test_html_and_xlsx_lists_use_the_same_colours_and_labels() -> None:
    doc = noncompliance_document(build_noncompliance(1, _records()))
    html = render_html(doc)
    ws = load_workbook(io.BytesIO(render_xlsx(doc)))["涿州市"]
    header = next(r for r in range(1, 6) if ws.cell(row=r, column=1).value == "状态")
    seen = {}
    for row in range(header + 1, header + 4):
        cell = ws.cell(row=row, column=1)
        seen[cell.value] = cell.fill.fgColor.rgb[-6:]
    for state in (State.FAIL, State.UNKNOWN, State.WARN):
        assert seen[LABELS[state]] == COLOURS[state][0]
        assert f'style="background:#{COLOURS[state][0]}">{LABELS[state]}</td>' in html
