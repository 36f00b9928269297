"""`badgewatch inspect`: one page, live from simnet or from a file, every verdict."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import badgewatch


def _truth_site(net: Any, scenario: str) -> dict[str, Any]:
    return next(s for s in net.ground_truth["sites"] if s["scenario"] == scenario)


def test_inspect_url_matches_ground_truth(simnet: Any) -> None:
    env = dict(simnet.env(), BADGEWATCH_TIMEOUT_S="5")
    for scenario in ("compliant.party", "badge.wrong_kind", "icp.mismatch"):
        site = _truth_site(simnet, scenario)
        kind = site["unit"]["kind"]
        result = CliRunner().invoke(
            badgewatch.cli, ["inspect", site["url"], "--kind", kind, "--json"], env=env
        )
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert out["badge"]["status"] == site["checks"]["badge"]["status"], (scenario, out["badge"])
        assert out["badge"]["reason"] == site["checks"]["badge"]["reason"], (scenario, out["badge"])
        assert out["http"]["reason"] == "http.ok"
        if scenario == "compliant.party":
            assert out["badge"]["kind"] == "党政机关"
            assert out["icp"]["number"] == site["checks"]["icp"]["number"]


def test_inspect_file_reads_offline(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text(
        "<html><head><meta charset='utf-8'></head><body><div id='footer'>"
        "<a href='https://bszs.conac.cn/sitename?method=show&id=0123456789ABCDEF0123456789ABCDEF'>"
        "<img src='dzjg.png' alt='党政机关'></a> 冀ICP备12345678号</div></body></html>",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        badgewatch.cli, ["inspect", str(page), "--json"], env={"BADGEWATCH_NAMESERVERS": "127.0.0.1:9"}
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) >= {"badge", "icp", "police", "site_code"}
    assert out["police"]["status"] == "fail"  # no 公安 number on this page
    assert out["badge"]["status"] in ("pass", "unknown")  # offline: the verification page cannot be fetched
    assert out["badge"]["reason"] != "badge.missing"


@pytest.mark.browser
def test_inspect_url_render_settles_what_only_a_browser_can(simnet: Any) -> None:
    """`inspect URL --render`: Chromium renders the page, every request served through inspect's own
    fetcher (simnet's resolver and ports), and the badge a script builds at run time is judged."""
    if shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists():
        message = "Debian's chromium is not installed (scripts/system-deps.sh installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + "; CI must run the browser tests", pytrace=False)
        pytest.skip(message)
    env = dict(simnet.env(), BADGEWATCH_TIMEOUT_S="5")
    # A single-page app: its bundle builds the whole page, footer and badge, at run time.
    site = _truth_site(simnet, "http.spa_shell")
    args = ["inspect", site["url"], "--kind", site["unit"]["kind"], "--json", "--render"]
    result = CliRunner().invoke(badgewatch.cli, args, env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    truth = site["checks"]["badge"]["rendered"]
    assert (out["badge"]["status"], out["badge"]["reason"]) == (truth["status"], truth["reason"])
    # The rendered DOM is the evidence of record: the browser ran the page's scripts.
    assert out["badge"]["kind"] == truth["kind"] and out["badge"]["source"] == "rendered"
    assert out["badge"]["verify_id"] == truth["verify_id"]
