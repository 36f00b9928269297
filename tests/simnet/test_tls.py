"""simnet's PKI and TLS server shapes over real sockets: root → intermediate → leaf, the leaf alone with
its AIA URL, a TLS 1.0-only server, a 国密 TLCP-only server."""

from __future__ import annotations

import socket
import ssl
import struct
import warnings
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from OpenSSL import SSL

from simnet.probe import classify_dns, fetch
from simnet.runtime import SimNet
from simnet.tls import AIA_URL


def _site(net: SimNet, scenario: str) -> dict[str, Any]:
    return next(s for s in net.ground_truth["sites"] if s["scenario"] == scenario)


def _address(net: SimNet, host: str) -> str:
    reason, addrs = classify_dns(net, host)
    assert reason == "dns.ok", (host, reason)
    return addrs[0]


def _sent_chain(net: SimNet, scenario: str) -> tuple[list[x509.Certificate], str]:
    """The certificates a host sends (leaf first) and the protocol, read with pyOpenSSL."""
    host = _site(net, scenario)["hosts"][0]
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
    sock = socket.create_connection((_address(net, host), net.https_port), timeout=5)
    sock.setblocking(True)
    conn = SSL.Connection(ctx, sock)
    conn.set_tlsext_host_name(host.encode())
    conn.set_connect_state()
    try:
        conn.do_handshake()
        chain = [c.to_cryptography() for c in conn.get_peer_cert_chain() or []]
        return chain, conn.get_protocol_version_name()
    finally:
        conn.close()


def test_ca_file_holds_the_root_only(simnet: SimNet) -> None:
    roots = x509.load_pem_x509_certificates(Path(simnet.ca_file).read_bytes())
    assert len(roots) == 1
    root = roots[0]
    assert root.issuer == root.subject
    intermediate = x509.load_pem_x509_certificate(
        Path(simnet.ca_file).with_name("intermediate.pem").read_bytes()
    )
    assert intermediate.issuer == root.subject and intermediate.subject != root.subject
    intermediate.verify_directly_issued_by(root)


def test_normal_host_sends_leaf_and_intermediate(simnet: SimNet) -> None:
    chain, _version = _sent_chain(simnet, "compliant.https")
    assert len(chain) == 2
    leaf, intermediate = chain
    leaf.verify_directly_issued_by(intermediate)
    aia = leaf.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    assert [d.access_location.value for d in aia] == [AIA_URL]
    # A client trusting only the root verifies it: the path runs through the intermediate sent.
    site = _site(simnet, "compliant.https")
    assert fetch(simnet, site["url"]).reason == "http.ok"


def test_incomplete_chain_sends_the_leaf_alone_and_aia_serves_the_intermediate(simnet: SimNet) -> None:
    chain, _version = _sent_chain(simnet, "http.cert_chain_incomplete")
    assert len(chain) == 1
    got = fetch(simnet, AIA_URL)
    assert got.reason == "http.ok" and got.headers["content-type"] == "application/pkix-cert"
    intermediate = x509.load_der_x509_certificate(got.body)
    chain[0].verify_directly_issued_by(intermediate)


def test_legacy_server_speaks_tls_1_0_only_and_refuses_with_an_alert(simnet: SimNet) -> None:
    site = _site(simnet, "http.tls_legacy")
    host = site["hosts"][0]
    address = _address(simnet, host)
    modern = ssl.create_default_context(cafile=simnet.ca_file)
    with socket.create_connection((address, simnet.https_port), timeout=5) as raw:
        try:
            modern.wrap_socket(raw, server_hostname=host)
            raise AssertionError("a TLS 1.2+ client was served")
        except ssl.SSLError as exc:
            assert "PROTOCOL_VERSION" in str(exc)  # the alert real servers send, not a reset
    chain, version = _sent_chain(simnet, "http.tls_legacy")
    assert version == "TLSv1" and len(chain) == 2
    legacy = ssl.create_default_context(cafile=simnet.ca_file)
    legacy.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy.minimum_version = ssl.TLSVersion.TLSv1
    with (
        socket.create_connection((address, simnet.https_port), timeout=5) as raw,
        legacy.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        assert tls.recv(64).startswith(b"HTTP/1.1 200")
    assert fetch(simnet, site["url"]).reason == "http.tls_legacy"


def _hello(record: bytes, version: bytes, suites: bytes) -> bytes:
    body = version + bytes(32) + b"\x00" + struct.pack(">H", len(suites)) + suites + b"\x01\x00"
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16" + record + struct.pack(">H", len(hs)) + hs


def _answer(net: SimNet, host: str, hello: bytes) -> bytes:
    with socket.create_connection((_address(net, host), net.https_port), timeout=5) as s:
        s.sendall(hello)
        data = b""
        while len(data) < 11:
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
        return data


def test_sm2_server_answers_in_tlcp_records(simnet: SimNet) -> None:
    host = _site(simnet, "http.tls_sm2")["hosts"][0]
    # A TLS ClientHello: a fatal protocol_version alert in a TLCP (0x0101) record, as GmSSL answers.
    tls = _answer(simnet, host, _hello(b"\x03\x01", b"\x03\x03", b"\xc0\x2b\xc0\x2f"))
    assert tls == b"\x15\x01\x01\x00\x02\x02\x46"
    # A TLCP ClientHello: a TLCP ServerHello (version 0x0101, ECC_SM4_CBC_SM3).
    tlcp = _answer(simnet, host, _hello(b"\x01\x01", b"\x01\x01", b"\xe0\x13"))
    assert tlcp[:3] == b"\x16\x01\x01" and tlcp[5:6] == b"\x02" and tlcp[9:11] == b"\x01\x01"
    assert fetch(simnet, _site(simnet, "http.tls_sm2")["url"]).reason == "http.tls_sm2"


def test_https_only_shapes_redirect_plain_http(simnet: SimNet) -> None:
    for scenario in ("http.tls_legacy", "http.tls_sm2"):
        site = _site(simnet, scenario)
        got = fetch(simnet, site["url"].replace("https://", "http://"))
        assert got.chain[:2] == [site["url"].replace("https://", "http://"), site["url"]], got.chain
