"""When nobody said what the unit is (``badgewatch inspect`` without ``--kind`` or a registry entry):
the badge's kind is reported, not judged; the 标识码 requirement is not judged either."""

from __future__ import annotations

from pathlib import Path

from checks.badge import check_badge
from checks.expected import Expected, UnitKind
from checks.page import Page
from checks.rules import DEFAULT_RULES
from checks.sitecode import check_site_code, site_code_needs

RES = Path(__file__).parent / "fixtures" / "badge" / "res"
SITE = "http://www.bdyzx.org.cn/"
VERIFY = "http://bszs.conac.cn/sitename?method=show&id=5C1E7A3B9D2F4E6081A2B3C4D5E6F708"
UNSAID = Expected(unit_kind=None, site_url=SITE, is_government_site=None)


def _page(footer: str) -> Page:
    body = f"<html><head><meta charset='utf-8'></head><body><div id='footer'>{footer}</div></body></html>"
    return Page(url=SITE, body=body.encode("utf-8"), headers={"Content-Type": "text/html"})


def test_blue_badge_is_reported_not_judged() -> None:
    page = _page(f'<a href="{VERIFY}"><img src="http://dcs.conac.cn/image/blue.png"></a>')
    v = check_badge(page, UNSAID, DEFAULT_RULES)
    assert (v.status, v.reason, v.data["kind"], v.data["kind_from"]) == (
        "pass",
        "badge.displayed",
        "事业单位",
        "image",
    )
    assert "蓝色" in v.detail
    # The same page with a kind to judge against.
    party = check_badge(page, Expected(UnitKind.PARTY_GOV, site_url=SITE), DEFAULT_RULES)
    assert party.reason == "badge.wrong_kind"


def test_local_copy_decides_the_kind_by_its_bytes_even_unjudged() -> None:
    page = _page(f'<a href="{VERIFY}"><img src="/images/bs.png" alt="党政机关"></a>')
    page.images[SITE + "images/bs.png"] = (RES / "blue.png").read_bytes()  # bytes win over the alt
    v = check_badge(page, UNSAID, DEFAULT_RULES)
    assert (v.reason, v.data["kind"]) == ("badge.displayed", "事业单位")


def test_unreadable_kind_is_still_a_displayed_badge_and_an_error_image_still_fails() -> None:
    text_only = _page(f'<a href="{VERIFY}">网站标识</a>')
    text_only.exhausted = True  # the verification page cannot be fetched
    v = check_badge(text_only, UNSAID, DEFAULT_RULES)
    assert (v.status, v.reason, v.data["kind"]) == ("pass", "badge.displayed", None)
    assert "类型无法读取" in v.detail
    broken = _page(f'<a href="{VERIFY}"><img src="http://dcs.conac.cn/image/red_error.png"></a>')
    assert check_badge(broken, UNSAID, DEFAULT_RULES).reason == "badge.error_image"


def test_missing_badge_is_still_missing() -> None:
    v = check_badge(_page("<p>版权所有</p>"), UNSAID, DEFAULT_RULES)
    assert (v.status, v.reason) == ("fail", "badge.missing")


def test_site_code_requirement_not_judged_without_registry() -> None:
    page = _page("<p>网站标识码：1306000025</p>")
    v = check_site_code(page, UNSAID, DEFAULT_RULES)
    assert (v.status, v.reason, v.data["value"]) == ("unknown", "site_code.not_judged", "1306000025")
    # Not known as a government site is not "not one": the code is still looked for in scripts.
    scripted = Page(
        url=SITE,
        body=b"<html><body><script src='/js/foot.js'></script></body></html>",
        headers={"Content-Type": "text/html"},
    )
    assert site_code_needs(scripted, UNSAID, DEFAULT_RULES)
    not_gov = Expected(UnitKind.INSTITUTION, site_url=SITE, is_government_site=False)
    assert check_site_code(page, not_gov, DEFAULT_RULES).reason == "site_code.not_required"
    assert not site_code_needs(scripted, not_gov, DEFAULT_RULES)
    # A registered 标识码 decides the requirement whatever the flag says.
    registered = Expected(None, site_url=SITE, is_government_site=None, site_code="1306000025")
    assert check_site_code(page, registered, DEFAULT_RULES).reason == "site_code.ok"
