"""The lists inside the console, in a real browser (Debian's chromium, headless), as an office user and as
the domain center's reviewer: every page reads as an official expects (no reason code, subject id,
"UTC" or exception class name anywhere visible), every evidence number opens its evidence, the filters
and the lookup work, and the e-mailed letter keeps each unit's name on one line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reports.letter import ListNotice, office_letter
from reports.source import noncompliance_from_db
from storage.models import Capture, Finding, Unit

from .conftest import Served, browser_login
from .test_status_surfaces import forbidden

pytestmark = pytest.mark.browser


def _login(browser: Any, served: Served, name: str) -> Any:
    return browser_login(browser, served.base, name, width=1366)


def _clean(page: Any) -> str:
    text = str(page.inner_text("body"))
    assert forbidden(text) == [], (page.url, forbidden(text))
    return text


def _evidence_links(page: Any) -> list[str]:
    return sorted(set(page.eval_on_selector_all("a.evidence", "els => els.map(e => e.getAttribute('href'))")))


def test_office_user_walks_the_lists(browser: Any, served: Served, artifacts_dir: Path) -> None:
    w = served.world
    page = _login(browser, served, "zhuozhou")
    _clean(page)
    page.click("#open-lists")
    page.wait_for_load_state()
    assert re.search(r"/scans/\d+/offices/130681$", page.url)
    text = _clean(page)
    assert "涿州市网站标识及域名巡检清单" in text and "北京时间" in text
    page.screenshot(path=str(artifacts_dir / "lists-office-list.png"), full_page=True)
    rows = page.eval_on_selector_all("#list tbody tr", "rs => rs.map(r => r.dataset.state)")
    order = ["fail", "pending", "unknown", "warn", "pass", "none"]
    assert rows and [order.index(s) for s in rows] == sorted(order.index(s) for s in rows)  # problems first
    # The counts at the top are the units per state of the rows.
    shown = {
        li["state"]: li["n"]
        for li in page.eval_on_selector_all(
            "#counts li",
            "ls => ls.map(l => ({state: l.dataset.state, n: +l.querySelector('.n').textContent}))",
        )
    }
    units = page.eval_on_selector_all(
        "#list tbody tr", "rs => rs.map(r => [r.dataset.state, r.querySelector('td:nth-child(2)').innerText])"
    )
    per_unit = {name: state for state, name in units}
    assert {s: n for s, n in shown.items() if n} == {
        s: sum(1 for v in per_unit.values() if v == s) for s in set(per_unit.values())
    }
    # Every evidence number opens that finding's evidence, in the reviewer's scope.
    links = _evidence_links(page)
    assert links
    list_url = page.url
    for href in links:
        resp = page.goto(served.base + href)
        assert resp is not None and resp.status == 200, href
        assert page.inner_text("h1").startswith("证据 F")
        _clean(page)
    # The failing capture of 涿州市教育局 has its screenshot on the evidence page.
    with w.session() as s:
        fid = s.scalar(
            sa.select(Finding.id)
            .join(Capture, Capture.id == Finding.capture_id)
            .where(Finding.website_id == w.ids["site:edu"], Finding.scan_id == w.ids["scan:2"])
            .limit(1)
        )
        other = s.scalar(sa.select(Finding.id).where(Finding.website_id == w.ids["site:finance"]).limit(1))
    page.goto(f"{served.base}/findings/{fid}")
    assert page.locator("#screenshot").evaluate("i => i.naturalWidth") == 80
    page.screenshot(path=str(artifacts_dir / "lists-evidence.png"), full_page=True)
    # Another office's evidence is not shown (as if it did not exist).
    resp = page.goto(f"{served.base}/findings/{other}")
    assert resp is not None and resp.status == 404
    assert "不存在或不在您的管辖范围内" in _clean(page)
    # Filters: only problems, by check.
    page.goto(list_url)
    page.check("#only")
    page.select_option("#check", "badge")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    assert "only=1" in page.url and "check=badge" in page.url
    states = page.eval_on_selector_all("#list tbody tr", "rs => rs.map(r => r.dataset.state)")
    assert states and "pass" not in states and "none" not in states
    assert set(page.eval_on_selector_all("#list tbody td:nth-child(5)", "t => t.map(x => x.innerText)")) == {
        "网站标识"
    }
    _clean(page)
    # Lookup by evidence number, as the list prints it.
    number = page.inner_text("a.evidence >> nth=0")
    page.goto(served.base + "/lookup")
    page.fill("#ref", number)
    page.click("#lookup-submit")
    page.wait_for_load_state()
    assert page.inner_text("h1") == f"证据 {number}"
    page.goto(served.base + "/lookup?ref=F999999")
    assert "没有找到证据编号" in _clean(page)
    # Excel download of the list.
    page.goto(list_url)
    with page.expect_download() as dl:
        page.click("#download-list")
    assert dl.value.suggested_filename.startswith(
        "不合规清单_涿州市_"
    ) and dl.value.suggested_filename.endswith(".xlsx")
    # The office page: problems first, contacts and the latest evidence on each unit's page.
    page.goto(served.base + "/offices/130681")
    _clean(page)
    page.screenshot(path=str(artifacts_dir / "lists-office-page.png"), full_page=True)
    with w.session() as s:
        units = list(s.scalars(sa.select(Unit).where(Unit.office_code == "130681")))
    for unit in units:
        page.goto(f"{served.base}/units/{unit.id}")
        text = _clean(page)
        assert unit.email in text and unit.mobile in text
        for href in _evidence_links(page):
            resp = page.request.get(served.base + href)
            assert resp.status == 200, href
    page.screenshot(path=str(artifacts_dir / "lists-unit-page.png"), full_page=True)
    page.context.close()


def test_center_reviewer_sees_every_office_and_county_figures(
    browser: Any, served: Served, artifacts_dir: Path
) -> None:
    page = _login(browser, served, "center")
    _clean(page)
    page.goto(served.base + "/scans")
    _clean(page)
    page.goto(served.base + "/offices/130600")
    text = _clean(page)
    assert "下级编办" in text
    figures = page.eval_on_selector_all(
        "#children tbody tr", "rs => rs.map(r => [r.dataset.code, r.querySelectorAll('td.num').length])"
    )
    assert sorted(code for code, _ in figures) == ["130606", "130681"] and all(n == 6 for _, n in figures)
    page.click("#open-list")
    page.wait_for_load_state()
    assert re.search(r"/scans/\d+/offices/130600$", page.url)
    page.select_option("#county", "130606")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    offices = set(page.eval_on_selector_all("#list tbody td:nth-child(3)", "t => t.map(x => x.innerText)"))
    assert offices == {"莲池区"}
    for href in _evidence_links(page):
        resp = page.request.get(served.base + href)
        assert resp.status == 200, href
    _clean(page)
    page.screenshot(path=str(artifacts_dir / "lists-center-county.png"), full_page=True)
    page.context.close()


def test_emailed_letter_keeps_unit_names_on_one_line(
    browser: Any, served: Served, artifacts_dir: Path
) -> None:
    w = served.world
    with w.session() as s:
        report = noncompliance_from_db(s, w.ids["scan:2"], "130681")
    [ol] = [o for o in report.offices if o.office_code == "130681"]
    assert ol.failures
    html = office_letter(ol, report, ListNotice(contact="保定市编办 0312-5550123"))
    page = browser.new_context(viewport={"width": 760, "height": 900}).new_page()  # a mail client's width
    page.set_content(html)
    lines = page.evaluate(
        """names => names.map(n => {
            const td = [...document.querySelectorAll('td')].find(t => t.textContent === n);
            const r = document.createRange(); r.selectNodeContents(td);
            return r.getClientRects().length;
        })""",
        sorted({p.record.unit_name for p in ol.failures}),
    )
    assert lines and all(n == 1 for n in lines), lines
    _clean(page)
    page.screenshot(path=str(artifacts_dir / "lists-email-letter.png"), full_page=True)
    page.context.close()
