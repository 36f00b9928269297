"""Spec files describe custom sites; generated farms serve any size from names with set latency."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from simnet import scenarios as sc
from simnet.ident import badge_script_path
from simnet.probe import classify_dns, fetch
from simnet.runtime import SimNet, run
from simnet.spec import SpecError, load_spec

SPEC = """
sites:
  - host: 示例单位.政务
    aliases: [www.shili.gov.cn]
    address: 127.64.0.9
    pages:
      /: {html: "<html><head><title>示例</title></head><body>示例单位 冀ICP备12345678号</body></html>",
          encoding: gbk}
      /about.html: {file: about.html}
      /old: {redirect: /about.html, status: 301}
    truth: {checks: {icp: {status: pass, reason: icp.ok, number: 冀ICP备12345678号}}}
  - host: slow.shili.gov.cn
    pages: {/: {html: "<p>slow</p>"}}
    behaviour: {kind: slow, delay_ms: 600}
  - host: expired.shili.gov.cn
    tls: expired
    pages: {/: {html: "<p>old cert</p>"}}
dns:
  - {name: broken.shili.gov.cn, behaviour: servfail}
  - {name: alias.shili.gov.cn, cname: www.shili.gov.cn}
registry:
  - {编办代码: "130600", 机构名称: 示例单位, 机构类别: 党政机关, 中文域名: 示例单位.政务}
"""


def test_spec_sites_are_served(tmp_path: Path) -> None:
    (tmp_path / "about.html").write_text("<h1>关于我们</h1>", encoding="utf-8")
    spec = tmp_path / "sites.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    with run(spec=spec) as net:
        home = fetch(net, "http://示例单位.政务/")
        assert home.reason == "http.ok" and "示例单位".encode("gbk") in home.body
        assert fetch(net, "http://www.shili.gov.cn/old").text() == "<h1>关于我们</h1>"
        start = time.monotonic()
        assert fetch(net, "http://slow.shili.gov.cn/").reason == "http.ok"
        assert time.monotonic() - start >= 0.55
        assert fetch(net, "https://expired.shili.gov.cn/").reason == "http.cert_expired"
        assert classify_dns(net, "broken.shili.gov.cn")[0] == "dns.servfail"
        assert classify_dns(net, "alias.shili.gov.cn") == ("dns.ok", ["127.64.0.9"])
        assert net.ground_truth["sites"][0]["checks"]["icp"]["number"] == "冀ICP备12345678号"
        rows = Path(net.registry_path).read_text(encoding="utf-8-sig").splitlines()
        assert len(rows) == 2 and "示例单位.政务" in rows[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sites:\n  - host: a.gov.cn\n    address: 10.0.0.1\n", "sites[1].address"),
        ("sites:\n  - host: 'bad_名.政务'\n", "sites[1].host"),
        ("sites:\n  - host: a.gov.cn\n    pages: {/: {nothing: 1}}\n", "sites[1].pages[/]"),
        ("sites:\n  - host: a.gov.cn\n    behaviour: {kind: explode}\n", "sites[1].behaviour"),
        ("dns:\n  - {name: a.gov.cn, behaviour: maybe}\n", "dns[1].behaviour"),
        ("registry:\n  - {颜色: 红}\n", "registry[1]"),
        ("colour: red\n", "unknown top-level"),
    ],
)
def test_spec_errors_name_the_entry(tmp_path: Path, text: str, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_spec(spec, tmp_path / "out")


def test_spec_can_extend_a_sample(tmp_path: Path) -> None:
    spec = tmp_path / "extra.json"
    spec.write_text(
        json.dumps(
            {
                "base": "catalogue",
                "sites": [{"host": "extra.shili.gov.cn", "pages": {"/": {"html": "<p>extra</p>"}}}],
            }
        ),
        encoding="utf-8",
    )
    sample = load_spec(spec, tmp_path / "out")
    assert sample.universe.host("extra.shili.gov.cn") is not None
    assert sample.universe.host("dcs.conac.cn") is not None
    assert sample.sites > 100


def test_generated_farm_latency_and_lazy_sites(simnet_factory: object) -> None:
    from collections.abc import Callable

    assert callable(simnet_factory)
    factory: Callable[..., SimNet] = simnet_factory
    net = factory("generated", sites=300, delay_ms=150, failure_rate=0.3)
    truth = net.ground_truth
    assert truth["meta"]["counts"]["sites"] == 300
    sites = truth["sites"]
    ok = [s for s in sites if s["scenario"].startswith("compliant.")]
    assert 150 < len(ok) < 260
    site = ok[7]
    start = time.monotonic()
    got = fetch(net, site["url"])
    assert got.reason == "http.ok" and time.monotonic() - start >= 0.14
    assert site["unit"]["name"] in got.text()
    badge = site["checks"]["badge"]
    script = fetch(net, "http://dcs.conac.cn" + badge_script_path(badge["code"]))
    assert badge["verify_id"] in script.text()
    page = fetch(net, f"http://bszs.conac.cn/sitename?method=show&id={badge['verify_id']}")
    assert site["unit"]["name"] in page.text()
    # Every Chinese domain of the farm answers as the truth says (computed from the name alone).
    for d in truth["domains"][:120]:
        if d["checks"]["dns"]:
            assert classify_dns(net, d["ascii"])[0] == d["checks"]["dns"]["reason"], d
    failing = [
        s
        for s in sites
        if s["checks"]["http"]["status"] == "unknown"
        and s["checks"]["http"]["reason"] in ("http.server_error", "http.blocked", "http.reset")
        and sc.BY_NAME[s["scenario"]].http not in sc.HTTP_BY_CONTENT  # the probe reads no pages
    ]
    assert failing
    for s in failing[:5]:
        assert fetch(net, s["url"]).reason == s["checks"]["http"]["reason"]


def test_generated_mix_of_usage_failures(simnet_factory: Any) -> None:
    """With --mix, chosen scenarios dominate; red pages and parking work for computed names too."""
    mix = {"usage.red_page": 1.0, "usage.parked": 1.0, "dns.servfail": 1.0}
    net = simnet_factory("generated", sites=30, failure_rate=1.0, mix=mix)
    scenarios = {s["scenario"] for s in net.ground_truth["sites"]}
    assert scenarios == set(mix)
    for d in net.ground_truth["domains"]:
        if d["kind"] == "english":
            continue
        usage = d["checks"]["usage"]["reason"]
        assert classify_dns(net, d["ascii"])[0] == d["checks"]["dns"]["reason"]
        if usage == "usage.red_page":
            got = fetch(net, f"http://{d['ascii']}/")
            assert got.url.startswith("http://hy.conac.cn/") and d["unit"] in got.text()
        elif usage == "usage.parked":
            assert "停放" in fetch(net, f"http://{d['ascii']}/").text()
