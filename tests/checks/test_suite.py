"""The check suite: every page check over one shared capture, needs united, checks switched by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.analysis import Analysis
from checks.expected import Expected, UnitKind
from checks.page import Document, Need, NeedKind, Page
from checks.rules import Rules
from checks.suite import CHECKS, run_checks
from checks.verdict import Verdict

FIX = Path(__file__).parent / "fixtures" / "badge"
RES = FIX / "res"
SITE = "http://www.bdbb.gov.cn/"
RED_CODE = "CA051060000123456780001"
RED_JS = "http://dcs.conac.cn/js/05/106/0000/12345678/" + RED_CODE + ".js"
PARTY = Expected(
    UnitKind.PARTY_GOV,
    unit_name="保定市机构编制委员会办公室",
    site_url=SITE,
    badge_code=RED_CODE,
    division_code="130600",
    icp="冀ICP备05007325号-1",
    police_record="冀公网安备13060202000101号",
    site_code="1306000001",
    is_government_site=True,
)


def _page(name: str) -> Page:
    return Page(url=SITE, body=(FIX / f"{name}.html").read_bytes(), headers={"Content-Type": "text/html"})


def test_all_registered_checks_run_on_one_page() -> None:
    result = run_checks(_page("embed_http"), PARTY)
    assert not result.errors
    assert not result.skipped
    for name in CHECKS:
        v = result.verdicts[name]
        assert isinstance(v, Verdict) and v.check == name
        assert Verdict.from_dict(v.to_dict()) == v
    assert result.verdicts["badge"].reason == "badge.script_unavailable"  # waiting for the badge script
    assert result.needs[0] == Need(NeedKind.BADGE_SCRIPT, RED_JS)
    # The number checks may ask for the page's same-site scripts (footers written by JavaScript).
    assert all(n.kind is NeedKind.SCRIPT and n.url.startswith(SITE) for n in result.needs[1:])
    assert len(set(result.needs)) == len(result.needs)
    assert not result.final


def test_crawler_loop_converges_and_numbers_are_read() -> None:
    page = _page("embed_http")
    for _ in range(5):
        result = run_checks(page, PARTY)
        if result.final:
            break
        for need in result.needs:
            if need.url == RED_JS:
                page.badge_scripts[need.url] = (RES / "red_badge.js").read_text(encoding="utf-8")
            else:  # the site serves no other script
                page.mark_failed(need, "HTTP 404")
    assert result.final
    out = result.inspect_json()
    assert (out["badge"]["status"], out["badge"]["kind"], out["badge"]["code"]) == (
        "pass",
        "党政机关",
        RED_CODE,
    )
    assert {"status", "reason", "kind", "code", "verify_id", "evidence"} <= set(out["badge"])
    if "icp" in out:
        assert {"status", "reason", "number", "linked"} <= set(out["icp"])
        assert out["icp"]["number"] == "冀ICP备05007325号-1"
    if "police" in out:
        assert {"status", "reason", "number"} <= set(out["police"])
    if "site_code" in out:
        assert out["site_code"]["value"] == "1306000001"


def test_only_and_disabled() -> None:
    page = _page("missing_plain")
    only = run_checks(page, PARTY, only=["badge"])
    assert list(only.verdicts) == ["badge"] and only.verdicts["badge"].reason == "badge.missing"
    off = run_checks(page, PARTY, Rules(disabled_checks=("badge",)))
    assert "badge" not in off.verdicts and off.skipped["badge"]
    with pytest.raises(KeyError, match="no_such_check"):
        run_checks(page, PARTY, only=["no_such_check"])


def _broken(page: Page, expected: Expected, rules: Rules) -> Analysis:
    raise ValueError("boom")


def test_a_crash_is_contained() -> None:
    """Checks are registered as callables (a misspelt one fails at import); one that raises is
    reported in ``errors`` and the others still give their verdicts."""
    registry = {"badge": CHECKS["badge"], "broken": _broken}
    result = run_checks(_page("static_copy"), PARTY, checks=registry)
    assert result.skipped == {}
    assert result.errors == {"broken": "ValueError: boom"}
    assert result.verdicts["badge"].data["shape"] == "static_copy"


def test_needs_are_united_without_duplicates() -> None:
    page = _page("bundle_needs_render")
    page.scripts[SITE + "static/js/app.8c1f0e.js"] = (RES / "app_bundle.js").read_text(encoding="utf-8")
    page.scripts[SITE + "static/js/chunk-vendors.1a2b3c.js"] = "/* vendors */"
    result = run_checks(page, PARTY)
    assert result.needs.count(Need(NeedKind.RENDER, SITE)) == 1
    page.rendered = Document(SITE, (FIX / "bundle_rendered.rendered.html").read_text(encoding="utf-8"))
    assert run_checks(page, PARTY, only=["badge"]).verdicts["badge"].data["source"] == "rendered"
