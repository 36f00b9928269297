"""One truth, everywhere: every reason code of ``checks/reasons.py`` walked through every surface.

A registry with one unit per (reason code, confirmed) — a confirmed and an unconfirmed failure for every
failing code — and one finding each, scanned by a scan of one county (涿州市) only; the other county
(莲池区) is outside the scan. The ground truth is the catalogue (the code's status) and the test's own
``confirmed`` flag. Then every surface is read back as an official sees it — the console's office,
list, unit and evidence pages over real HTTP; the office list as text, HTML and XLSX; the e-mail as an
SMTP server (aiosmtpd) receives it — and each must show the same status and the same Chinese text, and
never the code, a subject id or "UTC".
"""

from __future__ import annotations

import datetime as dt
import io
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from openpyxl import load_workbook
from parsel import Selector

from checks.dns import DnsResult, UsageObservation, classify_usage
from checks.expected import Expected, UnitKind
from checks.reasons import REASONS, describe
from checks.rules import Rules
from reports.documents import noncompliance_document
from reports.letter import ListNotice
from reports.notify import run
from reports.render import render_html, render_text, render_xlsx
from reports.source import noncompliance_from_db
from review.accounts import create_user
from storage.config import Config
from storage.db import make_engine, upgrade
from storage.evidence import EvidenceStore
from storage.models import Capture, Domain, Finding, Office, Scan, Unit, User, Website, subject_of

from .conftest import Served
from .world import PASSWORD, SECRET, World, uscc

STARTED = dt.datetime(2026, 11, 30, 17, 30, tzinfo=dt.UTC)  # 2026-12-01 01:30 in Beijing
BEIJING_DAY = "2026年12月1日"
CONTACT = "保定市编办网络科 张工 0312-5550123"
LABEL = {
    "fail": "不合规",
    "pending": "待确认",
    "unknown": "无法判定",
    "warn": "提示",
    "pass": "合规",
    "none": "未巡检",
}
CODE_RE = re.compile(
    "|".join(rf"(?<![\w.]){re.escape(c)}(?![\w])" for c in sorted(REASONS, key=len, reverse=True))
)
SUBJECT_RE = re.compile(r"\b(?:site|domain|unit):\d+")
EXCEPTION_RE = re.compile(r"\b[A-Z][A-Za-z]+(?:Error|Exception|NeverReceived|Failure)\b")


def forbidden(text: str) -> list[str]:
    """What an official must never read: reason codes, subject ids, UTC, exception class names."""
    found = CODE_RE.findall(text) + SUBJECT_RE.findall(text) + EXCEPTION_RE.findall(text)
    return found + (["UTC"] if "UTC" in text else [])


@dataclass(frozen=True)
class Case:
    code: str
    confirmed: bool
    unit_id: int
    unit_name: str
    finding_id: int

    @property
    def status(self) -> str:
        return str(REASONS[self.code].status)

    @property
    def state(self) -> str:
        if self.status == "fail":
            return "fail" if self.confirmed else "pending"
        return self.status

    @property
    def label(self) -> str:
        return LABEL[self.state]

    @property
    def message(self) -> str:
        return describe(self.code).message


def _subject(code: str, n: int) -> str:
    prefix = code.split(".")[0]
    if code == "domain.no_chinese":
        return "unit"
    if code == "domain.gov_cn_institution":
        return "english"
    if prefix in ("dns", "usage", "domain"):
        return "english" if n % 2 else "chinese"  # English and Chinese domains alike
    return "site"


def build(tmp: Path) -> tuple[World, list[Case], int]:
    url = f"sqlite:///{tmp / 'surfaces.db'}"
    engine = make_engine(url)
    upgrade(engine)
    cfg = Config(
        database_url=url,
        evidence_dir=str(tmp / "evidence"),
        secret_key=SECRET,
        contact_text=CONTACT,
        organisation="河北省机构编制网络管理中心",
        rectify_days=10,
        center_email="center@center.example",
        smtp_from="bw@center.example",
    )
    w = World(engine, cfg, EvidenceStore(cfg.evidence_dir))
    cases: list[Case] = []
    with w.session() as s:
        s.add(Office(code="130600", name="保定市", level="city", roster_count=300, email="bd@office.example"))
        s.flush()
        s.add_all(
            [
                Office(code="130681", name="涿州市", parent_code="130600", level="county", roster_count=200,
                       email="zz@office.example"),
                Office(code="130606", name="莲池区", parent_code="130600", level="county", roster_count=5,
                       email="lc@office.example"),
            ]
        )  # fmt: skip
        s.flush()
        scan = Scan(status="finished", started_at=STARTED, finished_at=STARTED + dt.timedelta(hours=1),
                    scope={"office_codes": ["130681"], "limit": None})  # fmt: skip
        s.add(scan)
        s.flush()
        wanted = [(c, True) for c in REASONS] + [(c, False) for c, r in REASONS.items() if r.status == "fail"]
        for n, (code, confirmed) in enumerate(wanted, start=1):
            unit = Unit(name=f"涿州市第{n:03d}号单位", uscc=uscc("1", "130681", n), kind="党政机关",
                        office_code="130681", email=f"u{n}@unit.example", mobile="13800000000")  # fmt: skip
            s.add(unit)
            s.flush()
            site = Website(unit_id=unit.id, name=f"第{n:03d}号网站", url=f"http://u{n}.example.gov.cn/")
            s.add(site)
            s.flush()
            cn = Domain(
                name=f"第{n:03d}号单位.政务", ascii=f"xn--u{n}.xn--zfr164b", kind=".政务", unit_id=unit.id
            )
            en = Domain(name=f"u{n}.gov.cn", ascii=f"u{n}.gov.cn", kind="英文", unit_id=unit.id)
            s.add_all([cn, en])
            s.flush()
            where = _subject(code, n)
            site_id = site.id if where == "site" else None
            dom_id = cn.id if where == "chinese" else en.id if where == "english" else None
            cap = None
            if where != "unit":
                cap = Capture(scan_id=scan.id, website_id=site_id, domain_id=dom_id,
                              subject=subject_of(site_id, dom_id), url=site.url if site_id else f"http://{en.ascii}/",
                              status=200, started=STARTED)  # fmt: skip
                s.add(cap)
                s.flush()
            f = Finding(
                scan_id=scan.id,
                website_id=site_id,
                domain_id=dom_id,
                unit_id=unit.id if where == "unit" else None,
                subject=subject_of(site_id, dom_id) if where != "unit" else f"unit:{unit.id}",
                check=code.split(".")[0],
                status=str(REASONS[code].status),
                reason=code,
                detail="",
                confirmed=confirmed,
                first_seen_at=STARTED - dt.timedelta(days=1),
                visits=2 if confirmed else 1,
                capture_id=cap.id if cap else None,
            )
            s.add(f)
            s.flush()
            cases.append(Case(code, confirmed, unit.id, unit.name, f.id))
        # 莲池区 is registered but outside the scan: its units must read 未巡检, never "no problems".
        for n in range(2):
            s.add(Unit(name=f"莲池区第{n}号单位", uscc=uscc("1", "130606", 900 + n), kind="党政机关",
                       office_code="130606"))  # fmt: skip
        first = create_user(s, "baoding", "office", PASSWORD, "130600")
        s.add(User(name="center", role="center", password_hash=first.password_hash))
        s.commit()
        w.ids["scan"] = scan.id
    return w, cases, scan.id


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, list[Case], int]:
    return build(tmp_path_factory.mktemp("surfaces"))


@pytest.fixture(scope="module")
def world(built: tuple[World, list[Case], int]) -> World:
    return built[0]  # the console under test (conftest's ``served``) serves this world


@pytest.fixture(scope="module")
def cases(built: tuple[World, list[Case], int]) -> list[Case]:
    return built[1]


def visible(html: str) -> str:
    sel = Selector(text=html)
    return " ".join(
        t.strip()
        for t in sel.xpath("//body//text()[not(ancestor::script) and not(ancestor::style)]").getall()
    )


def test_console_pages_agree_with_the_catalogue(served: Served, cases: list[Case]) -> None:
    c = served.login("baoding")
    sid = served.world.ids["scan"]
    office = Selector(text=c.get("/offices/130681").text)
    office_state = {
        r.css("td a::text").get(): (r.attrib["data-state"], r.css("td span.st::text").get())
        for r in office.css("#units tbody tr")
    }
    listing = Selector(text=c.get(f"/scans/{sid}/offices/130600").text)
    list_rows: dict[str, list[tuple[str, str]]] = {}
    for r in listing.css("#list tbody tr"):
        name = r.css("td:nth-child(2) a::text").get()
        list_rows.setdefault(name, []).append(
            (r.attrib["data-state"], " ".join(r.css("td:nth-child(6) ::text").getall()))
        )
    for case in cases:
        state, text = office_state[case.unit_name]
        assert state == case.state and text.startswith(case.label), (case, state, text)
        [(row_state, row_text)] = list_rows[case.unit_name]
        assert row_state == case.state, (case, row_state)
        assert (case.message if case.state != "pass" else "各项检查均通过") in row_text, (case, row_text)
        unit_html = c.get(f"/units/{case.unit_id}").text
        page = Selector(text=unit_html)
        assert page.css("#unit-status span.st").attrib["data-state"] == case.state, case
        latest = page.css("#latest tbody tr")
        assert [r.attrib["data-state"] for r in latest] == [case.state]
        assert case.message in " ".join(latest.css("::text").getall())
        finding_html = c.get(f"/findings/{case.finding_id}").text
        fp = Selector(text=finding_html)
        assert fp.css("#finding-state").attrib["data-state"] == case.state
        assert fp.css("#finding-state::text").get() == case.label
        assert fp.css("#finding-message::text").get() == case.message
        for html in (unit_html, finding_html):
            assert forbidden(visible(html)) == [], (case, forbidden(visible(html)))
    for html in (office.get(), listing.get()):
        assert forbidden(visible(html)) == []
    # The list's counts at the top are the units per state, as the rows say.
    counts = {li.attrib["data-state"]: int(li.css(".n::text").get()) for li in listing.css("#counts li")}
    want: dict[str, int] = {}
    for case in cases:
        want[case.state] = want.get(case.state, 0) + 1
    want["none"] = 2  # 莲池区's units
    assert {k: v for k, v in counts.items() if v} == want
    # Problems first: no row of a better state above a worse one.
    order = ["fail", "pending", "unknown", "warn", "pass", "none"]
    states = [order.index(r.attrib["data-state"]) for r in listing.css("#list tbody tr")]
    assert states == sorted(states)


def test_outside_the_scan_is_not_scanned_never_clean(served: Served, cases: list[Case]) -> None:
    c = served.login("baoding")
    sid = served.world.ids["scan"]
    page = Selector(text=c.get("/offices/130606").text)
    assert {r.attrib["data-state"] for r in page.css("#units tbody tr")} == {"none"}
    listing = c.get(f"/scans/{sid}/offices/130606").text
    assert "本次巡检未发现问题" not in listing and 'id="not-covered"' in listing
    assert {r.attrib["data-state"] for r in Selector(text=listing).css("#list tbody tr")} == {"none"}
    dash = Selector(text=c.get("/").text)
    rows = {
        r.css("td a::text").get(): [t.strip() for t in r.css("td ::text").getall()]
        for r in dash.css("table.coverage tbody tr")
    }
    assert "未巡检" in rows["莲池区"] and "未巡检" not in rows["涿州市"]
    city = Selector(text=c.get("/offices/130600").text)
    kids = {r.attrib["data-code"]: r for r in city.css("#children tbody tr")}
    assert "未巡检" in kids["130606"].css("td ::text").getall()
    # 涿州市's figures per state over its area, as the cases hold them.
    head = [h.attrib.get("class", "") for h in city.css("#children thead th span")]
    cells = kids["130681"].css("td.num::text").getall()
    by_state = dict(zip([h.split("st-")[-1] for h in head], [int(x) for x in cells], strict=True))
    for state in ("fail", "pending", "unknown", "warn", "pass"):
        assert by_state[state] == sum(1 for k in cases if k.state == state)


def _sheet_rows(ws: Any) -> list[dict[str, Any]]:
    header_row = next(r for r in range(1, 6) if ws.cell(row=r, column=1).value == "状态")
    header = [c.value for c in ws[header_row]]
    out = []
    for row in ws.iter_rows(min_row=header_row + 1, values_only=True):
        if not row[0] or row[2] is None:
            break
        out.append(dict(zip(header, row, strict=False)))
    return out


def test_lists_in_text_html_and_xlsx_agree(built: tuple[World, list[Case], int]) -> None:
    w, cases, sid = built
    with w.session() as s:
        report = noncompliance_from_db(s, sid, "130600", base_url="https://console.example")
    doc = noncompliance_document(report, ListNotice.from_config(w.cfg).footer(report))
    text, html, xlsx = render_text(doc), render_html(doc), render_xlsx(doc)
    wb = load_workbook(io.BytesIO(xlsx))
    rows = {r["单位名称"]: r for r in _sheet_rows(wb["涿州市"])}
    listed = {"fail": "不合规", "unknown": "无法判定", "warn": "提示"}
    for case in cases:
        if case.state in listed:
            row = rows[case.unit_name]
            assert row["状态"] == listed[case.state] == case.label and row["问题"] == case.message, case
            assert case.message in text and case.unit_name in text and case.message in html
        else:
            # Pending failures and passes are not on an office's list (pending ones are counted).
            assert case.unit_name not in rows and case.unit_name not in text and case.unit_name not in html
    pending = sum(1 for k in cases if k.state == "pending")
    notes = " ".join(str(c.value) for row in wb["涿州市"].iter_rows() for c in row if c.value)
    assert f"另有{pending}项问题待确认" in notes and CONTACT in text and CONTACT in notes
    assert "请于2026年12月11日前督促" in notes and "请于2026年12月11日前督促" in html
    # The office outside the scan: 未巡检, not a clean list.
    lianchi = wb["莲池区"]
    assert "未巡检" in str(lianchi["A4"].value) and "本次巡检未发现问题" not in text
    assert wb["涿州市"]["A1"].value == f"涿州市网站标识及域名不合规清单（{BEIJING_DAY}巡检）"
    for out in (text, html, notes):
        assert forbidden(out) == [], forbidden(out)
    # Print setup an office can use: landscape, all columns on the width, header rows on every page.
    ws = wb["涿州市"]
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1
    assert ws.page_setup.fitToHeight == 0 and ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows == "$1:$3"  # the title, the date and scope, the header
    link = ws.cell(row=4, column=12)
    assert link.hyperlink is not None and link.hyperlink.target.startswith(
        "https://console.example/findings/"
    )


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        msg = message_from_bytes(bytes(envelope.content), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[_Inbox, int]]:
    box = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def test_email_agrees_and_is_a_letter(
    built: tuple[World, list[Case], int], inbox: tuple[_Inbox, int]
) -> None:
    w, cases, sid = built
    box, port = inbox
    cfg = Config(**{**w.cfg.__dict__, "smtp_host": "127.0.0.1", "smtp_port": port})
    with w.session() as s:
        result = run(s, cfg, scan_id=sid)
    assert result.dispatch.ok
    by_rcpt = {m["To"]: m for m in box.messages}
    # Only the county the scan visited, and the center: not 莲池区 (outside), not the city (not visited).
    assert set(by_rcpt) == {"zz@office.example", "center@center.example"}
    mail = by_rcpt["zz@office.example"]
    fails, unknown = sum(k.state == "fail" for k in cases), sum(k.state == "unknown" for k in cases)
    assert mail["Subject"] == (
        f"【网标巡检】涿州市网站标识及域名不合规清单（{BEIJING_DAY}，巡检{sid}）：不合规{fails}项，无法判定{unknown}项"
    )
    html = mail.get_body(("html",)).get_content()
    plain = mail.get_body(("plain",)).get_content()
    assert plain.startswith("涿州市编办：") and "{" not in plain and "font-family" not in plain
    for body in (html, plain):
        assert "请于 2026年12月11日 前" in re.sub(r"<[^>]+>", "", body)
        assert CONTACT in body and "河北省机构编制网络管理中心" in body
        assert forbidden(re.sub(r"<[^>]+>", " ", body)) == []
    for case in cases:
        if case.state in ("fail", "unknown"):
            assert case.message in html and case.unit_name in html
            # A unit's name and its problem on one line of the text part.
            assert any(case.unit_name in line and case.message in line for line in plain.splitlines()), case
        elif case.state in ("pending", "pass", "warn"):
            assert case.unit_name not in html  # warn lines are in the attachment only
    pending = sum(k.state == "pending" for k in cases)
    assert f"另有 {pending} 项问题待确认" in plain
    # Balanced columns: the unit's name never wraps.
    first_fail = next(k for k in cases if k.state == "fail")
    cell = Selector(text=html).xpath(f"//td[text()='{first_fail.unit_name}']")
    assert "white-space:nowrap" in cell.attrib["style"]
    [att] = list(mail.iter_attachments())
    assert att.get_filename() == f"不合规清单_涿州市_{BEIJING_DAY}.xlsx"
    # The center's summary: the visited county with its figures, nothing else, in words only.
    center = by_rcpt["center@center.example"]
    summary = Selector(text=center.get_body(("html",)).get_content())
    [row] = [r for r in summary.css("tr") if r.css("td::text").get() == "涿州市"]
    assert row.css("td::text").getall()[1:4] == ["不合规", str(fails), str(fails)]
    assert forbidden(center.get_body(("plain",)).get_content()) == []
    rows = {r["单位名称"]: r for r in _sheet_rows(load_workbook(io.BytesIO(att.get_content()))["涿州市"])}
    assert {n for n, r in rows.items() if r["状态"] == "不合规"} == {
        k.unit_name for k in cases if k.state == "fail"
    }


def test_reason_texts_say_what_their_details_say() -> None:
    """No "解析正常" beside a domain that does not resolve; no "中文域名" on what may be an English
    domain (the list line says which kind it is)."""
    expected = Expected(UnitKind.PARTY_GOV, unit_name="涿州市教育局", site_url="http://www.zz.gov.cn/")
    nx = UsageObservation("zz.gov.cn", dns=DnsResult("zz.gov.cn", "NXDOMAIN", nameserver="127.0.0.53"))
    verdict = classify_usage(nx, expected, Rules())
    assert "不能解析" in verdict.detail and "解析正常" not in describe(verdict.reason).message
    for code in REASONS:
        if code.startswith(("usage.", "dns.")):
            assert "中文域名" not in describe(code).message, code
