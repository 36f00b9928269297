"""CertJudge on real chains: the chain as the server sent it, completed from a bundle or from AIA
(fetched over loopback through the scan's fetcher: resolver, address guard, port map), or not at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from checks.http import CertProblem
from crawler.certs import CertJudge, aia_urls, parse_certificates
from crawler.context import build_context
from crawler.inspect import AiohttpFetcher
from storage.config import Config
from tests.crawler import pki
from tests.crawler.netkit import DnsTable, HitLog, dns_server, static_http

HOST = "www.example.gov.cn"
AIA_HOST = "ca.pki-test.cn"
AIA_URL = f"http://{AIA_HOST}/intermediate.crt"


def _judge(tmp_path: Path, root: pki.Issued, known: tuple[pki.Issued, ...] = ()) -> CertJudge:
    roots = pki.write_pem(tmp_path / "root.pem", root)
    bundle = pki.write_pem(tmp_path / "known.pem", *known) if known else ""
    return CertJudge(roots, bundle)


def test_full_chain_as_sent_is_trusted(tmp_path: Path) -> None:
    root = pki.root()
    inter = pki.intermediate(root)
    leaf = pki.leaf(inter, HOST)
    judge = _judge(tmp_path, root)
    assert judge.problems(leaf.cert, HOST, (inter.cert,), "TLSv1.3") == ()
    # The leaf alone (what judging the leaf against the roots did) is not trusted: the bug this fixes.
    assert judge.problems(leaf.cert, HOST, (), "TLSv1.3") == (CertProblem.UNTRUSTED,)


def test_two_intermediates_sent_in_any_order(tmp_path: Path) -> None:
    root = pki.root()
    upper = pki.intermediate(root, "upper CA")
    lower = pki.intermediate(upper, "lower CA")
    leaf = pki.leaf(lower, HOST)
    judge = _judge(tmp_path, root)
    assert judge.problems(leaf.cert, HOST, (lower.cert, upper.cert)) == ()
    assert judge.problems(leaf.cert, HOST, (upper.cert, lower.cert)) == ()


def test_missing_intermediate_completed_from_the_bundle(tmp_path: Path) -> None:
    root = pki.root()
    inter = pki.intermediate(root)
    leaf = pki.leaf(inter, HOST)  # no AIA: only the bundle can complete it
    judge = _judge(tmp_path, root, known=(inter,))
    assert judge.problems(leaf.cert, HOST, ()) == (CertProblem.INCOMPLETE_CHAIN,)
    # Sent complete, the same leaf is fine: the bundle only fills gaps.
    assert judge.problems(leaf.cert, HOST, (inter.cert,)) == ()


def test_bundle_certificate_of_another_key_does_not_complete(tmp_path: Path) -> None:
    root = pki.root()
    inter = pki.intermediate(root)
    impostor = pki.intermediate(pki.root("other root"), "test intermediate CA")  # same name, other key
    leaf = pki.leaf(inter, HOST)
    judge = _judge(tmp_path, root, known=(impostor,))
    assert judge.problems(leaf.cert, HOST, ()) == (CertProblem.UNTRUSTED,)


def test_not_completable_is_untrusted(tmp_path: Path) -> None:
    root = pki.root()
    leaf = pki.leaf(pki.intermediate(root), HOST, aia="http://ca.nowhere.invalid/x.crt")
    judge = _judge(tmp_path, root)
    # The AIA certificate was never fetched (no fetch_issuers call): nothing completes the path.
    assert judge.problems(leaf.cert, HOST, ()) == (CertProblem.UNTRUSTED,)


def test_untrusted_root_sent_by_the_server_stays_untrusted(tmp_path: Path) -> None:
    root = pki.root()
    other = pki.root("private root")
    inter = pki.intermediate(other)
    leaf = pki.leaf(inter, HOST)
    judge = _judge(tmp_path, root)
    assert judge.problems(leaf.cert, HOST, (inter.cert, other.cert)) == (CertProblem.UNTRUSTED,)


def test_expired_intermediate_is_an_expired_chain(tmp_path: Path) -> None:
    root = pki.root()
    inter = pki.intermediate(root, expired=True)
    leaf = pki.leaf(inter, HOST)
    judge = _judge(tmp_path, root)
    assert judge.problems(leaf.cert, HOST, (inter.cert,)) == (CertProblem.EXPIRED,)


def test_expired_leaf_wrong_host_and_legacy_protocol(tmp_path: Path) -> None:
    root = pki.root()
    inter = pki.intermediate(root)
    judge = _judge(tmp_path, root)
    expired = pki.leaf(inter, HOST, expired=True)
    assert judge.problems(expired.cert, HOST, (inter.cert,)) == (CertProblem.EXPIRED,)
    other = pki.leaf(inter, "default.hosting.example.com")
    assert judge.problems(other.cert, HOST, (inter.cert,)) == (CertProblem.HOSTNAME,)
    fine = pki.leaf(inter, HOST)
    assert judge.problems(fine.cert, HOST, (inter.cert,), "TLSv1") == (CertProblem.LEGACY_TLS,)
    assert judge.problems(fine.cert, HOST, (inter.cert,), "TLSv1.1") == (CertProblem.LEGACY_TLS,)
    assert judge.problems(fine.cert, HOST, (inter.cert,), "TLSv1.2") == ()


def test_self_signed_leaf_is_untrusted(tmp_path: Path) -> None:
    root = pki.root()
    selfie = pki.root(HOST)  # a self-signed certificate for the host (no SAN: the CN names it)
    judge = _judge(tmp_path, root)
    assert judge.problems(selfie.cert, HOST.lower(), ()) == (CertProblem.UNTRUSTED,)


def test_aia_bodies_der_pem_and_pkcs7() -> None:
    inter = pki.intermediate(pki.root())
    assert parse_certificates(inter.der) == (inter.cert,)
    assert parse_certificates(inter.pem) == (inter.cert,)
    p7 = pkcs7.serialize_certificates([inter.cert], Encoding.DER)
    assert parse_certificates(p7) == (inter.cert,)
    assert parse_certificates(b"<html>not found</html>") == ()
    assert aia_urls(pki.leaf(inter, HOST, aia=AIA_URL).cert) == [AIA_URL]


def _aia_world(address: str) -> tuple[pki.Issued, pki.Issued, pki.Issued, pki.Issued, DnsTable]:
    """A root, the intermediate the AIA URL serves, two leaves naming that URL, and a DNS table
    putting the AIA host at ``address``."""
    root = pki.root()
    inter = pki.intermediate(root)
    first = pki.leaf(inter, "www.a.gov.cn", aia=AIA_URL)
    second = pki.leaf(inter, "www.b.gov.cn", aia=AIA_URL)
    return root, inter, first, second, DnsTable(a={AIA_HOST: [address]})


def test_missing_intermediate_completed_from_aia_once_per_url(tmp_path: Path) -> None:
    root, inter, first, second, table = _aia_world("127.0.0.1")
    log = HitLog()
    judge = _judge(tmp_path, root)
    files = {"/intermediate.crt": ("application/pkix-cert", inter.der)}
    with dns_server(table) as ns, static_http("127.0.0.1", files, log) as port:
        # Bare http:// goes to the test server's port, as simnet's ports are mapped in a scan.
        config = Config(nameservers=[ns], allow_private=True, http_port=port)

        async def main() -> list[tuple[CertProblem, ...]]:
            fetcher = AiohttpFetcher(build_context(config))
            try:
                # Two sites of one CA at once: one fetch, shared.
                await asyncio.gather(
                    judge.fetch_issuers(first.cert, (), fetcher),
                    judge.fetch_issuers(second.cert, (), fetcher),
                )
                await judge.fetch_issuers(first.cert, (), fetcher)  # cached: no new request
                return [
                    judge.problems(first.cert, "www.a.gov.cn", ()),
                    judge.problems(second.cert, "www.b.gov.cn", ()),
                    # What the server sent is not known: completing the path is then no sign of an
                    # incomplete chain.
                    judge.problems(first.cert, "www.a.gov.cn", None),
                    # Sent complete: the AIA certificate changes nothing.
                    judge.problems(first.cert, "www.a.gov.cn", (inter.cert,)),
                ]
            finally:
                await fetcher.close()

        got = asyncio.run(main())
    assert got == [(CertProblem.INCOMPLETE_CHAIN,), (CertProblem.INCOMPLETE_CHAIN,), (), ()]
    assert log.hits == [(AIA_HOST, "/intermediate.crt")]


def test_aia_url_at_a_refused_address_is_not_fetched(tmp_path: Path) -> None:
    root, _inter, first, _second, table = _aia_world("10.20.30.40")  # private: the guard refuses it
    judge = _judge(tmp_path, root)
    with dns_server(table) as ns:
        config = Config(nameservers=[ns], allow_private=True)

        async def main() -> tuple[CertProblem, ...]:
            fetcher = AiohttpFetcher(build_context(config))
            try:
                await judge.fetch_issuers(first.cert, (), fetcher)
                return judge.problems(first.cert, "www.a.gov.cn", ())
            finally:
                await fetcher.close()

        assert asyncio.run(main()) == (CertProblem.UNTRUSTED,)
    assert AIA_HOST in table.queries  # asked the resolver, then refused the address: nothing sent
