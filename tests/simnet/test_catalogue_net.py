"""Every catalogue scenario over real sockets: DNS answers and pages match the ground truth."""

from __future__ import annotations

import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from simnet import scenarios as sc
from simnet.probe import classify_dns, fetch
from simnet.runtime import SimNet


def _by_content(site: dict[str, Any]) -> bool:
    """The site's outcome is decided on its page's content (the crawler's tests compare those)."""
    scenario = sc.BY_NAME.get(site["scenario"])
    return scenario is not None and scenario.http in sc.HTTP_BY_CONTENT


def _domains(net: SimNet) -> list[dict[str, Any]]:
    return [d for d in net.ground_truth["domains"] if d["checks"].get("dns")]


def test_dns_outcome_of_every_domain(simnet: SimNet) -> None:
    domains = _domains(simnet)
    assert len(domains) > 100
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda d: classify_dns(simnet, d["ascii"]), domains))
    wrong = []
    for d, (reason, addrs) in zip(domains, got, strict=True):
        want = d["checks"]["dns"]
        if reason != want["reason"] or (reason == "dns.ok" and addrs != sorted(want["addresses"])):
            wrong.append((d["domain"], want, reason, addrs))
    assert not wrong, wrong


def test_every_dns_shape_is_exercised(simnet: SimNet) -> None:
    reasons = {d["checks"]["dns"]["reason"] for d in _domains(simnet)}
    assert reasons >= {
        "dns.ok",
        "dns.nxdomain",
        "dns.nodata",
        "dns.servfail",
        "dns.refused",
        "dns.timeout",
        "dns.cname_loop",
    }


def _sites(net: SimNet) -> list[dict[str, Any]]:
    return list(net.ground_truth["sites"])


@pytest.fixture(scope="module")
def fetched(simnet: SimNet) -> dict[str, Any]:
    sites = _sites(simnet)
    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda s: fetch(simnet, s["url"]), sites))
    return {s["id"]: r for s, r in zip(sites, results, strict=True)}


def test_http_outcome_of_every_site(simnet: SimNet, fetched: dict[str, Any]) -> None:
    wrong = []
    for site in _sites(simnet):
        want = site["checks"]["http"]
        got = fetched[site["id"]]
        if _by_content(site):
            # A page is served (challenge, notice, stub …): the protocol alone cannot tell more.
            if got.status is None:
                wrong.append((site["scenario"], "a response", got.reason))
            continue
        if got.reason != want["reason"]:
            wrong.append((site["scenario"], want["reason"], got.reason))
        elif want["final_url"] and got.url.encode("idna") != want["final_url"].encode("idna"):
            wrong.append((site["scenario"], want["final_url"], got.url))
    assert not wrong, wrong


def test_pages_carry_the_expected_numbers(simnet: SimNet, fetched: dict[str, Any]) -> None:
    """ICP, 公安 and 标识码 values the truth says are shown appear in the visible text; absent ones do not."""
    checked = 0
    for site in _sites(simnet):
        got = fetched[site["id"]]
        if got.reason not in (
            "http.ok",
            "http.cert_expired",
            "http.cert_hostname",
            "http.cert_untrusted",
            "http.cert_incomplete_chain",
            "http.tls_legacy",
        ):
            continue
        if _by_content(site) or site["scenario"] == "http.location_raw_utf8":
            continue
        text = got.text()
        assert site["unit"]["name"] in text, site["scenario"]
        visible = re.sub(r"<!--.*?-->", "", text, flags=re.S)
        visible = re.sub(r"<[^>]+>", "", visible)
        icp = site["checks"]["icp"]
        if icp["number"] and site["scenario"] != "icp.alt_only":
            digits = re.search(r"ICP备(\d+)", icp["number"])
            assert digits and digits.group(1) in visible, (site["scenario"], icp)
        elif icp["number"]:
            assert icp["number"] in text  # only in alt/title
        else:
            assert "ICP备" not in visible, site["scenario"]
        police = site["checks"]["police"]
        if police["number"]:
            assert police["number"] in visible, site["scenario"]
        else:
            assert "公网安备" not in visible, site["scenario"]
        code = site["checks"]["site_code"]
        if code["reason"] != "site_code.not_required":
            if code["value"]:
                assert code["value"] in text, site["scenario"]
            else:
                assert "SiteIDCode" not in text and "网站标识码" not in text, site["scenario"]
        checked += 1
    assert checked > 80


def test_transient_failures_make_page_checks_unknown(simnet: SimNet) -> None:
    for site in _sites(simnet):
        http = site["checks"]["http"]
        if http["status"] == "unknown":
            for check in ("badge", "icp", "police"):
                got = site["checks"][check]
                assert (got["status"], got["reason"]) == ("unknown", http["reason"]), site["scenario"]


def test_blocked_site_serves_browsers_after_the_challenge(simnet: SimNet) -> None:
    site = next(s for s in _sites(simnet) if s["scenario"] == "http.blocked")
    crawler = fetch(simnet, site["url"])
    assert crawler.status == 403 and crawler.reason == "http.blocked"
    browser_ua = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
    first = fetch(simnet, site["url"], user_agent=browser_ua)
    assert first.status == 403  # the JavaScript challenge sets the cookie
    passed = fetch(simnet, site["url"], user_agent=browser_ua, cookie="__waf_pass=1")
    assert passed.status == 200 and site["unit"]["name"] in passed.text()


def test_usage_of_chinese_domains(simnet: SimNet) -> None:
    """Where a Chinese domain resolves, what it serves matches the expected usage."""
    red_hosts = set(simnet.red_page_hosts)
    sites_by_id = {s["id"]: s for s in _sites(simnet)}
    seen = set()
    for d in _domains(simnet):
        usage = d["checks"]["usage"]
        if d["kind"] == "english" or d["checks"]["dns"]["status"] != "pass":
            continue
        got = fetch(simnet, f"http://{d['ascii']}/")
        reason = usage["reason"]
        seen.add(reason)
        final_host = got.url.split("/")[2] if got.url else ""
        shape = d.get("usage_shape", "")
        if reason == "usage.own_site" and shape in ("forward_frameset", "forward_meta", "forward_js"):
            # A registrar's forwarding page: it names the unit's site as where the visitor goes.
            own = sites_by_id[d["site_id"]]
            assert got.reason == "http.ok" and any(h in got.text() for h in own["hosts"]), d["domain"]
        elif reason == "usage.own_site" and shape == "https_only":
            assert got.reason == "http.reset", (d["domain"], got.reason)  # nothing for it on port 80
            secure = fetch(simnet, f"https://{d['ascii']}/")
            assert secure.reason == "http.ok" and d["unit"] in secure.text()
        elif reason == "usage.own_site":
            own = sites_by_id[d["site_id"]]
            redirected_home = any(urllib.parse.urlsplit(u).hostname in own["hosts"] for u in got.chain[1:])
            same_site = got.reason == "http.ok" and own["site_name"] in got.text()
            assert redirected_home or same_site, (d["domain"], got.reason, got.chain)
        elif reason == "usage.red_page":
            assert final_host in red_hosts and d["unit"] in got.text()
        elif reason == "usage.parked":
            assert got.reason == "http.ok" and "停放" in got.text()
        elif reason == "usage.other_site":
            assert got.reason == "http.ok" and d["unit"] not in got.text()
        elif reason == "usage.not_used":
            assert got.reason == "http.refused"
        elif reason == "usage.unreachable":
            assert got.reason == "http.timeout"
    assert seen >= {
        "usage.own_site",
        "usage.red_page",
        "usage.parked",
        "usage.other_site",
        "usage.not_used",
        "usage.unreachable",
    }


@pytest.mark.slow
def test_baoding_serves_every_site(simnet_factory: Any) -> None:
    """`simnet up --sample baoding` serves all of its sites: every site's HTTP outcome matches the truth."""
    net = simnet_factory("baoding")
    sites = net.ground_truth["sites"]
    assert len(sites) > 3500
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda s: fetch(net, s["url"]), sites))
    wrong = [
        (s["id"], s["scenario"], s["checks"]["http"]["reason"], r.reason)
        for s, r in zip(sites, results, strict=True)
        if r.reason != s["checks"]["http"]["reason"] and not _by_content(s)
    ]
    assert not wrong, wrong[:20]
    ok = [
        (s, r)
        for s, r in zip(sites, results, strict=True)
        if r.reason == "http.ok" and not _by_content(s) and s["scenario"] != "http.location_raw_utf8"
    ]
    assert all(s["unit"]["name"] in r.text() for s, r in ok)
