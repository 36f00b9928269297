"""What the dashboard, office, unit and report pages show, checked against the database."""

from __future__ import annotations

import re

import sqlalchemy as sa

from checks.reasons import describe
from storage.models import AnnualReportEvent, Domain, Finding, Unit, Website

from .conftest import Served, csrf_of


def _cells(html: str, table_id: str) -> list[list[str]]:
    body = html[html.index(f'id="{table_id}"') :]
    body = body[: body.index("</table>")]
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = [
            re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, re.S)
        ]
        rows.append([re.sub(r"\s+", " ", c) for c in cells])
    return rows


def test_dashboard_coverage_is_the_reviewers_scope(served: Served) -> None:
    city = served.login("baoding").get("/").text
    # 保定市's table: one row per county, registered units / roster as the world holds them.
    with served.world.session() as s:
        for code, name, roster in (("130681", "涿州市", 4), ("130606", "莲池区", 5)):
            registered = s.scalar(
                sa.select(sa.func.count(sa.distinct(Unit.id)))
                .join(Domain, Domain.unit_id == Unit.id)
                .where(Unit.office_code == code, Domain.kind == ".政务")
            )
            row = re.search(rf">{name}</a></td>\s*<td>(\d+)</td><td>(\d+)</td>\s*<td>(\d+)%</td>", city)
            assert row is not None, name
            assert (int(row[1]), int(row[2]), int(row[3])) == (
                roster,
                registered,
                round(100 * registered / roster),
            )
    county = served.login("zhuozhou").get("/").text
    assert "涿州市域名注册及网站标识申请情况" in county and "莲池区" not in county
    assert "<svg" in county and "<script" not in county


def test_dashboard_trend_counts_badge_verdicts_in_scope(served: Served) -> None:
    w = served.world
    html = served.login("zhuozhou").get("/").text
    rows = {r[0]: r for r in _cells(html, "trend")[1:]}
    with w.session() as s:
        for n in (1, 2):
            scan_id = w.ids[f"scan:{n}"]
            got = s.execute(
                sa.select(Finding.status, sa.func.count())
                .join(Website, Website.id == Finding.website_id)
                .join(Unit, Unit.id == Website.unit_id)
                .where(Finding.scan_id == scan_id, Finding.check == "badge", Unit.office_code == "130681")
                .group_by(Finding.status)
            ).all()
            want = dict((str(k), int(v)) for k, v in got)
            row = rows[f"#{scan_id}"]
            assert [int(x) for x in row[2:6]] == [want.get(k, 0) for k in ("pass", "fail", "warn", "unknown")]


def test_office_page_lists_units_with_latest_status(served: Served) -> None:
    w = served.world
    html = served.login("zhuozhou").get("/offices/130681").text
    rows = {r[0]: r for r in _cells(html, "units")[1:]}
    with w.session() as s:
        for key in ("edu", "health"):
            unit = s.get(Unit, w.ids[f"unit:{key}"])
            assert unit is not None
            fails = s.scalar(
                sa.select(sa.func.count(Finding.id)).where(
                    Finding.scan_id == w.ids["scan:2"],
                    Finding.status == "fail",
                    Finding.confirmed.is_(True),
                    sa.or_(
                        Finding.website_id == w.ids[f"site:{key}"],
                        Finding.domain_id == w.ids[f"domain:{key}"],
                    ),
                )
            )
            assert f"不合规 {fails} 项" in rows[unit.name][4]


def test_unit_page_shows_sites_domains_and_history(served: Served) -> None:
    w = served.world
    html = served.login("zhuozhou").get(f"/units/{w.ids['unit:health']}").text
    with w.session() as s:
        n = s.scalar(
            sa.select(sa.func.count(Finding.id)).where(
                sa.or_(
                    Finding.website_id == w.ids["site:health"], Finding.domain_id == w.ids["domain:health"]
                )
            )
        )
    assert len(_cells(html, "history")) - 1 == n
    assert "http://www.health.gov.cn/" in html and "涿州市卫生健康局.政务" in html
    assert describe("badge.missing").message in html  # the reason in Chinese, from the catalogue


def test_report_page_puts_submitted_beside_derived(served: Served) -> None:
    w = served.world
    html = served.login("zhuozhou").get(f"/reports/{w.ids['report:health']}").text
    fields = {r[0][:1]: r for r in _cells(html, "fields")[1:]}
    assert fields["5"][1] == "是" and fields["5"][2].startswith("否")
    assert 'id="field-5" class="differs"' in html and 'id="field-3" class=""' in html
    # The ICP line and the (missing) badge verdict rest on the stored capture of the latest scan.
    assert '<mark id="hl-' in html and 'class="hl-icp"' in html


def test_console_decisions_refuse_missing_reason_and_second_decision(served: Served) -> None:
    w = served.world
    rid = w.ids["report:edu"]
    c = served.login("zhuozhou")
    token = csrf_of(c.get(f"/reports/{rid}").text)
    post = {"csrf_token": token, "version": "1", "confirm": "1"}
    origin = {"Origin": served.base}
    r = c.post(
        f"/reports/{rid}/decision", data={**post, "decision": "reject", "reason": "  "}, headers=origin
    )
    assert r.status_code == 400 and "退回必须填写原因" in r.text
    r = c.post(f"/reports/{rid}/decision", data={**post, "decision": "approve"}, headers=origin)
    assert r.status_code == 303
    r = c.post(
        f"/reports/{rid}/decision", data={**post, "decision": "reject", "reason": "再退回"}, headers=origin
    )
    assert r.status_code == 409 and "不能越级或重复审核" in r.text
    with w.session() as s:
        states = [
            e.to_state
            for e in s.scalars(
                sa.select(AnnualReportEvent)
                .where(AnnualReportEvent.report_id == rid)
                .order_by(AnnualReportEvent.id)
            )
        ]
    assert states == ["submitted", "office_approved"]
