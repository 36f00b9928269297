"""A small reference client, independent of the servers: resolves through simnet's nameserver with
dnspython and fetches over real sockets (HTTP/1.1, TLS verified against the simnet CA), classifying
failures the way docs/simnet.md names them. Used by the tests and the demo to check the ground truth."""

from __future__ import annotations

import gzip
import socket
import ssl
import urllib.parse
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import idna

from simnet.runtime import SimNet

MAX_BODY = 5 * 1024 * 1024
TIMEOUT = 3.0


def ns(net: SimNet) -> tuple[str, int]:
    host, port = net.nameserver.rsplit(":", 1)
    return host, int(port)


def query(
    net: SimNet, name: str, rdtype: str = "A", tcp: bool = False, timeout: float = 2.0
) -> dns.message.Message:
    host, port = ns(net)
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(q, host, port=port, timeout=timeout)
    return dns.query.udp(q, host, port=port, timeout=timeout)


def classify_dns(net: SimNet, name: str) -> tuple[str, list[str]]:
    """(reason code, addresses) of an A lookup, following CNAMEs across queries like a stub would."""
    seen: list[str] = []
    current = name
    for _ in range(12):
        try:
            r = query(net, current, timeout=2.5)
        except dns.exception.Timeout:
            return "dns.timeout", []
        if r.flags & dns.flags.TC:
            r = query(net, current, tcp=True)
        rc = r.rcode()
        if rc == dns.rcode.SERVFAIL:
            return "dns.servfail", []
        if rc == dns.rcode.REFUSED:
            return "dns.refused", []
        addresses: list[str] = []
        cname_target = ""
        owners: set[str] = set()
        for rrset in r.answer:
            owners.add(rrset.name.to_text(omit_final_dot=True).lower())
            if rrset.rdtype == dns.rdatatype.A:
                addresses += [rd.to_text() for rd in rrset]
            elif rrset.rdtype == dns.rdatatype.CNAME:
                for rd in rrset:
                    target = rd.to_text().rstrip(".").lower()
                    if target in owners or target in seen or target == current:
                        return "dns.cname_loop", []
                    cname_target = target
        if rc == dns.rcode.NXDOMAIN:
            return "dns.nxdomain", []
        if addresses:
            return "dns.ok", sorted(addresses)
        if cname_target:
            seen.append(current)
            current = cname_target
            continue
        return "dns.nodata", []
    return "dns.cname_loop", []


@dataclass
class Fetch:
    """The outcome of fetching a URL and following redirects."""

    reason: str
    status: int = 0
    url: str = ""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)

    def text(self) -> str:
        ctype = self.headers.get("content-type", "")
        charset = ctype.split("charset=")[-1].strip().lower() if "charset=" in ctype else ""
        head = self.body[:2048].decode("ascii", "replace").lower()
        if not charset and "charset=" in head:
            charset = head.split("charset=", 1)[1].split('"')[0].split(">")[0].strip().lower()
        if charset in ("gb2312", "gbk", ""):
            charset = "gb18030" if charset or not _utf8(self.body) else "utf-8"
        return self.body.decode(charset, "replace")


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _read_response(sock: socket.socket | ssl.SSLSocket) -> tuple[int, dict[str, str], bytes, bool]:
    """Status, headers, body (capped), and whether the cap was hit."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed before headers")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers["content-length"]) if "content-length" in headers else None
    body = rest
    too_large = False
    while length is None or len(body) < length:
        if len(body) > MAX_BODY:
            too_large = True
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    if headers.get("transfer-encoding") == "chunked" and not too_large:
        body = _dechunk(body)
    if headers.get("content-encoding") == "gzip" and not too_large:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(body, MAX_BODY + 1)
        if len(out) > MAX_BODY:
            too_large = True
        body = out
    return status, headers, body, too_large


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def fetch(
    net: SimNet, url: str, user_agent: str = "badgewatch-test/1.0", max_redirects: int = 8, cookie: str = ""
) -> Fetch:
    """GET ``url`` through simnet (DNS + farm), following redirects; classify like a crawler must."""
    chain: list[str] = []
    cert_reason = ""
    for _ in range(max_redirects + 1):
        if url in chain:
            return Fetch("http.redirect_loop", chain=chain)
        chain.append(url)
        parts = urllib.parse.urlsplit(url)
        host = idna.encode(parts.hostname or "", uts46=True).decode().lower()
        reason, addrs = classify_dns(net, host)
        if reason != "dns.ok":
            return Fetch("http.dns_error", chain=chain)
        tls = parts.scheme == "https"
        port = net.https_port if tls else net.http_port
        try:
            raw = socket.create_connection((addrs[0], port), timeout=TIMEOUT)
        except ConnectionRefusedError:
            return Fetch("http.refused", chain=chain)
        sock: socket.socket | ssl.SSLSocket = raw
        try:
            if tls:
                raw.close()
                tls_sock, tls_reason = _tls_connect(net, addrs[0], port, host)
                if tls_sock is None:
                    return Fetch(tls_reason, chain=chain)
                sock, cert_reason = tls_sock, cert_reason or tls_reason
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            req = (
                f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n"
                f"Accept-Encoding: gzip\r\nConnection: close\r\n"
            )
            if cookie:
                req += f"Cookie: {cookie}\r\n"
            sock.sendall((req + "\r\n").encode())
            status, headers, body, too_large = _read_response(sock)
        except ValueError:  # no HTTP status line
            return Fetch("http.protocol_error", chain=chain)
        except TimeoutError:
            return Fetch("http.timeout", chain=chain)
        except ConnectionResetError:
            return Fetch("http.reset", chain=chain)
        finally:
            sock.close()
        if too_large:
            return Fetch("http.too_large", status, url, body, headers, chain)
        if status in (301, 302, 303, 307, 308) and "location" in headers:
            # A browser percent-encodes raw bytes of a Location; a malformed one or another scheme ends here.
            location = headers["location"].encode("latin-1").decode("utf-8", "replace")
            try:
                url = urllib.parse.urljoin(url, urllib.parse.quote(location, safe=":/?#[]@!$&'()*+,;=%"))
                parts = urllib.parse.urlsplit(url)
                ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            except ValueError:
                ok = False
            if not ok:
                return Fetch("http.bad_redirect", status, url, body, headers, chain)
            continue
        if status == 403 and "访问验证" in body.decode("utf-8", "replace"):
            return Fetch("http.blocked", status, url, body, headers, chain)
        if status >= 500:
            return Fetch("http.server_error", status, url, body, headers, chain)
        if status >= 400:
            return Fetch("http.client_error", status, url, body, headers, chain)
        return Fetch(cert_reason or "http.ok", status, url, body, headers, chain)
    return Fetch("http.redirect_loop", chain=chain)


def _client(net: SimNet, verify: bool = True, legacy: bool = False, extra_ca: str = "") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=net.ca_file)
    if extra_ca:
        ctx.load_verify_locations(cafile=extra_ca)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if legacy:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


def _tls_connect(net: SimNet, addr: str, port: int, host: str) -> tuple[ssl.SSLSocket | None, str]:
    """A TLS connection and the reason it earns ("" = fine), or (None, reason) when none can be made.

    Verified against the simnet root; a leaf whose issuer is missing is tried again with the
    intermediate (what AIA would give: incomplete chain); a refused handshake once more with TLS 1.0
    allowed (legacy); a server answering in TLCP records (0x0101) is 国密-only."""
    legacy = False
    for attempt in range(2):
        ctx = _client(net, legacy=legacy)
        raw = socket.create_connection((addr, port), timeout=TIMEOUT)
        try:
            sock = ctx.wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            reason = {10: "http.cert_expired", 62: "http.cert_hostname"}.get(
                exc.verify_code, "http.cert_untrusted"
            )
            if exc.verify_code == 20:  # unable to get local issuer certificate
                intermediate = str(Path(net.ca_file).with_name("intermediate.pem"))
                raw = socket.create_connection((addr, port), timeout=TIMEOUT)
                try:
                    _client(net, legacy=legacy, extra_ca=intermediate).wrap_socket(
                        raw, server_hostname=host
                    ).close()
                    reason = "http.cert_incomplete_chain"
                except ssl.SSLError:
                    raw.close()
            raw = socket.create_connection((addr, port), timeout=TIMEOUT)
            return _client(net, verify=False, legacy=legacy).wrap_socket(raw, server_hostname=host), reason
        except (ssl.SSLError, ConnectionResetError) as exc:
            raw.close()
            if "WRONG_VERSION_NUMBER" in str(exc):
                return None, "http.tls_sm2" if _answers_tlcp(addr, port) else "http.tls_error"
            if attempt == 0:
                legacy = True
                continue
            return None, "http.tls_error"
        return sock, "http.tls_legacy" if legacy and sock.version() in ("TLSv1", "TLSv1.1") else ""
    return None, "http.tls_error"


def _answers_tlcp(addr: str, port: int) -> bool:
    """Whether the server answers a bare TLCP ClientHello in a TLCP record (version 0x0101)."""
    body = b"\x01\x01" + bytes(32) + b"\x00" + b"\x00\x02\xe0\x13" + b"\x01\x00"
    hello = b"\x01" + len(body).to_bytes(3, "big") + body
    record = b"\x16\x01\x01" + len(hello).to_bytes(2, "big") + hello
    with socket.create_connection((addr, port), timeout=TIMEOUT) as s:
        s.sendall(record)
        try:
            return s.recv(3)[1:3] == b"\x01\x01"
        except OSError:
            return False


def gunzip(data: bytes) -> bytes:
    return gzip.decompress(data)
