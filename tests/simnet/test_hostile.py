"""The hostile sample: deterministic, every shape drawn, served from names, sent on the wire as built."""

from __future__ import annotations

import csv
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from simnet.model import Action
from simnet.runtime import SimNet
from simnet.samples.hostile import (
    AWKWARD,
    BAD_LOCATIONS,
    FAMILIES,
    GOOD_ODD_LOCATIONS,
    HostileConfig,
    HostileUniverse,
    build_hostile,
)

# As the fuzz test runs it (one simnet per session for the same arguments).
SITES = 2100


def test_sites_are_a_function_of_their_index() -> None:
    cfg = HostileConfig(sites=50)
    for i in (0, 7, 49):
        a, b = build_hostile(cfg, i), build_hostile(cfg, i)
        assert a.rows == b.rows and a.sites == b.sites and a.domains == b.domains
        assert [h.host for h in a.hosts] == [h.host for h in b.hosts]
    other = [build_hostile(HostileConfig(sites=50, seed=2), i).sites for i in range(10)]
    assert other != [build_hostile(cfg, i).sites for i in range(10)]


def test_every_shape_is_drawn_in_the_fuzz_sample() -> None:
    """The fuzz test's 2,100 sites exercise every mutator, bad Location and awkward registry row."""
    cfg = HostileConfig(sites=SITES)
    drawn: Counter[str] = Counter()
    for i in range(cfg.sites):
        b = build_hostile(cfg, i)
        for s in b.sites:
            drawn.update([*s["shape"], s["plan"], s["awkward"]])
        for d in b.domains:
            drawn.update(d["shape"])
    names = set().union(*(table for _family, table in FAMILIES))
    names |= set(BAD_LOCATIONS) | set(GOOD_ODD_LOCATIONS) | set(AWKWARD)
    assert names - set(drawn) == set()


def test_names_lead_back_to_their_site() -> None:
    cfg = HostileConfig(sites=100)
    u = HostileUniverse(cfg)
    b = build_hostile(cfg, 42)
    site = b.sites[0]
    assert u.host(site["host"]) is not None
    entry = u.dns(site["host"])
    assert entry is not None and entry.a == [site["address"]]
    cn = next(d for d in b.domains if d["kind"] != "english")
    assert u.dns(cn["ascii"]) is not None
    assert u.host("hang42.hostile.gov.cn") is not None
    assert u.dns("dead42.hostile.gov.cn") is not None
    assert u.dns("nx42.hostile-nx.gov.cn") is None  # redirects there end in NXDOMAIN
    assert u.host("www.h100.gov.cn") is None and u.host("www.h100.cn") is None
    # The CONAC pages of the site's (compliant) badge are served too.
    code = b.rows[0]["网站标识代码"]
    if code:
        assert u.host("dcs.conac.cn") is not None
        found = [p for h in b.hosts if h.host == "dcs.conac.cn" for p in h.routes]
        assert found and u.host("dcs.conac.cn").routes.get(found[0]) is not None  # type: ignore[union-attr]


def test_the_registry_rows_are_the_import_format(simnet_factory: Callable[..., Any]) -> None:
    net: SimNet = simnet_factory("hostile", sites=SITES)
    with open(net.registry_path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == SITES
    assert {r["网站地址"] for r in rows if r["网站地址"].startswith("http://127.65.")}  # IP hosts
    assert any("中文" in r["网站地址"] for r in rows)
    assert net.ground_truth["meta"]["counts"]["units"] == SITES


def _exchange(net: SimNet, host: str, address: str, timeout: float = 5.0) -> tuple[bytes, float, bool]:
    """GET / from ``host``: (bytes received, seconds until the last byte, whether the server closed)."""
    with socket.create_connection((address, net.http_port), timeout=timeout) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        start = time.monotonic()
        got, last, closed = b"", start, False
        s.settimeout(1.0)
        while time.monotonic() - start < timeout:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                closed = True
                break
            got += chunk
            last = time.monotonic()
    return got, last - start, closed


def test_raw_dripped_and_stalled_answers_on_the_wire(simnet_factory: Callable[..., Any]) -> None:
    net: SimNet = simnet_factory("hostile", sites=SITES)
    universe = net.universe
    wanted = {Action.RAW: None, Action.DRIP: None, Action.STALL: None}
    for s in net.ground_truth["sites"]:
        if s["plan"] != "direct" or s["awkward"]:
            continue
        site = universe.host(s["host"])
        assert site is not None
        route = site.routes.get("/")
        assert route is not None
        if route.action in wanted and wanted[route.action] is None and route.delay_ms < 200:
            wanted[route.action] = (s, route)
        if all(wanted.values()):
            break
    for action, found in wanted.items():
        assert found is not None, action
        s, route = found
        got, took, closed = _exchange(net, s["host"], s["address"], timeout=3.0)
        if action is Action.STALL:
            assert got == route.body and not closed  # part of an answer, then nothing: the client waits
        else:
            assert got == route.body and closed
        if action is Action.DRIP and len(route.body) > 2 * route.stream_bytes:
            assert took >= route.delay_ms / 1000  # in pieces, not at once
