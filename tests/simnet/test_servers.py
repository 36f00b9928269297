"""Nameserver and web farm details: real packets, TC and TCP, zones, keep-alive, HEAD, streams, TLS."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

import dns.flags
import dns.rcode
import dns.rdatatype

from simnet.probe import fetch, query
from simnet.runtime import SimNet
from simnet.samples.catalogue import PLATFORM_ADDR as CATALOGUE_PLATFORM


def _domain(net: SimNet, scenario: str) -> dict[str, Any]:
    site = next(s for s in net.ground_truth["sites"] if s["scenario"] == scenario)
    return next(
        d for d in net.ground_truth["domains"] if d["site_id"] == site["id"] and d["kind"] != "english"
    )


def test_truncated_udp_answer_forces_tcp(simnet: SimNet) -> None:
    d = _domain(simnet, "dns.truncated")
    udp = query(simnet, d["ascii"])
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = query(simnet, d["ascii"], tcp=True)
    assert not tcp.flags & dns.flags.TC
    assert [rd.to_text() for rr in tcp.answer for rd in rr] == d["checks"]["dns"]["addresses"]


def test_slow_answer_arrives_late(simnet: SimNet) -> None:
    d = _domain(simnet, "dns.slow")
    start = time.monotonic()
    r = query(simnet, d["ascii"], timeout=5)
    assert time.monotonic() - start >= 1.4 and r.answer


def test_cname_chain_in_one_answer(simnet: SimNet) -> None:
    d = _domain(simnet, "dns.cname_chain")
    r = query(simnet, d["ascii"])
    kinds = [rr.rdtype for rr in r.answer]
    assert kinds == [dns.rdatatype.CNAME, dns.rdatatype.CNAME, dns.rdatatype.A]
    assert r.flags & dns.flags.AA


def test_aaaa_nodata_zones_and_refusal(simnet: SimNet) -> None:
    r = query(simnet, "ipv6.conac.cn", "AAAA")
    assert [rd.to_text() for rr in r.answer for rd in rr] == ["::1"]
    r = query(simnet, "dcs.conac.cn", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority  # NODATA with SOA
    r = query(simnet, "xn--zfr164b", "NS")
    assert len(r.answer[0]) == 5
    r = query(simnet, "gov.cn", "SOA")
    assert r.answer[0].rdtype == dns.rdatatype.SOA
    r = query(simnet, "www.example.org")
    assert r.rcode() == dns.rcode.REFUSED
    r = query(simnet, "does-not-exist.xn--55qw42g")
    assert r.rcode() == dns.rcode.NXDOMAIN


def _raw(net: SimNet, address: str, request: bytes) -> bytes:
    with socket.create_connection((address, net.http_port), timeout=3) as s:
        s.sendall(request)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_keep_alive_pipelining_head_and_misdirection(simnet: SimNet) -> None:
    site = simnet.ground_truth["sites"][0]
    host, addr = site["hosts"][0], site["address"]
    two = (
        f"GET / HTTP/1.1\r\nHost: {host}:80\r\n\r\n"
        f"HEAD / HTTP/1.1\r\nHost: {host.upper()}\r\nConnection: close\r\n\r\n"
    ).encode()
    out = _raw(simnet, addr, two)
    assert out.count(b"HTTP/1.1 200 OK") == 2
    first_len = int(out.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert len(out) < 2 * first_len + 1000  # HEAD carried no body
    # A host that lives on another address is not served here: a plain address answers 404, the
    # consolidation platform's address its portal (as real platforms do).
    for here in (addr, next(s["address"] for s in simnet.ground_truth["sites"] if s["address"] != addr)):
        other = next(
            s for s in simnet.ground_truth["sites"] if s["address"] not in (here, "127.60.0.250")
        )
        request = f"GET / HTTP/1.1\r\nHost: {other['hosts'][0]}\r\nConnection: close\r\n\r\n".encode()
        out = _raw(simnet, here, request)
        if here == CATALOGUE_PLATFORM:
            assert out.startswith(b"HTTP/1.1 200") and "集约化平台".encode() in out
        else:
            assert out.startswith(b"HTTP/1.1 404")


def test_endless_body_keeps_streaming(simnet: SimNet) -> None:
    site = next(s for s in simnet.ground_truth["sites"] if s["scenario"] == "http.endless")
    with socket.create_connection((site["address"], simnet.http_port), timeout=3) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {site['hosts'][0]}\r\n\r\n".encode())
        got = 0
        while got < 20 * 1024 * 1024:
            chunk = s.recv(1 << 20)
            assert chunk
            got += len(chunk)
    assert got >= 20 * 1024 * 1024


def test_gzip_bomb_is_small_on_the_wire(simnet: SimNet) -> None:
    site = next(s for s in simnet.ground_truth["sites"] if s["scenario"] == "http.gzip_bomb")
    out = _raw(
        simnet,
        site["address"],
        f"GET / HTTP/1.1\r\nHost: {site['hosts'][0]}\r\nConnection: close\r\n\r\n".encode(),
    )
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head and len(body) < 1024 * 1024
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert len(d.decompress(body, 64 * 1024 * 1024)) == 64 * 1024 * 1024  # and more behind it


def test_certificates(simnet: SimNet) -> None:
    for scenario, code in (
        ("http.cert_expired", 10),
        ("http.cert_self_signed", 18),
        ("http.cert_wrong_host", 62),
    ):
        site = next(s for s in simnet.ground_truth["sites"] if s["scenario"] == scenario)
        ctx = ssl.create_default_context(cafile=simnet.ca_file)
        with socket.create_connection((site["address"], simnet.https_port), timeout=3) as raw:
            try:
                ctx.wrap_socket(raw, server_hostname=site["hosts"][0])
            except ssl.SSLCertVerificationError as exc:
                assert exc.verify_code == code, (scenario, exc)
            else:
                raise AssertionError(f"{scenario}: certificate accepted")
    ok = fetch(simnet, "https://" + simnet.ground_truth["sites"][0]["hosts"][0] + "/")
    assert ok.reason == "http.ok"


def test_gbk_pages_decode(simnet: SimNet) -> None:
    for scenario in ("http.gbk_declared", "http.gbk_meta_only", "http.gb18030_undeclared"):
        site = next(s for s in simnet.ground_truth["sites"] if s["scenario"] == scenario)
        got = fetch(simnet, site["url"])
        assert site["unit"]["name"].encode("gb18030") in got.body
        assert site["unit"]["name"].encode("utf-8") not in got.body


def test_idle_keep_alive_connections_are_closed(simnet_factory: Any) -> None:
    """An idle keep-alive connection is closed by the farm after ``keepalive_s`` (as real servers do),
    so a crawler visiting many hosts once each cannot exhaust descriptors; a busy one is not."""
    net = simnet_factory("generated", sites=3, failure_rate=0.0, keepalive_s=0.5)
    site = net.ground_truth["sites"][0]
    host, addr = site["hosts"][0], site["address"]
    with socket.create_connection((addr, net.http_port), timeout=5) as s:
        s.settimeout(5)
        for _ in range(3):  # requests 0.3 s apart keep it open past 0.5 s in all
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = s.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 OK"), head[:100]
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            got = len(head.split(b"\r\n\r\n", 1)[1])
            while got < length:
                got += len(s.recv(65536))
            time.sleep(0.3)
        t0 = time.monotonic()
        assert s.recv(1) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - t0 < 2
    # A connection that never sends a request is closed too.
    with socket.create_connection((addr, net.http_port), timeout=5) as s:
        s.settimeout(5)
        assert s.recv(1) == b""
