"""Non-compliance lists from findings: confirmed only, unknown apart, warn as advice, changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.reasons import REASONS, describe
from checks.verdict import Status
from reports.documents import noncompliance_document
from reports.noncompliance import FindingRecord, build_noncompliance
from reports.render import render_html

from .test_render import CHROMIUM, screenshot

_ids = iter(range(1, 10_000))


def rec(
    scan: int, office: str, subject: str, reason: str, *, confirmed: bool = True, status: str | None = None
) -> FindingRecord:
    return FindingRecord(
        finding_id=next(_ids),
        scan_id=scan,
        office_code=office,
        office_name={"1": "甲县", "2": "乙县"}[office],
        unit_id=int(subject.split(":")[1]),
        unit_name=f"单位{subject}",
        unit_kind="党政机关",
        subject=subject,
        check=reason.split(".")[0],
        status=status or str(describe(reason).status),
        reason=reason,
        confirmed=confirmed,
        site_url=f"http://{subject.replace(':', '')}.example/",
        capture_id=7,
    )


def test_every_status_goes_to_its_list() -> None:
    prev = [
        rec(1, "1", "site:1", "badge.missing"),
        rec(1, "1", "site:2", "icp.missing"),
        rec(1, "2", "site:3", "badge.missing"),
        rec(1, "2", "site:4", "police.missing"),
    ]
    cur = [
        rec(2, "1", "site:1", "badge.missing"),  # persisting
        rec(2, "1", "site:2", "icp.ok"),  # fixed
        rec(2, "1", "site:5", "badge.wrong_kind"),  # new
        rec(2, "1", "site:6", "site_code.missing", confirmed=False),  # waits for confirmation
        rec(2, "2", "site:3", "http.timeout"),  # unknown now: not "fixed"
        rec(2, "2", "site:4", "police.link_missing"),  # warn: fixed, and advice
    ]
    report = build_noncompliance(2, cur, prev, previous_scan_id=1, base_url="http://127.0.0.1:8000/")
    a, b = report.offices
    assert [(p.record.subject, p.change) for p in a.failures] == [("site:1", "持续"), ("site:5", "新增")]
    assert [p.record.subject for p in a.fixed] == ["site:2"] and a.pending == 1
    assert b.failures == [] and [p.record.reason for p in b.unverified] == ["http.timeout"]
    assert [p.record.reason for p in b.fixed] == ["police.missing"]
    assert [p.record.reason for p in b.advice] == ["police.link_missing"]
    p = a.failures[1]
    assert (
        p.message == describe("badge.wrong_kind").message and p.advice == describe("badge.wrong_kind").advice
    )
    assert p.evidence_id == f"F{p.record.finding_id}/C7"
    assert p.evidence_url == f"http://127.0.0.1:8000/findings/{p.record.finding_id}"


def test_unknown_codes_and_foreign_findings() -> None:
    r = rec(2, "1", "site:1", "badge.missing")
    odd = FindingRecord(
        **{
            **{f: getattr(r, f) for f in r.__slots__},
            "reason": "badge.future_rule",
            "finding_id": 999,
        }
    )
    report = build_noncompliance(2, [odd])
    # A code the catalogue does not know is still listed, in words (the code stays in the JSON).
    assert report.offices[0].failures[0].message == "未收录的检查结果（请联系技术人员核实）"
    assert report.to_dict()["offices"][0]["failures"][0]["reason"] == "badge.future_rule"
    with pytest.raises(ValueError, match="F"):
        build_noncompliance(3, [r])


def test_every_catalogue_status_is_accepted() -> None:
    records = [rec(2, "1", f"site:{i}", code) for i, code in enumerate(REASONS, start=1)]
    report = build_noncompliance(2, records)
    [ol] = report.offices
    fails = [c for c, r in REASONS.items() if r.status == Status.FAIL]
    assert sorted(p.record.reason for p in ol.failures) == sorted(fails)
    assert len(ol.unverified) == sum(r.status == Status.UNKNOWN for r in REASONS.values())
    assert len(ol.advice) == sum(r.status == Status.WARN for r in REASONS.values())


@pytest.mark.browser
def test_list_html_renders(artifacts_dir: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/system-deps.sh installs it)")
    prev = [rec(1, "1", "site:1", "badge.missing")]
    cur = [
        rec(2, "1", "site:1", "badge.missing"),
        rec(2, "1", "site:5", "icp.number_mismatch"),
        rec(2, "2", "site:3", "http.blocked"),
        rec(2, "2", "site:4", "icp.link_outdated"),
    ]
    html = render_html(noncompliance_document(build_noncompliance(2, cur, prev, previous_scan_id=1)))
    assert describe("icp.number_mismatch").message in html
    src = tmp_path / "list.html"
    src.write_text(html, encoding="utf-8")
    png = artifacts_dir / "reports-noncompliance.png"
    screenshot(src, png, "1400,900")
    assert png.stat().st_size > 5_000


def test_unverifiable_site_is_one_line_led_by_the_access_failure() -> None:
    cur = [
        rec(2, "1", "site:9", "badge.script_unavailable"),
        rec(2, "1", "site:9", "http.timeout"),
        rec(2, "1", "site:9", "icp.lookup_unavailable"),
        rec(2, "1", "domain:9", "dns.timeout"),
    ]
    [ol] = build_noncompliance(2, cur).offices
    assert [p.record.subject for p in ol.unverified] == ["domain:9", "site:9"]
    site = ol.unverified[1]
    assert site.record.reason == "http.timeout"
    assert site.message.split("；") == [
        describe(c).message for c in ("http.timeout", "badge.script_unavailable", "icp.lookup_unavailable")
    ]
    assert site.checks == ("http", "badge", "icp") and site.to_dict()["checks"] == ["http", "badge", "icp"]
