"""The evidence view's pieces (review/evidence.py) on the review world: the failing visit first, names
and explanations instead of codes and exception text, and the marked screenshot's parts served."""

from __future__ import annotations

import re

import sqlalchemy as sa

from review.evidence import group_by_capture, host_display, report_findings
from simnet.pngs import badge_png
from storage.models import AnnualReport, Capture
from storage.readable import explain_error, is_technical

from .conftest import Served

# Network failures as the crawler records them (crawler/errors.py: the exception's class and text).
RECORDED = {
    "ResponseNeverReceived: [<twisted.python.failure.Failure twisted.internet.error.ConnectionLost: "
    "Connection to the other side was lost in a non-clean fashion: Connection lost.>]": "中断了连接",
    "ConnectionRefusedError: Connection was refused by other side: 111: Connection refused.": "拒绝连接",
    "DownloadTimeoutError: Getting http://www.cat007.gov.cn/ took longer than 4.0 seconds.": "超时",
    "TCPTimedOutError: TCP connection timed out: 110: Connection timed out.": "超时",
    "DNSLookupError: DNS lookup failed: no results for hostname lookup: www.x.cn.": "无法解析",
    "ParseError: ('wrong number of parts', b'HTTP/1.1')": "不符合 HTTP 协议",
    "reset": "中断了连接",  # a hop's error: a checks.http.FetchError value
    "tls": "加密连接",
}


def test_network_failures_are_explained_in_words() -> None:
    for raw, words in RECORDED.items():
        text = explain_error(raw)
        assert words in text, (raw, text)
        # No English word (HTTP and HTTPS aside, as the reason catalogue writes them), let alone a class name.
        assert not re.search(r"[A-Za-z]{3,}", re.sub(r"HTTPS?", "", text)), text
    assert is_technical(next(iter(RECORDED)))
    assert not is_technical("首页中没有网站标识代码、标识图片或核验链接")


def test_domains_show_in_chinese_with_punycode_beside() -> None:
    assert host_display("http://xn--fiqs8s.xn--zfr164b/a?b=1") == (
        "http://中国.政务/a?b=1",
        "xn--fiqs8s.xn--zfr164b",
    )
    assert host_display("https://www.edu.gov.cn/") == ("https://www.edu.gov.cn/", "")


def test_failing_visit_comes_first(served: Served) -> None:
    w = served.world
    with w.session() as s:
        report = s.get(AnnualReport, w.ids["report:health"])  # no badge on the site: badge.missing
        assert report is not None
        captures, loose = group_by_capture(s, w.store, report_findings(s, report))
    assert captures and not loose
    assert captures[0].failing and captures[0].capture.website_id == w.ids["site:health"]
    failing = [cv for cv in captures if cv.failing]
    assert captures[: len(failing)] == failing  # every failing visit before any other
    passing = [cv for cv in captures if cv.passing]
    assert passing and captures[-len(passing) :] == passing  # the passing ones last (folded)
    first = captures[0]
    assert first.title.startswith("网站“涿州市卫生健康局网站”")
    badge = next(fv for fv in first.findings if fv.finding.check == "badge")
    assert (badge.check_label, badge.status_label) == ("网站标识", "不合规")
    assert first.when and "UTC" not in first.when
    assert first.shots_note.startswith("截图尚未生成")  # confirmed, not yet screenshotted
    dom = next(cv for cv in captures if cv.capture.domain_id is not None)
    label = dom.findings[0]
    assert label.subject_label.startswith("中文域名 ") and label.subject_note.startswith("xn--")


def test_marked_screenshot_parts_are_served(served: Served) -> None:
    w = served.world
    full, crop, image = badge_png("blue"), badge_png("red"), badge_png("red_error")
    with w.session() as s:
        cap = s.scalars(
            sa.select(Capture).where(
                Capture.website_id == w.ids["site:health"], Capture.scan_id == w.ids["scan:2"]
            )
        ).one()
        cap.shots = {
            "full": w.store.put(full),
            "crops": [{"checks": ["badge"], "blob": w.store.put(crop), "found": "footer", "caption": "c"}],
            "badge_image": {"url": "http://dcs.conac.cn/image/red_error.png", "blob": w.store.put(image)},
            "attempts": 1,
        }
        s.commit()
        cap_id = cap.id
    office = served.login("zhuozhou")
    for part, body in (("full", full), ("crop-0", crop), ("badge", image)):
        r = office.get(f"/captures/{cap_id}/screenshot.png", params={"part": part})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", part
        assert r.content == body, part
    for part in ("crop-1", "crop-x", "source"):
        assert office.get(f"/captures/{cap_id}/screenshot.png", params={"part": part}).status_code == 404
    # Another office's reviewer sees none of it.
    other = served.login("lianchi")
    assert other.get(f"/captures/{cap_id}/screenshot.png", params={"part": "full"}).status_code == 404
    # The review page shows the crop beside the full page (and no badge image: the badge is missing, so
    # the image shown is not evidence of this failure).
    page = office.get(f"/reports/{w.ids['report:health']}").text
    assert f'id="shots-{cap_id}"' in page
    assert f"/captures/{cap_id}/screenshot.png?part=crop-0" in page
    assert f"/captures/{cap_id}/screenshot.png?part=full" in page
