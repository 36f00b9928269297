"""Every badge shape and quirk of domain.md §3, one real HTML fixture each, run through the crawler loop.

Each case starts from the home page alone, asks ``analyse_badge`` what it needs, serves those needs from
the case's sub-resources (anything not listed fails, as a 404 would), and repeats until nothing more is
needed. The final verdict is compared with the expectation written in the table; every intermediate
verdict must not accuse (``fail``) unless it is already the final, decided failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from checks.badge import analyse_badge
from checks.expected import Expected, UnitKind
from checks.page import Document, Need, NeedKind, Page
from checks.rules import DEFAULT_RULES

FIX = Path(__file__).parent / "fixtures" / "badge"
RES = FIX / "res"

RED_CODE = "CA051060000123456780001"
BLUE_CODE = "CA051060000876543210002"
OTHER_CODE = "CA051060000555555550003"
RED_ID = "3F2A9C1B7D4E8F60A1B2C3D4E5F60718"
BLUE_ID = "0A1B2C3D4E5F60718293A4B5C6D7E8F9"
OTHER_ID = "FFEEDDCCBBAA99887766554433221100"

PARTY = Expected(
    UnitKind.PARTY_GOV,
    unit_name="保定市机构编制委员会办公室",
    site_url="http://www.bdbb.gov.cn/",
    badge_code=RED_CODE,
    en_domains=("www.bdbb.gov.cn",),
    cn_domains=("保定市编办.政务",),
)
INST = Expected(
    UnitKind.INSTITUTION,
    unit_name="保定市第一中心医院",
    site_url="http://www.bdsdyzxyy.com/",
    badge_code=BLUE_CODE,
    en_domains=("www.bdsdyzxyy.com",),
)
# CONAC issued this institution a red badge: the code matches, the kind does not.
INST_RED_ISSUED = Expected(
    UnitKind.INSTITUTION,
    unit_name="保定市第一中心医院",
    site_url="http://www.bdsdyzxyy.com/",
    badge_code=RED_CODE,
)
SOCIAL = Expected(UnitKind.SOCIAL, unit_name="保定市慈善总会", site_url="http://www.bdcszh.org.cn/")

SITE = "http://www.bdbb.gov.cn/"
DCS = "http://dcs.conac.cn/js/05/106/0000/"
RED_JS = DCS + "12345678/" + RED_CODE + ".js"
BSZS_RED = "http://bszs.conac.cn/sitename?method=show&id=" + RED_ID


@dataclass
class Case:
    expected: Expected
    status: str
    reason: str
    data: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)  # url -> file in res/ ("render" for RENDER)
    url: str = SITE
    content_type: str = "text/html; charset=utf-8"
    max_fetches: int = 4


def _c(expected: Expected, status: str, reason: str, **kw: Any) -> Case:
    keys = ("kind", "code", "verify_id", "shape", "source", "kind_from")
    data: dict[str, Any] = {k: kw.pop(k) for k in keys if k in kw}
    return Case(expected, status, reason, data, **kw)


CASES: dict[str, Case] = {
    # §3.1 official embed code, http / https / protocol-relative, GBK pages.
    "embed_http": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        code=RED_CODE,
        verify_id=RED_ID,
        shape="embed_code",
        source="home",
        kind_from="script",
        resources={RED_JS: "red_badge.js"},
    ),
    "embed_https_gbk": _c(
        INST,
        "pass",
        "badge.ok",
        kind="事业单位",
        code=BLUE_CODE,
        shape="embed_code",
        url="http://www.bdsdyzxyy.com/",
        content_type="text/html; charset=GBK",
        resources={"https://dcs.conac.cn/js/05/106/0000/87654321/" + BLUE_CODE + ".js": "blue_badge.js"},
    ),
    "embed_protocol_relative_gb2312": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        code=RED_CODE,
        content_type="text/html",
        resources={RED_JS: "red_badge.js"},
    ),
    # §3.8 quirks: trailing space in src, doubled spaces.
    "embed_quirks": _c(
        PARTY, "pass", "badge.ok", kind="党政机关", code=RED_CODE, resources={RED_JS: "red_badge.js"}
    ),
    # §3.2 saved/rendered DOM with a duplicate empty span.
    "saved_dom": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        code=RED_CODE,
        verify_id=RED_ID,
        shape="rendered_dom",
        resources={RED_JS: "red_badge.js"},
    ),
    # §3.3 static copies: CONAC-hosted image, and a local copy recognised by its bytes.
    "static_copy": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        verify_id=RED_ID,
        shape="static_copy",
        kind_from="image",
        resources={BSZS_RED: "bszs_red.html"},
    ),
    "static_copy_https": _c(
        PARTY, "pass", "badge.ok", kind="党政机关", shape="static_copy", resources={BSZS_RED: "bszs_red.html"}
    ),
    "local_image_copy": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        shape="local_image_copy",
        kind_from="image",
        resources={SITE + "images/conac/red.png": "red.png", BSZS_RED: "bszs_red.html"},
    ),
    "local_copy_renamed": _c(
        INST,
        "pass",
        "badge.ok",
        kind="事业单位",
        shape="local_image_copy",
        kind_from="image",
        url="http://www.bdsdyzxyy.com/",
        resources={
            "http://www.bdsdyzxyy.com/uploads/2020/0412/a8f3c2.png": "blue.png",
            "http://bszs.conac.cn/sitename?method=show&id=" + BLUE_ID: "bszs_blue.html",
        },
    ),
    # §3.4 the image file wins over a wrong alt.
    "alt_contradicts_image": _c(
        PARTY,
        "fail",
        "badge.wrong_kind",
        kind="事业单位",
        kind_from="image",
        resources={BSZS_RED: "bszs_red.html"},
    ),
    # §3.4 custom images: kind from the verification page, else alt / wzades.
    "custom_image_alt": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        shape="custom_image",
        kind_from="bszs",
        resources={
            SITE + "uploads/2019/dzjg.png": "dzjg_custom.png",
            "https://bszs.conac.cn/sitename?method=show&id=" + RED_ID: "bszs_red.html",
        },
    ),
    "custom_image_wzades": _c(
        INST,
        "pass",
        "badge.ok",
        kind="事业单位",
        shape="custom_image",
        kind_from="alt",
        url="http://www.bdsdyzxyy.com/",
    ),
    "custom_image_copied": _c(
        PARTY,
        "fail",
        "badge.id_mismatch",
        verify_id=OTHER_ID,
        resources={
            SITE + "images/dzjg.png": "dzjg_custom.png",
            "http://bszs.conac.cn/sitename?method=show&id=" + OTHER_ID: "bszs_other.html",
        },
    ),
    # §3.5 text-only link.
    "text_link": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        shape="text_link",
        kind_from="bszs",
        resources={BSZS_RED: "bszs_red.html"},
    ),
    "text_link_id_mismatch": _c(
        Expected(
            UnitKind.PARTY_GOV,
            unit_name="保定市机构编制委员会办公室",
            badge_code=RED_CODE,
            badge_verify_id=RED_ID,
        ),
        "fail",
        "badge.id_mismatch",
        verify_id=OTHER_ID,
    ),
    # §3.6 footers built by JavaScript.
    "external_writeln": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        code=RED_CODE,
        shape="script_built",
        source="script",
        resources={SITE + "js/footer.js": "footer_writeln.js", RED_JS: "red_badge.js"},
    ),
    "inline_jquery_unescape": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        shape="script_built",
        source="home",
        resources={SITE + "images/dzjg.png": "dzjg_custom.png", BSZS_RED: "bszs_red.html"},
    ),
    "inline_innerhtml_concat": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        verify_id=RED_ID,
        shape="script_built",
        kind_from="image",
        resources={BSZS_RED: "bszs_red.html"},
    ),
    "bundle_needs_render": _c(
        PARTY,
        "unknown",
        "badge.needs_render",
        resources={
            SITE + "static/js/app.8c1f0e.js": "app_bundle.js",
            SITE + "static/js/chunk-vendors.1a2b3c.js": "vendors_bundle.js",
        },
    ),
    "bundle_rendered": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        verify_id=RED_ID,
        shape="rendered_dom",
        source="rendered",
        resources={
            SITE + "static/js/app.8c1f0e.js": "app_bundle.js",
            "render": "../bundle_rendered.rendered.html",
            BSZS_RED: "bszs_red.html",
        },
    ),
    "inline_dynamic_loader": _c(PARTY, "unknown", "badge.needs_render"),
    # A client-side template holding the badge: whether a script renders it only a browser can tell.
    "template_script": _c(PARTY, "unknown", "badge.needs_render"),
    # §3.3 a hand-copied local image in the span, without a link: its bytes tell.
    "span_local_image_no_link": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        shape="local_image_copy",
        resources={SITE + "images/conac/red.png": "red.png"},
    ),
    # §3.7 commented-out code; §3.8 placeholders; neighbours that are not the badge.
    "commented_out": _c(PARTY, "fail", "badge.missing"),
    "commented_then_copy": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        shape="static_copy",
        code=None,
        resources={BSZS_RED: "bszs_red.html"},
    ),
    "placeholder_href": _c(PARTY, "fail", "badge.missing"),
    "noscript_only": _c(PARTY, "fail", "badge.missing"),
    "neighbours_only": _c(PARTY, "fail", "badge.missing"),
    "neighbours_with_badge": _c(
        PARTY, "pass", "badge.ok", kind="党政机关", code=RED_CODE, resources={RED_JS: "red_badge.js"}
    ),
    # §3.8 "&amp;" written twice in the link, doubled spaces in the tag.
    "amp_doubled": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        verify_id=RED_ID,
        shape="static_copy",
        resources={BSZS_RED: "bszs_red.html"},
    ),
    # §3.8 class instead of id; async.
    "class_quirk": _c(
        PARTY, "pass", "badge.ok", kind="党政机关", shape="static_copy", resources={BSZS_RED: "bszs_red.html"}
    ),
    "async_external_wrapper": _c(
        PARTY,
        "fail",
        "badge.never_renders",
        code=RED_CODE,
        resources={SITE + "js/conac-badge.js": "async_wrapper.js"},
    ),
    "async_direct_no_span": _c(PARTY, "fail", "badge.never_renders", code=RED_CODE),
    # Badges inside iframes.
    "iframe_footer": _c(
        PARTY,
        "pass",
        "badge.ok",
        kind="党政机关",
        code=RED_CODE,
        source="frame",
        resources={SITE + "footer/conac.html": "iframe_footer.html", RED_JS: "red_badge.js"},
    ),
    # Findings against the registry and CONAC's own check.
    "embed_wrong_kind": _c(
        INST_RED_ISSUED,
        "fail",
        "badge.wrong_kind",
        kind="党政机关",
        url="http://www.bdsdyzxyy.com/",
        resources={RED_JS: "red_badge.js"},
    ),
    "embed_code_mismatch": _c(PARTY, "fail", "badge.code_mismatch", code=OTHER_CODE),
    "embed_error_image": _c(
        PARTY, "fail", "badge.error_image", kind="党政机关", resources={RED_JS: "red_error_badge.js"}
    ),
    # Undecidable: never a failure.
    "embed_script_failed": _c(PARTY, "unknown", "badge.script_unavailable", code=RED_CODE),
    "external_script_failed": _c(PARTY, "unknown", "badge.script_unavailable"),
    # Nothing anywhere.
    "missing_plain": _c(PARTY, "fail", "badge.missing"),
    "external_script_no_badge": _c(
        PARTY, "fail", "badge.missing", resources={SITE + "js/common.js": "common_no_badge.js"}
    ),
    "javascript_window_open": _c(
        PARTY, "pass", "badge.ok", kind="党政机关", verify_id=RED_ID, resources={BSZS_RED: "bszs_red.html"}
    ),
    "social_org": _c(
        SOCIAL, "pass", "badge.ok", url="http://www.bdcszh.org.cn/", resources={BSZS_RED: "bszs_social.html"}
    ),
    "broken_markup": _c(
        PARTY, "pass", "badge.ok", kind="党政机关", verify_id=RED_ID, resources={BSZS_RED: "bszs_red.html"}
    ),
}


def _serve(page: Page, need: Need, case: Case) -> bool:
    name = case.resources.get("render" if need.kind is NeedKind.RENDER else need.url)
    if name is None:
        page.mark_failed(need, "HTTP 404")
        return False
    path = RES / name
    if need.kind is NeedKind.RENDER:
        page.rendered = Document(need.url, path.read_text(encoding="utf-8"))
    elif need.kind is NeedKind.IMAGE:
        page.images[need.url] = path.read_bytes()
    elif need.kind is NeedKind.SCRIPT:
        page.scripts[need.url] = path.read_text(encoding="utf-8")
    elif need.kind is NeedKind.BADGE_SCRIPT:
        page.badge_scripts[need.url] = path.read_text(encoding="utf-8")
    elif need.kind is NeedKind.BSZS:
        page.bszs[need.url] = Document.from_bytes(need.url, path.read_bytes(), "text/html")
    elif need.kind is NeedKind.FRAME:
        page.frames[need.url] = Document.from_bytes(need.url, path.read_bytes(), "text/html")
    return True


def crawl(name: str, case: Case) -> tuple[Page, list[Any]]:
    """The crawler's loop over one fixture: analyse, fetch what is needed, repeat."""
    page = Page(
        url=case.url, body=(FIX / f"{name}.html").read_bytes(), headers={"Content-Type": case.content_type}
    )
    history = []
    for _ in range(10):
        analysis = analyse_badge(page, case.expected, DEFAULT_RULES)
        history.append(analysis)
        if not analysis.needs:
            return page, history
        for need in analysis.needs:
            assert not page.settled(need), f"asked again for {need}"
            _serve(page, need, case)
    raise AssertionError(f"{name}: needs never settle: {history[-1].needs}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_shape(name: str) -> None:
    case = CASES[name]
    page, history = crawl(name, case)
    final = history[-1].verdict
    assert (str(final.status), final.reason) == (case.status, case.reason), final.detail
    for key, value in case.data.items():
        assert final.data.get(key) == value, (key, final.data)
    for earlier in history[:-1]:
        v = earlier.verdict
        if str(v.status) == "fail":
            assert (v.status, v.reason) == (final.status, final.reason), "accused before the evidence was in"
    fetched = sum(len(a.needs) for a in history)
    assert fetched <= case.max_fetches, [a.needs for a in history]
    # Evidence is the exact source: the excerpt sits at its offsets in the decoded document.
    for ev in final.evidence:
        if ev.source == "home" and ev.start is not None:
            assert page.home.text[ev.start : ev.end] == ev.excerpt
        if ev.source == "rendered" and ev.start is not None and page.rendered is not None:
            assert page.rendered.text[ev.start : ev.end] == ev.excerpt
    if case.status != "fail" or case.reason != "badge.missing":
        assert final.evidence, "a verdict about a found badge must show it"


def test_every_fixture_has_a_case() -> None:
    pages = {p.stem for p in FIX.glob("*.html") if not p.name.endswith(".rendered.html")}
    assert pages == set(CASES)


def test_neighbour_widgets_are_not_badges() -> None:
    """The 找错 widget, 12377, webscan.360, cnzz and Baidu are all on the page; none is a badge."""
    page, history = crawl("neighbours_only", CASES["neighbours_only"])
    assert b"jiucuo.js" in page.body and b"12377" in page.body and b"webscan.360.cn" in page.body
    assert history[-1].verdict.reason == "badge.missing"
    assert len(history) == 1  # nothing worth fetching: none of them is same-site


def test_before_subresources_is_unknown_not_fail() -> None:
    """With only the home page, an embed whose colour lives in the script is undecided."""
    case = CASES["embed_wrong_kind"]
    page = Page(url=case.url, body=(FIX / "embed_wrong_kind.html").read_bytes())
    first = analyse_badge(page, case.expected)
    assert str(first.verdict.status) == "unknown"
    assert [n.kind for n in first.needs] == [NeedKind.BADGE_SCRIPT]


def test_exhausted_page_decides_from_what_it_has() -> None:
    """``inspect FILE`` (no fetching): a custom image with alt text is judged by its alt."""
    page = Page(url=SITE, body=(FIX / "custom_image_alt.html").read_bytes(), exhausted=True)
    analysis = analyse_badge(page, PARTY)
    assert analysis.needs == []
    assert (str(analysis.verdict.status), analysis.verdict.data["kind_from"]) == ("pass", "alt")


def test_check_and_needs_wrappers_agree_with_analysis() -> None:
    from checks.badge import badge_needs, check_badge

    page = Page(url=SITE, body=(FIX / "embed_http.html").read_bytes())
    analysis = analyse_badge(page, PARTY)
    assert check_badge(page, PARTY) == analysis.verdict
    assert badge_needs(page, PARTY) == analysis.needs == [Need(NeedKind.BADGE_SCRIPT, RED_JS)]
    assert analysis.verdict.check == "badge"
    assert set(analysis.verdict.data) >= {"kind", "code", "verify_id", "shape", "source"}


def test_truncated_page_without_badge_is_not_accused() -> None:
    """The crawler read only the first part of a huge page: no badge there says nothing about the footer."""
    body = (FIX / "missing_plain.html").read_bytes()
    page = Page(url=SITE, body=body[: len(body) // 2], truncated=True)
    v = analyse_badge(page, PARTY).verdict
    assert (str(v.status), v.reason) == ("unknown", "badge.page_truncated")
    whole = analyse_badge(Page(url=SITE, body=body), PARTY).verdict
    assert whole.reason == "badge.missing"


def test_rendered_dom_without_badge_and_async_static_embed() -> None:
    """The browser showed no badge because the embed is written from an async script: never renders."""
    page = Page(url=SITE, body=(FIX / "async_external_wrapper.html").read_bytes())
    page.scripts[SITE + "js/conac-badge.js"] = (RES / "async_wrapper.js").read_text(encoding="utf-8")
    page.rendered = Document(SITE, (FIX / "missing_plain.html").read_text(encoding="utf-8"))
    analysis = analyse_badge(page, PARTY)
    assert (str(analysis.verdict.status), analysis.verdict.reason) == ("fail", "badge.never_renders")
    assert analysis.needs == []


def test_rendered_dom_without_badge_is_missing() -> None:
    """A script-built footer the browser ran, and still no badge: missing (the render is the evidence)."""
    page = Page(url=SITE, body=(FIX / "inline_dynamic_loader.html").read_bytes())
    page.rendered = Document(SITE, (FIX / "missing_plain.html").read_text(encoding="utf-8"))
    v = analyse_badge(page, PARTY).verdict
    assert (str(v.status), v.reason) == ("fail", "badge.missing")
    assert v.evidence and v.evidence[0].source == "rendered"
