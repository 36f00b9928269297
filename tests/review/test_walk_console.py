"""The console walked in Chromium as an office user and as the domain center's reviewer, on demo-like
data: the scenario catalogue (every shape of failure, unreachable and hostile sites included) scanned
over simnet by the real ``badgewatch scan``, its failures confirmed, the marked screenshots taken
(``crawler/screenshots.py``, as the nightly chain does), and annual reports submitted by every unit with
a confirmed problem.

Every console page reachable by links is opened as each user; on each, the text a person sees must hold
no reason code (``checks/reasons.py``), no subject id (``site:12``), no ``UTC`` and no exception class
name; every link to evidence must answer 200; and every confirmed failure of a page check must show its
marked screenshot (crop and full page, loaded) on the unit's report page.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from checks.reasons import REASONS
from crawler.screenshots import PAGE_CHECKS, shoot_confirmed
from reports.annual import derive, submit
from review.accounts import create_user
from storage.config import Config
from storage.db import make_engine
from storage.evidence import EvidenceStore
from storage.models import AnnualReport, Capture, Finding, Unit, User, Website
from tests.crawler.scanning import workspace

from .conftest import Served, browser_login, serve
from .world import PASSWORD, SECRET, YEAR, World

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]

OFFICE = "130603"  # 北市区: CONAC's error image on one site, a malformed ICP number on another
MAX_PAGES = 400

_CODES = "|".join(re.escape(c) for c in sorted(REASONS, key=len, reverse=True))
FORBIDDEN: dict[str, re.Pattern[str]] = {
    "reason code": re.compile(rf"(?<![\w.]){_CODES}(?![\w])"),
    "subject id": re.compile(r"\b(?:site|domain|unit|scan|capture|finding):\d+"),
    "UTC": re.compile(r"\bUTC\b"),
    "exception": re.compile(
        r"\b[A-Z][A-Za-z]*(?:Error|Exception)\b|\b(?:ResponseNeverReceived|ResponseFailed|ConnectionLost|"
        r"ConnectionDone|ConnectionRefused|DNSLookupError|TCPTimedOutError)\b|twisted\.|Traceback"
    ),
}
# Pages that are not for officials (the API description is for programmers) or not the console's own
# text (a captured page is the site's), and the form posts.
SKIP = ("/docs", "/openapi.json", "/api/", "/captures/", "/logout", "/static/")
EVIDENCE = ("/captures/", "/findings/", "/evidence")


@dataclass
class Demo:
    served: Served
    scan_id: int
    confirmed: dict[int, list[tuple[str, str]]]  # capture id -> (check, reason) of confirmed page failures
    report_of_unit: dict[int, int]
    unit_of_capture: dict[int, int]


@dataclass
class Walk:
    pages: dict[str, str] = field(default_factory=dict)  # path -> visible text
    evidence: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # "/units/N: subject id site:N" -> pages

    def report(self) -> str:
        """The violations by page kind and what was found (how many), then the first ones in full."""
        lines = [f"{n:4d} × {k}" for k, n in sorted(self.kinds.items())]
        return "\n".join(["by page kind:", *lines, "first:", *self.violations[:20]])


@pytest.fixture(scope="module")
def demo(simnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    ws = workspace(tmp_path_factory.mktemp("walk"), simnet)
    result = ws.scan("--render", "auto")
    assert result["status"] == "finished", result
    scan_id = int(result["scan_id"])
    env = {k: v for k, v in ws.env().items() if k.startswith("BADGEWATCH_")}
    cfg = Config.load(env={**env, "BADGEWATCH_SECRET_KEY": SECRET})
    engine = make_engine(ws.db_url)
    store = EvidenceStore(cfg.evidence_dir)
    shots = shoot_confirmed(engine, cfg, scan_id, store)
    assert shots.failed == 0, shots.to_dict()
    with Session(engine, expire_on_commit=False) as s:
        rows = s.execute(
            sa.select(Finding.capture_id, Finding.check, Finding.reason, Website.unit_id)
            .join(Website, Website.id == Finding.website_id)
            .where(
                Finding.scan_id == scan_id,
                Finding.status == "fail",
                Finding.confirmed.is_(True),
                Finding.check.in_(PAGE_CHECKS),
            )
        ).all()
        confirmed: dict[int, list[tuple[str, str]]] = {}
        unit_of_capture: dict[int, int] = {}
        for cap_id, check, reason, unit_id in rows:
            confirmed.setdefault(cap_id, []).append((check, reason))
            unit_of_capture[cap_id] = unit_id
        # Units whose site could not be read (time-outs, resets, refusals: the crawler recorded the
        # network exception's text) have review pages too.
        unreadable = set(
            s.scalars(
                sa.select(Website.unit_id)
                .join(Finding, Finding.website_id == Website.id)
                .join(Capture, Capture.id == Finding.capture_id)
                .where(Finding.scan_id == scan_id, Finding.check == "http", Capture.error != "")
            )
        )
        assert len(unreadable) >= 3, "the catalogue scan recorded no network failure"
        # Every unit with a confirmed problem submits its report (saying all is well): the review pages.
        report_of_unit: dict[int, int] = {}
        for unit_id in sorted(set(unit_of_capture.values()) | unreadable):
            unit = s.get(Unit, unit_id)
            assert unit is not None
            report, _ = submit(
                s,
                unit,
                YEAR,
                {
                    "organizer": unit.name,
                    "site_name": unit.name + "网",
                    "domains_status": "有效",
                    "functions_reviewed": "是",
                    "badge_displayed": "是",
                },
                "import",
            )
            derive(s, report)
            report_of_unit[unit_id] = report.id
        hashed = create_user(s, "walk-office", "office", PASSWORD, OFFICE).password_hash
        s.add(User(name="walk-center", role="center", password_hash=hashed))
        s.commit()
    assert confirmed, "the catalogue scan confirmed no page-check failure"
    world = World(engine, cfg, store)
    for base in serve(world):
        yield Demo(Served(world, base), scan_id, confirmed, report_of_unit, unit_of_capture)
    engine.dispose()


def _login(browser: Any, base: str, name: str) -> Any:
    return browser_login(browser, base, name, width=1366)


def _check_text(path: str, text: str, walk: Walk) -> None:
    for what, pattern in FORBIDDEN.items():
        for m in pattern.finditer(text):
            around = text[max(0, m.start() - 30) : m.end() + 30].replace("\n", " ")
            walk.violations.append(f"{path}: {what} {m.group(0)!r} in …{around}…")
            kind = re.sub(r"\d+", "N", f"{urlsplit(path).path}: {what} {m.group(0)}")
            walk.kinds[kind] = walk.kinds.get(kind, 0) + 1


DOWNLOADS = (".xlsx", ".csv", ".png")


def walk_console(page: Any, base: str, start: list[str]) -> Walk:
    """Open every console page reachable by links from ``start`` (GET, same origin), checking the text."""
    walk = Walk()
    todo = list(dict.fromkeys(start))
    while todo and len(walk.pages) < MAX_PAGES:
        path = todo.pop(0)
        if path in walk.pages:
            continue
        response = page.goto(base + path)
        assert response is not None and response.status == 200, f"{path}: {response and response.status}"
        text = page.inner_text("body")
        walk.pages[path] = text
        _check_text(path, text, walk)
        refs = page.eval_on_selector_all(
            "a[href], img[src], iframe[src]",
            "els => els.map(e => e.getAttribute('href') || e.getAttribute('src'))",
        )
        for ref in refs:
            url = urlsplit(urljoin(base + path, ref))
            if f"{url.scheme}://{url.netloc}" != base:
                continue
            target = url.path + (f"?{url.query}" if url.query else "")
            if url.path.startswith(EVIDENCE) or url.path.endswith(DOWNLOADS):
                # Evidence images and Excel downloads are not pages: fetched and checked for a 200.
                walk.evidence.add(target)
            elif not url.path.startswith(SKIP) and target not in walk.pages:
                todo.append(target)
    return walk


def _resolve_all(page: Any, base: str, links: set[str]) -> list[str]:
    """Evidence links fetched with the browser's session: those that do not answer 200."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    bad = []
    with httpx.Client(base_url=base, cookies=cookies, timeout=30) as client:
        for link in sorted(links):
            # A captured page is served only as the console's own frame: ask for it as the frame does.
            framed = urlsplit(link).path.endswith("/page")
            headers = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "same-origin"} if framed else {}
            r = client.get(link, headers=headers)
            if r.status_code != 200:
                bad.append(f"{link}: {r.status_code}")
    return bad


def _walk_as(
    browser: Any, demo: Demo, name: str, artifacts_dir: Path, office: str | None = None
) -> tuple[Any, Walk]:
    """Walk as ``name``, starting from the overview and the reports (of ``office``'s units, if given)."""
    base = demo.served.base
    page = _login(browser, base, name)
    with demo.served.world.session() as s:
        reports = [
            f"/reports/{r}"
            for unit_id, r in demo.report_of_unit.items()
            if office is None or ((u := s.get(Unit, unit_id)) is not None and u.office_code == office)
        ]
    walk = walk_console(page, base, ["/", "/reports", *reports])
    page.goto(base + "/")
    page.screenshot(path=str(artifacts_dir / f"walk-{name}-overview.png"), full_page=True)
    return page, walk


def _assert_screenshots_shown(
    page: Any, demo: Demo, caps: list[int], artifacts_dir: Path | None = None
) -> None:
    base = demo.served.base
    for cap_id in caps:
        with demo.served.world.session() as s:
            cap = s.get(Capture, cap_id)
            assert cap is not None and cap.shots.get("full"), f"capture {cap_id} has no marked screenshot"
            marked = {c for crop in cap.shots["crops"] for c in crop["checks"]}
        assert {check for check, _ in demo.confirmed[cap_id]} <= marked
        report = demo.report_of_unit[demo.unit_of_capture[cap_id]]
        page.goto(f"{base}/reports/{report}")
        shots = page.locator(f"#shots-{cap_id}")
        assert shots.is_visible(), f"report {report}: the screenshot of capture {cap_id} is not shown"
        images = shots.locator("img")
        assert images.count() >= 2  # a crop per mark and the full page
        for i in range(images.count()):
            img = images.nth(i)
            assert img.evaluate("i => i.complete && i.naturalWidth > 0"), img.get_attribute("src")
        # The failing visit comes first on the page, before any other visit.
        first = page.locator("section.evidence article.capture").first
        assert "capture-fail" in (first.get_attribute("class") or "")
        if any(reason == "badge.error_image" for _, reason in demo.confirmed[cap_id]):
            badge = page.locator(f"#badge-image-{cap_id} img")
            assert badge.evaluate("i => i.naturalWidth") == 80  # CONAC's error image, as served
            if artifacts_dir is not None:
                page.screenshot(path=str(artifacts_dir / "walk-evidence-error-image.png"), full_page=True)


def test_office_user_walk(browser: Any, demo: Demo, artifacts_dir: Path) -> None:
    page, walk = _walk_as(browser, demo, "walk-office", artifacts_dir, OFFICE)
    assert len(walk.pages) >= 3
    assert walk.evidence, "no evidence link on any page"
    assert not (bad := _resolve_all(page, demo.served.base, walk.evidence)), bad
    with demo.served.world.session() as s:
        mine = [
            cap_id
            for cap_id, unit_id in demo.unit_of_capture.items()
            if (u := s.get(Unit, unit_id)) is not None and u.office_code == OFFICE
        ]
    assert mine, "the office has no confirmed page-check failure"
    _assert_screenshots_shown(page, demo, mine)
    page.context.close()
    assert not walk.violations, walk.report()


def test_center_reviewer_walk(browser: Any, demo: Demo, artifacts_dir: Path) -> None:
    page, walk = _walk_as(browser, demo, "walk-center", artifacts_dir)
    assert not (bad := _resolve_all(page, demo.served.base, walk.evidence)), bad
    # Every confirmed failure of a page check of the scan shows its marked screenshot.
    _assert_screenshots_shown(page, demo, sorted(demo.confirmed), artifacts_dir)
    with demo.served.world.session() as s:
        reports = s.scalar(sa.select(sa.func.count()).select_from(AnnualReport))
    assert reports == len(demo.report_of_unit)
    page.context.close()
    assert not walk.violations, walk.report()


def test_evidence_reads_plainly_when_unfolded(browser: Any, demo: Demo, artifacts_dir: Path) -> None:
    """The evidence part of every report page, every fold opened (技术细节 too): no code, subject id, UTC
    or exception name outside the captured material itself (the page source, headers and excerpts are the
    site's bytes, shown as stored)."""
    page = _login(browser, demo.served.base, "walk-center")
    walk = Walk()
    explained = 0
    for report in sorted(demo.report_of_unit.values()):
        path = f"/reports/{report}"
        page.goto(demo.served.base + path)
        page.eval_on_selector_all("section.evidence details", "ds => ds.forEach(d => { d.open = true; })")
        page.eval_on_selector_all(
            "section.evidence pre.source, section.evidence pre.json, section.evidence pre.excerpt",
            "els => els.forEach(e => { e.style.display = 'none'; })",
        )
        _check_text(path, page.inner_text("section.evidence"), walk)
        errors = page.locator("section.evidence .visit-error").count()
        if errors and not explained:
            page.screenshot(path=str(artifacts_dir / "walk-evidence-unreadable.png"), full_page=True)
        explained += errors
        walk.pages[path] = ""
    assert len(walk.pages) == len(demo.report_of_unit)
    assert explained >= 3, "no visit whose network failure had to be explained"
    assert not walk.violations, walk.report()
    page.context.close()
