"""Small real servers on loopback for crawler tests that need a specific shape simnet does not have:
an authoritative DNS server with a fixed table, and an HTTP server that counts the requests it gets.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


@dataclass
class DnsTable:
    a: dict[str, list[str]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)


class _DnsHandler(socketserver.BaseRequestHandler):
    table: DnsTable

    def handle(self) -> None:
        data, sock = self.request
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        q = query.question[0]
        name = q.name.to_text(omit_final_dot=True).lower()
        self.table.queries.append(name)
        addrs = self.table.a.get(name)
        if addrs is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif q.rdtype == dns.rdatatype.A and addrs:
            response.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", *addrs))
        sock.sendto(response.to_wire(), self.client_address)


@contextmanager
def dns_server(table: DnsTable) -> Iterator[str]:
    """A UDP nameserver on 127.0.0.1 answering from ``table``; yields "127.0.0.1:PORT"."""
    handler = type("H", (_DnsHandler,), {"table": table})
    server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class HitLog:
    hits: list[tuple[str, str]] = field(default_factory=list)  # (Host header, path)


@contextmanager
def counting_http(host: str, body: bytes, log: HitLog) -> Iterator[int]:
    """An HTTP server on ``host`` (a loopback address) that records every request; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.hits.append((self.headers.get("Host", ""), self.path))
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def static_http(host: str, files: dict[str, tuple[str, bytes]], log: HitLog) -> Iterator[int]:
    """An HTTP server on ``host`` serving ``files`` (path → (content type, body)), 404 otherwise;
    records every request; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.hits.append((self.headers.get("Host", ""), self.path))
            content_type, body = files.get(self.path, ("text/plain", b""))
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
