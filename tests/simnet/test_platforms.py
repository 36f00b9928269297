"""Consolidation platforms: per-address CC limits (per client, over every site of the address), bans,
latency, the farm's counts, and the province sample's shape. Real sockets throughout; the second client
is another loopback source address."""

from __future__ import annotations

import csv
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from simnet.build import CONAC_ADDR
from simnet.conac import BSZS_HOST, DCS_HOST
from simnet.model import AddressPolicy
from simnet.probe import classify_dns, fetch
from simnet.runtime import SimNet
from simnet.samples.province import ProvinceConfig, platform_address
from simnet.spec import SpecError, load_spec

PLATFORM = "127.64.1.1"
LONE = "127.64.1.2"
HOSTS = ("a.pt.gov.cn", "b.pt.gov.cn", "c.pt.gov.cn")
SPEC = (
    "sites:\n"
    + "".join(
        f"  - host: {h}\n    address: {PLATFORM}\n    pages: {{/: {{html: '<p>{h}</p>'}}}}\n" for h in HOSTS
    )
    + f"  - host: lone.pt.gov.cn\n    address: {LONE}\n    pages: {{/: {{html: '<p>lone</p>'}}}}\n"
)


def _start(tmp: Path, policies: dict[str, Any], **options: Any) -> SimNet:
    tmp.mkdir(parents=True, exist_ok=True)
    spec = tmp / "sites.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    return SimNet(spec=spec, workdir=tmp / "net", options={"policies": policies, **options}).start()


@pytest.fixture
def make_net(tmp_path: Path) -> Iterator[Callable[..., SimNet]]:
    nets: list[SimNet] = []

    def make(policies: dict[str, Any], **options: Any) -> SimNet:
        net = _start(tmp_path / str(len(nets)), policies, **options)
        nets.append(net)
        return net

    yield make
    for net in nets:
        net.stop()


def _get(
    net: SimNet, address: str, host: str, source: str = "127.0.0.1", path: str = "/"
) -> tuple[int, dict[str, str], bytes, float]:
    """One GET on a fresh connection from ``source``: status, headers, body, seconds."""
    started = time.monotonic()
    with socket.create_connection((address, net.http_port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body, time.monotonic() - started


def _keepalive(net: SimNet, address: str, hosts: list[str]) -> list[int]:
    """Pipelined GETs on one keep-alive connection: the statuses in order."""
    with socket.create_connection((address, net.http_port), timeout=10) as s:
        s.sendall(b"".join(f"GET / HTTP/1.1\r\nHost: {h}\r\n\r\n".encode() for h in hosts))
        data = b""
        statuses: list[int] = []
        while len(statuses) < len(hosts):
            chunk = s.recv(65536)
            assert chunk, "connection closed early"
            data += chunk
            while True:
                end = data.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = data[:end].decode("latin-1")
                length = int(
                    next(x for x in head.split("\r\n") if x.lower().startswith("content-length:"))[15:]
                )
                if len(data) < end + 4 + length:
                    break
                statuses.append(int(head.split()[1]))
                data = data[end + 4 + length :]
    return statuses


RATE_WORDS = "访问过于频繁".encode()


def test_policy_fields_are_checked() -> None:
    assert AddressPolicy(cc_per_min=120).limit == 120
    assert AddressPolicy(cc_per_min=120, window_s=10).limit == 20
    assert AddressPolicy().limit == 0
    assert AddressPolicy.coerce({"latency_ms": [1, 5]}).latency_ms == (1, 5)
    for bad in ({"ban_style": "teapot"}, {"cc_per_min": -1}, {"latency_ms": [5, 1]}, {"window_s": 0}):
        with pytest.raises(ValueError):
            AddressPolicy.coerce(bad)
    with pytest.raises(ValueError, match="unknown policy field"):
        AddressPolicy.coerce({"cc": 5})


def test_limit_counts_every_host_of_the_address_per_client(make_net: Callable[..., SimNet]) -> None:
    net = make_net({PLATFORM: {"cc_per_min": 6, "ban_s": 1.5}})
    for i in range(6):  # the limit, spread over three virtual hosts
        status, _, body, _ = _get(net, PLATFORM, HOSTS[i % 3])
        assert status == 200 and HOSTS[i % 3].encode() in body
    status, headers, body, _ = _get(net, PLATFORM, HOSTS[0])  # over the limit: the ban starts
    assert status == 200 and RATE_WORDS in body and "retry-after" not in headers
    assert _get(net, PLATFORM, HOSTS[2])[0:3:2] == (200, body)  # every host of the address is banned
    # Another client address is counted on its own; another server address has no policy.
    status, _, body, _ = _get(net, PLATFORM, HOSTS[1], source="127.0.0.2")
    assert status == 200 and HOSTS[1].encode() in body
    assert b"lone" in _get(net, LONE, "lone.pt.gov.cn")[2]
    time.sleep(1.6)  # the ban ends; the window starts empty
    for i in range(6):
        assert HOSTS[i % 3].encode() in _get(net, PLATFORM, HOSTS[i % 3])[2]
    assert RATE_WORDS in _get(net, PLATFORM, HOSTS[0])[2]

    report = net.cc_report()
    row = report["addresses"][PLATFORM]
    assert row["requests"] == 6 + 2 + 1 + 6 + 1
    assert (row["banned"], row["bans"], row["served"]) == (3, 2, 13)
    assert row["clients"]["127.0.0.1"] == {
        "requests": 15,
        "served": 12,
        "banned": 3,
        "bans": 2,
        "peak_per_min": 15,
    }
    assert row["clients"]["127.0.0.2"]["peak_per_min"] == 1
    assert row["policy"]["cc_per_min"] == 6
    lone = report["addresses"][LONE]
    assert (lone["requests"], lone["policy"], lone["peak_per_min"]) == (1, None, None)
    assert report["busiest"] == {"address": PLATFORM, "requests": 16}
    assert report["totals"]["bans"] == 2 and report["peak_per_min"] == 15
    assert net.stats() == net.cc_report()


def test_ban_as_429_with_retry_after_and_as_a_block_page(make_net: Callable[..., SimNet]) -> None:
    net = make_net(
        {
            PLATFORM: {"cc_per_min": 2, "ban_s": 90, "ban_style": "429"},
            LONE: {"cc_per_min": 1, "ban_s": 90, "ban_style": "block200"},
        }
    )
    assert [_get(net, PLATFORM, h)[0] for h in HOSTS[:2]] == [200, 200]
    status, headers, body, _ = _get(net, PLATFORM, HOSTS[2])
    assert status == 429 and 85 <= int(headers["retry-after"]) <= 90 and RATE_WORDS in body
    assert _get(net, LONE, "lone.pt.gov.cn")[0] == 200
    status, _, body, _ = _get(net, LONE, "lone.pt.gov.cn")
    assert status == 200 and "已被网站管理员设置拦截".encode() in body
    # HEAD of a banned client: the ban's head only.
    with socket.create_connection((PLATFORM, net.http_port), timeout=5) as s:
        s.sendall(f"HEAD / HTTP/1.1\r\nHost: {HOSTS[0]}\r\nConnection: close\r\n\r\n".encode())
        assert s.recv(65536).startswith(b"HTTP/1.1 429 Too Many Requests\r\n")


def test_ban_pages_are_what_the_checker_classifies(make_net: Callable[..., SimNet]) -> None:
    content = pytest.importorskip("checks.content")
    page = pytest.importorskip("checks.page")
    expected = {"page200": "http.rate_limited", "429": "http.rate_limited", "block200": "http.blocked"}
    for style, reason in expected.items():
        net = make_net({PLATFORM: {"cc_per_min": 1, "ban_s": 60, "ban_style": style}})
        _get(net, PLATFORM, HOSTS[0])
        status, headers, body, _ = _get(net, PLATFORM, HOSTS[0])
        url = f"http://{HOSTS[0]}/"
        doc = page.Document.from_bytes(url, body, headers.get("content-type", ""))
        signal = content.assess(doc, status, headers, len(body))
        assert signal is not None and signal.reason == reason, (style, signal)


def test_many_concurrent_connections_share_one_count(make_net: Callable[..., SimNet]) -> None:
    net = make_net({PLATFORM: {"cc_per_min": 40, "ban_s": 60}})
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda i: _get(net, PLATFORM, HOSTS[i % 3]), range(100)))
    banned = sum(RATE_WORDS in body for _, _, body, _ in results)
    assert banned == 60
    # Pipelined requests on one keep-alive connection are counted one by one (and banned too).
    assert _keepalive(net, PLATFORM, list(HOSTS)) == [200, 200, 200]
    row = net.cc_report()["addresses"][PLATFORM]
    assert (row["requests"], row["served"], row["bans"]) == (103, 40, 1)


def test_latency_is_added_to_every_answer(make_net: Callable[..., SimNet]) -> None:
    net = make_net(
        {PLATFORM: {"latency_ms": 300, "cc_per_min": 3, "ban_s": 60}, LONE: {"latency_ms": [50, 120]}}
    )
    times = [_get(net, PLATFORM, HOSTS[i % 3])[3] for i in range(4)]  # three pages, one ban page
    assert all(t >= 0.29 for t in times), times
    lone = [_get(net, LONE, "lone.pt.gov.cn")[3] for _ in range(5)]
    assert all(0.045 <= t < 1.0 for t in lone), lone
    started = time.monotonic()
    assert _keepalive(net, PLATFORM, [HOSTS[0]] * 2) == [200, 200]  # banned, one after the other
    assert time.monotonic() - started >= 0.58
    row = net.cc_report()["addresses"][LONE]
    assert row["policy"]["latency_ms"] == [50, 120] and row["banned"] == 0


def test_track_measures_every_address_and_the_stats_file(make_net: Callable[..., SimNet]) -> None:
    net = make_net({}, cc_track=True, stats_interval_s=0.1)
    for _ in range(3):
        _get(net, LONE, "lone.pt.gov.cn")
    _get(net, PLATFORM, HOSTS[0])
    time.sleep(0.4)
    on_disk = json.loads(Path(net.stats_path).read_text(encoding="utf-8"))
    assert on_disk["addresses"][LONE]["peak_per_min"] == 3
    assert on_disk["busiest"] == {"address": LONE, "requests": 3}
    assert net.describe()["stats_file"] == net.stats_path
    net.stop()
    assert net.cc_report()["totals"]["requests"] == 4  # still readable after stop


# --- the province sample --------------------------------------------------------------------------------

SITES = 1500
OPTIONS: dict[str, Any] = {
    "sites": SITES,
    "platforms": 12,
    "latency_ms": [20, 60],
    "cc_per_min": 100_000,
    "conac_cc_per_min": 4,
    "conac_ban_s": 60,
    "seed": 7,
}


@pytest.fixture(scope="module")
def province(simnet_factory: Callable[..., SimNet]) -> SimNet:
    return simnet_factory("province", **OPTIONS)


def test_province_placement_is_a_function_of_the_config() -> None:
    cfg = ProvinceConfig(sites=3000, platforms=20, seed=5)
    again = ProvinceConfig(sites=3000, platforms=20, seed=5)
    assert [cfg.address_of(i) for i in range(3000)] == [again.address_of(i) for i in range(3000)]
    platforms, own = cfg.placement()
    on_platforms = sum(platforms.values())
    assert 0.67 <= on_platforms / 3000 <= 0.73 and len(platforms) == 20
    assert max(platforms.values()) > 4 * min(platforms.values())  # skewed: one big provincial platform
    assert set(own.values()) == {1}  # the others each on an address of their own
    flat = ProvinceConfig(sites=3000, platforms=20, seed=5, platform_skew=0)
    assert max(flat.placement()[0].values()) < 2 * min(flat.placement()[0].values())
    capped = ProvinceConfig(sites=3000, platforms=20, seed=5, own_addresses=100)
    assert len(capped.placement()[1]) == 100
    lat = {cfg.latency_of(a) for a in cfg.site_addresses()}
    assert min(lat) >= 100 and max(lat) <= 800 and len(lat) > 50
    for bad in ({"platform_share": 1.5}, {"ban_style": "x"}, {"latency_ms": [5, 1]}, {"platforms": 0}):
        with pytest.raises(ValueError):
            ProvinceConfig(sites=10, **bad)


def test_province_shape_and_ground_truth(province: SimNet) -> None:
    truth = province.ground_truth
    meta = truth["meta"]
    assert meta["sample"] == "province" and meta["counts"]["sites"] == SITES
    placement = meta["config"]["placement"]
    platform_addrs = set(placement["platform_sites"])
    assert platform_addrs == {platform_address(p) for p in range(12)}
    served_at = Counter(site["address"] for site in truth["sites"])
    on_platforms = sum(n for a, n in served_at.items() if a in platform_addrs)
    # Placed: 70 %; a few failure scenarios live at the address of their shape (refused, TLS 1.0 ...).
    assert sum(placement["platform_sites"].values()) / SITES >= 0.68
    assert on_platforms / SITES >= 0.65
    assert max(served_at[a] for a in platform_addrs) >= 200  # hundreds of sites behind one address
    # Every site address has its policy; the CONAC address its own.
    policies = province.policies
    assert platform_addrs <= set(policies) and set(province.addresses) >= set(policies)
    assert all(20 <= p.latency_ms <= 60 for a, p in policies.items() if a != CONAC_ADDR)  # type: ignore[operator]
    assert policies[CONAC_ADDR].cc_per_min == 4 and policies[CONAC_ADDR].latency_ms == 0
    # The registry has a row per site, one unit each, one site and one Chinese domain per unit.
    with open(province.registry_path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len({r["统一社会信用代码"] for r in rows}) == SITES == len(truth["units"])
    assert len(truth["domains"]) <= 2.2 * SITES
    assert all(r["中文域名"].count(";") == 0 for r in rows)


def test_province_sites_answer_through_dns_with_their_latency(province: SimNet) -> None:
    truth = province.ground_truth
    site = next(
        s
        for s in truth["sites"]
        if s["address"].startswith("127.66.")
        and s["checks"]["http"]["reason"] == "http.ok"
        and s["url"].startswith("http://")
    )
    host = site["hosts"][0]
    assert classify_dns(province, host) == ("dns.ok", [site["address"]])
    started = time.monotonic()
    got = fetch(province, site["url"])
    assert got.reason == "http.ok" and time.monotonic() - started >= 0.019
    assert site["checks"]["icp"]["number"] in got.text() or site["checks"]["icp"]["status"] != "pass"
    # An unknown name on a platform address gets the platform's portal.
    status, _, body, _ = _get(province, site["address"], "nobody.example.gov.cn")
    assert status == 200 and "集约化平台".encode() in body


def test_province_conac_hosts_have_their_own_limit(province: SimNet) -> None:
    source = "127.0.0.9"  # a client of its own: the other tests' requests do not count
    answers = [
        _get(province, CONAC_ADDR, host, source=source, path="/image/red.png")
        for host in (DCS_HOST, BSZS_HOST, DCS_HOST, BSZS_HOST, DCS_HOST)
    ]
    assert [RATE_WORDS in body for _, _, body, _ in answers] == [False] * 4 + [True]
    assert answers[0][1]["content-type"] == "image/png"
    client = province.cc_report()["addresses"][CONAC_ADDR]["clients"][source]
    assert (client["requests"], client["bans"]) == (5, 1)


def test_province_from_the_command_line_options(tmp_path: Path) -> None:
    net = SimNet("province:200", workdir=tmp_path, options={"latency_ms": 0, "cc_per_min": 0, "platforms": 3})
    net.prepare()
    assert net.sample is not None and net.sample.sites == 200
    assert {p.cc_per_min for p in net.policies.values()} == {0}
    assert Path(net.registry_path).name == "province-200-registry.csv"


def test_counting_is_safe_from_another_thread(make_net: Callable[..., SimNet]) -> None:
    net = make_net({PLATFORM: {"cc_per_min": 0}})
    stop = threading.Event()
    reports: list[dict[str, Any]] = []

    def read() -> None:
        while not stop.is_set():
            reports.append(net.cc_report())

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(lambda i: _get(net, PLATFORM, HOSTS[i % 3], source=f"127.0.1.{i % 20 + 1}"), range(200))
        )
    stop.set()
    reader.join()
    row = net.cc_report()["addresses"][PLATFORM]
    assert row["requests"] == 200 and len(row["clients"]) == 20 and reports


def test_spec_files_carry_policies(tmp_path: Path) -> None:
    spec = tmp_path / "sites.yaml"
    spec.write_text(
        SPEC + f"policies:\n  {PLATFORM}: {{cc_per_min: 1, ban_s: 60, ban_style: 429, latency_ms: [1, 2]}}\n",
        encoding="utf-8",
    )
    with SimNet(spec=spec, workdir=tmp_path / "net") as net:
        assert net.policies[PLATFORM] == AddressPolicy(1, 60.0, 60.0, "429", (1, 2))
        assert [_get(net, PLATFORM, HOSTS[0])[0] for _ in range(2)] == [200, 429]
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC + "policies:\n  10.0.0.1: {cc_per_min: 1}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="loopback"):
        load_spec(bad, tmp_path / "bad")
