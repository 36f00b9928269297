"""Adversarial field cases: markup as real CMSs (TRS WCM, 大汉, Jeecms, PHPCMS, DedeCMS, WordPress,
集约化平台) write it, for variants the shape fixtures do not have.

Each page in ``fixtures/field/`` states its expected verdicts here, derived from domain.md §3–§6: mixed-case
CONAC hosts, lower-case ``%3c`` escapes, ``document.write`` split over several calls, ``&#38;`` and
lower-case hex in the verification link, image maps, ``<base href>``, ``../`` and query strings on local
badge copies, same-site iframes, ``<noscript>``/conditional-comment/``javascript:`` non-badges, labels and
full-width digits around the numbers, numbers only in a ``title``, MIIT/公安 links in any case, a GBK
footer under a UTF-8 declaration, pages whose lines end in a lone CR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from checks.badge import analyse_badge
from checks.expected import Expected, UnitKind
from checks.icp import check_icp
from checks.page import Document, NeedKind, Page
from checks.police import check_police
from checks.rules import DEFAULT_RULES, Rules
from checks.sitecode import check_site_code

FIX = Path(__file__).parent / "fixtures" / "field"
RES = Path(__file__).parent / "fixtures" / "badge" / "res"

SITE = "http://www.bdbb.gov.cn/"
RED_CODE = "CA051060000123456780001"
RED_ID = "3F2A9C1B7D4E8F60A1B2C3D4E5F60718"
RED_JS = "http://dcs.conac.cn/js/05/106/0000/12345678/" + RED_CODE + ".js"
PARTY = Expected(
    UnitKind.PARTY_GOV,
    unit_name="保定市机构编制委员会办公室",
    site_url=SITE,
    badge_code=RED_CODE,
    en_domains=("www.bdbb.gov.cn",),
    cn_domains=("保定市编办.政务",),
    division_code="130600",
    icp="冀ICP备13123456号",
    police_record="冀公网安备13060202000123号",
    site_code="1306000001",
    is_government_site=True,
)


def _bszs(url: str) -> bool:
    return "bszs.conac.cn" in url.lower() and RED_ID in url.upper()


@dataclass
class BadgeCase:
    status: str
    reason: str
    data: dict[str, Any] = field(default_factory=dict)
    # What the crawler can get: (kind, predicate on the URL) -> resource file; anything else is a 404.
    serve: tuple[str, ...] = ()


BADGE: dict[str, BadgeCase] = {
    # An image map hot spot links to bszs: a badge (kind from the verification page).
    "badge_map_area": BadgeCase("pass", "badge.ok", {"kind": "党政机关", "verify_id": RED_ID}, ("bszs",)),
    # Host written in mixed case: still CONAC's (host names are case-blind).
    "badge_bszs_mixed_case_host": BadgeCase(
        "pass", "badge.ok", {"kind": "党政机关", "verify_id": RED_ID}, ("bszs",)
    ),
    "badge_unescape_lowercase_mixed_host": BadgeCase(
        "pass", "badge.ok", {"kind": "党政机关", "code": RED_CODE, "shape": "embed_code"}, ("badge_script",)
    ),
    "badge_split_document_write": BadgeCase("pass", "badge.ok", {"code": RED_CODE}, ("badge_script",)),
    "badge_amp38_lowercase_id": BadgeCase("pass", "badge.ok", {"verify_id": RED_ID}, ("bszs",)),
    # Neither a commented-out embed nor a <noscript> copy is displayed.
    "badge_noscript_and_commented": BadgeCase("fail", "badge.missing"),
    "badge_conditional_comment": BadgeCase("fail", "badge.missing"),
    "badge_javascript_void_placeholder": BadgeCase("fail", "badge.missing"),
    "badge_iframe_relative": BadgeCase(
        "pass", "badge.ok", {"code": RED_CODE, "source": "frame"}, ("frame", "badge_script")
    ),
    # <base href> moves the relative image; a query string does not hide the local red.png copy.
    "badge_base_href_local_copy": BadgeCase(
        "pass", "badge.ok", {"kind": "党政机关", "verify_id": RED_ID}, ("bszs", "image")
    ),
    "badge_table_footer_parent_path": BadgeCase(
        "pass", "badge.ok", {"kind": "党政机关", "verify_id": RED_ID}, ("bszs", "image")
    ),
}


def _serve(page: Page, kind: NeedKind, url: str, allowed: tuple[str, ...]) -> None:
    if kind is NeedKind.BSZS and "bszs" in allowed and _bszs(url):
        page.bszs[url] = Document.from_bytes(url, (RES / "bszs_red.html").read_bytes(), "text/html")
    elif kind is NeedKind.BADGE_SCRIPT and "badge_script" in allowed and RED_CODE in url:
        page.badge_scripts[url] = (RES / "red_badge.js").read_text(encoding="utf-8")
    elif kind is NeedKind.IMAGE and "image" in allowed and url.split("?")[0].endswith("/red.png"):
        page.images[url] = (RES / "red.png").read_bytes()
    elif kind is NeedKind.FRAME and "frame" in allowed and url == SITE + "inc/foot.html":
        page.frames[url] = Document.from_bytes(url, (FIX / "foot.html").read_bytes(), "text/html")
    else:
        page.failed[url] = "HTTP 404"


@pytest.mark.parametrize("name", sorted(BADGE))
def test_badge_field_case(name: str) -> None:
    case = BADGE[name]
    page = Page(url=SITE, body=(FIX / f"{name}.html").read_bytes(), headers={"Content-Type": "text/html"})
    for _ in range(8):
        analysis = analyse_badge(page, PARTY, DEFAULT_RULES)
        if not analysis.needs:
            break
        for need in analysis.needs:
            if need.kind is NeedKind.RENDER:
                page.failed[need.key] = "no browser"
            else:
                _serve(page, need.kind, need.url, case.serve)
    v = analysis.verdict
    assert (str(v.status), v.reason) == (case.status, case.reason), (v.detail, dict(v.data))
    for key, value in case.data.items():
        assert v.data.get(key) == value, (key, dict(v.data))
    for ev in v.evidence:
        if ev.source == "home" and ev.start is not None:
            assert page.home.text[ev.start : ev.end] == ev.excerpt


def test_base_href_resolves_the_local_copy_under_the_base() -> None:
    """The image is asked for where the browser loads it: relative to ``<base href>``, query kept."""
    page = Page(url=SITE, body=(FIX / "badge_base_href_local_copy.html").read_bytes())
    urls = {n.url for n in analyse_badge(page, PARTY).needs}
    assert SITE + "sub/images/conac/red.png?v=20200101" in urls, urls
    assert SITE + "images/conac/red.png?v=20200101" not in urls


NUMBERS: dict[str, dict[str, tuple[str, str, dict[str, Any]]]] = {
    # Labels (ICP备案号：/公网安备案号：), &nbsp; between parts, full-width digits, upper-case MIIT host
    # without a trailing slash, the 公安 icon beside the number, "&amp;" in the 公安 link.
    "numbers_labels_fullwidth": {
        "icp": ("pass", "icp.ok", {"number": "冀ICP备13123456号", "linked": "current"}),
        "police": ("pass", "police.ok", {"number": "冀公网安备13060202000123号", "link_form": "portal"}),
        "site_code": ("pass", "site_code.ok", {"value": "1306000001"}),
    },
    # ICP only in the link's title; protocol-relative MIIT link with a path; 公安 split by a tag, new
    # MPS link in upper case; 标识码 only in the jiucuo script (old kaipuyun host).
    "numbers_title_only_and_miit_path": {
        "icp": ("pass", "icp.ok", {"number": "冀ICP备13123456号", "linked": "current"}),
        "police": ("pass", "police.ok", {"number": "冀公网安备13060202000123号", "link_form": "mps"}),
        "site_code": ("pass", "site_code.ok", {"value": "1306000001", "source": "jiucuo"}),
    },
    # An ASCII page declaring UTF-8 with a GBK footer: the footer must be read, not turned into U+FFFD.
    "numbers_gbk_footer_declared_utf8": {
        "icp": ("pass", "icp.ok", {"number": "冀ICP备13123456号"}),
        "police": ("pass", "police.ok", {"number": "冀公网安备13060202000123号"}),
        "site_code": ("pass", "site_code.ok", {"value": "1306000001"}),
    },
    # Lines end in a lone CR (old Mac-style CMS export); the registry has no "-1" suffix and the rules
    # do not ignore it: a mismatch (domain.md §4).
    "numbers_lone_cr_lines": {
        "icp": ("fail", "icp.number_mismatch", {"number": "冀ICP备13123456号-1"}),
        "police": ("pass", "police.ok", {"number": "冀公网安备13060202000123号"}),
        "site_code": ("pass", "site_code.ok", {"value": "1306000001"}),
    },
    # The 找错 widget carries one 标识码, the footer another: the page contradicts itself, never a pass.
    "numbers_jiucuo_conflicts_footer": {
        "site_code": ("warn", "site_code.conflict", {}),
    },
}
CHECKS = {"icp": check_icp, "police": check_police, "site_code": check_site_code}


@pytest.mark.parametrize(
    ("name", "check"), [(n, c) for n, cases in sorted(NUMBERS.items()) for c in cases], ids=lambda x: str(x)
)
def test_number_field_case(name: str, check: str) -> None:
    status, reason, data = NUMBERS[name][check]
    page = Page(url=SITE, body=(FIX / f"{name}.html").read_bytes(), headers={"Content-Type": "text/html"})
    v = CHECKS[check](page, PARTY, Rules())
    assert (str(v.status), v.reason) == (status, reason), (v.detail, dict(v.data))
    for key, value in data.items():
        assert v.data.get(key) == value, (key, dict(v.data))
    for ev in v.evidence:
        if ev.source == "home" and ev.start is not None:
            assert page.home.text[ev.start : ev.end] == ev.excerpt


def test_lone_cr_suffix_ignored_when_configured() -> None:
    page = Page(url=SITE, body=(FIX / "numbers_lone_cr_lines.html").read_bytes())
    v = check_icp(page, PARTY, Rules(icp_ignore_suffix=True))
    assert (str(v.status), v.reason) == ("pass", "icp.ok")


def test_gbk_footer_is_decoded_as_gb18030() -> None:
    page = Page(url=SITE, body=(FIX / "numbers_gbk_footer_declared_utf8.html").read_bytes(),
                headers={"Content-Type": "text/html; charset=UTF-8"})  # fmt: skip
    assert page.home.encoding == "gb18030"
    assert "版权所有：保定市编办" in page.home.text and "\ufffd" not in page.home.text


def test_utf8_page_with_stray_bytes_stays_utf8() -> None:
    """A real UTF-8 page with a few broken bytes is not re-read as GBK."""
    text = "<html><body>" + "保定市机构编制委员会办公室" * 200 + "</body></html>"
    body = text.encode("utf-8")
    body = body[:500] + b"\xff" + body[500:]
    page = Page(url=SITE, body=body, headers={"Content-Type": "text/html; charset=utf-8"})
    assert page.home.encoding == "utf-8"
    assert page.home.text.count("保定市机构编制委员会办公室") >= 199


def test_line_offsets_count_lines_as_libxml2_does() -> None:
    """Only "\\n" starts a line for lxml's ``sourceline``: lone CR, U+2028, U+0085, form feed do not."""
    import bisect

    from checks.page import parse_html
    from checks.reading.lines import compute_line_starts

    text = (
        '<html><body><p id="a">a</p>\r<p id="b">b</p>\u2028<p id="c">c</p>\x0c\x85\n'
        '<p id="d">d</p>\r\n<p id="e">e</p></body></html>'
    )
    starts = compute_line_starts(text)
    for el in parse_html(text).iter("p"):
        offset = text.index(f'<p id="{el.get("id")}"')
        assert bisect.bisect_right(starts, offset) == el.sourceline, el.get("id")
