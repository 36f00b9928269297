"""TLS as it is, against simnet's server shapes over loopback: the chain the server sent, chains
completed from AIA, TLS 1.0-only servers read with a legacy context, 国密 TLCP-only servers recognised.

The site procedure (:class:`crawler.flow.Flow`) runs here over the aiohttp fetcher of ``inspect``; the
scan's Scrapy fetcher meets the same shapes in ``test_scan_catalogue.py`` and ``test_tls_scan.py``."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from OpenSSL import SSL

from checks.expected import Expected, UnitKind
from checks.http import FetchError
from crawler import checking
from crawler.certs import CertJudge
from crawler.context import ScanContext, build_context
from crawler.errors import classify_exception
from crawler.flow import Flow, SubjectResult
from crawler.inspect import AiohttpFetcher
from crawler.jobs import SiteJob
from crawler.tls import TlsMemory, probe_tlcp
from storage.config import Config
from storage.evidence import EvidenceStore


def _site(net: Any, scenario: str) -> dict[str, Any]:
    return next(s for s in net.ground_truth["sites"] if s["scenario"] == scenario)


def _config(net: Any) -> Config:
    return Config.load(env={**net.env(), "BADGEWATCH_TIMEOUT_S": "5"})


async def _visit(net: Any, scenario: str, store: EvidenceStore) -> tuple[SubjectResult, ScanContext]:
    config = _config(net)
    site = _site(net, scenario)
    ctx = build_context(config)
    fetcher = AiohttpFetcher(ctx)
    try:
        flow = Flow(
            fetcher,
            ctx.resolver,
            store,
            checking.rules_from_config(config),
            CertJudge(config.ca_file),
            max_body=config.max_body_bytes,
            max_subresources=config.max_subresources,
            render_mode="never",
        )
        expected = Expected(unit_kind=UnitKind(site["unit"]["kind"]), site_url=site["url"])
        return await flow.site(SiteJob(0, site["url"], expected)), ctx
    finally:
        await fetcher.close()


@pytest.mark.parametrize(
    ("scenario", "version", "sent"),
    [
        ("compliant.https", "TLSv1.3", 1),  # leaf + intermediate: trusted as sent
        ("http.cert_chain_incomplete", "TLSv1.3", 0),  # leaf only: completed from AIA, warned
        ("http.tls_legacy", "TLSv1", 1),  # TLS 1.0 only: read with the legacy context, warned
        ("http.cert_expired", "TLSv1.3", 1),
        ("http.cert_wrong_host", "TLSv1.3", 1),
        ("http.cert_self_signed", "TLSv1.3", 0),
    ],
)
def test_readable_tls_shapes_match_ground_truth(
    simnet: Any, tmp_path: Path, scenario: str, version: str, sent: int
) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    result, _ctx = asyncio.run(_visit(simnet, scenario, store))
    truth = _site(simnet, scenario)["checks"]
    verdicts = {v.check: v for v in result.verdicts}
    assert (str(verdicts["http"].status), verdicts["http"].reason) == (
        truth["http"]["status"],
        truth["http"]["reason"],
    )
    # The page is read whatever the certificate or protocol: the badge is judged as on any site.
    assert verdicts["badge"].reason == truth["badge"]["reason"]
    meta = store.get_json(result.capture.headers_blob)
    assert meta["tls"]["version"] == version
    assert len(meta["tls"]["chain"]) == sent  # what the server sent after its leaf, as evidence
    assert meta["certificate"]["names"]


def test_tlcp_only_server_is_unknown_sm2(simnet: Any, tmp_path: Path) -> None:
    result, ctx = asyncio.run(_visit(simnet, "http.tls_sm2", EvidenceStore(tmp_path / "evidence")))
    verdicts = {v.check: v for v in result.verdicts}
    assert (str(verdicts["http"].status), verdicts["http"].reason) == ("unknown", "http.tls_sm2")
    assert "TLCP" in verdicts["http"].detail
    for check in ("badge", "icp", "police"):
        assert verdicts[check].reason == "http.tls_sm2"
    host = _site(simnet, "http.tls_sm2")["hosts"][0]
    assert not ctx.tls.is_legacy(host, 443)  # the legacy context did not help, so it is not kept


def test_legacy_context_is_kept_only_for_hosts_that_needed_it(simnet: Any, tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    legacy_host = _site(simnet, "http.tls_legacy")["hosts"][0]
    _result, ctx = asyncio.run(_visit(simnet, "http.tls_legacy", store))
    assert ctx.tls.is_legacy(legacy_host, 443)
    modern_host = _site(simnet, "compliant.https")["hosts"][0]
    _result, ctx = asyncio.run(_visit(simnet, "compliant.https", store))
    assert not ctx.tls.is_legacy(modern_host, 443)


def test_tlcp_probe_tells_tlcp_from_tls_and_plain_http(simnet: Any) -> None:
    ctx = build_context(_config(simnet))

    async def probe(scenario: str, port: int) -> str:
        host = _site(simnet, scenario)["hosts"][0]
        return await probe_tlcp(ctx, host, port)

    async def main() -> tuple[str, str, str, str]:
        return (
            await probe("http.tls_sm2", 443),
            await probe("compliant.https", 443),  # a TLS server (TLS 1.3)
            await probe("http.tls_legacy", 443),  # a TLS 1.0 server
            await probe("compliant.party", 80),  # plain HTTP
        )

    sm2, tls, legacy, plain = asyncio.run(main())
    assert sm2.startswith("TLCP ServerHello")
    assert (tls, legacy, plain) == ("", "", "")


def test_fallback_leaves_other_failures_alone(simnet: Any) -> None:
    """A failure that is no TLS failure (nothing listens) is raised as it is: no legacy mark."""
    ctx = build_context(_config(simnet))
    host = _site(simnet, "http.refused")["hosts"][0]

    async def main() -> BaseException:
        fetcher = AiohttpFetcher(ctx)
        try:
            await fetcher.get(f"https://{host}/", maxsize=1000)
        except Exception as exc:
            return exc
        finally:
            await fetcher.close()
        raise AssertionError("a refused connection fetched something")

    exc = asyncio.run(main())
    assert classify_exception(exc)[0] is FetchError.REFUSED
    assert not ctx.tls.is_legacy(host, 443)


def _handshake(net: Any, scenario: str, memory: TlsMemory) -> Any:
    """A real handshake with a host of ``scenario``, recorded by ``memory`` as the scan's policy does."""
    host = _site(net, scenario)["hosts"][0]
    address = asyncio.run(build_context(_config(net)).resolver.lookup(host)).addresses[0]
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    sock = socket.create_connection((address, net.https_port), timeout=5)
    sock.setblocking(True)
    conn = SSL.Connection(ctx, sock)
    conn.set_tlsext_host_name(host.encode())
    conn.set_connect_state()
    try:
        conn.do_handshake()
        memory.record(conn)
        return conn.get_peer_certificate()
    finally:
        conn.close()


def test_memory_finds_a_response_s_chain_by_its_leaf_and_shares_intermediates(simnet: Any) -> None:
    memory = TlsMemory(max_peers=2)
    first = _handshake(simnet, "compliant.https", memory)
    second = _handshake(simnet, "http.cert_expired", memory)
    a, b = memory.peer(first), memory.peer(second)
    assert a is not None and b is not None
    assert len(a.chain) == 1 and a.chain[0] is b.chain[0]  # one object for the shared intermediate
    assert a.version in ("TLSv1.2", "TLSv1.3")
    _handshake(simnet, "http.cert_wrong_host", memory)
    assert memory.peer(first) is None  # bounded: the oldest handshake is forgotten
    assert memory.peer(None) is None
