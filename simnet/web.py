"""The web farm: one raw asyncio HTTP/1.1 server per loopback address and port, virtual hosts by ``Host``
(and by SNI over TLS), precomputed responses, and the failure behaviours of docs/simnet.md.

Written on bare :class:`asyncio.Protocol` (no framework) so that it never bounds a crawler benchmark:
a request costs a header scan, two dictionary lookups and one ``write`` of cached bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import math
import random
import socket
import ssl
import struct
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from simnet import shields
from simnet.conac import ConacLog
from simnet.model import Action, AddressPolicy, Route, Universe, lookup_route
from simnet.pages import challenge_page

log = logging.getLogger(__name__)

MAX_HEADER = 64 * 1024
CHUNK = 64 * 1024
MISDIRECTED = Route(
    status=404,
    body="<html><body><h1>404 Not Found</h1><p>本服务器上没有这个网站。</p></body></html>".encode(),
)
BAD_REQUEST = Route(status=400, body=b"<html><body><h1>400 Bad Request</h1></body></html>")
CHALLENGE = Route(status=403, body=challenge_page().encode())
# Idle keep-alive connections are closed after this long, as real servers do (nginx: 75 s, Apache: 5 s).
# Without it a crawler visiting tens of thousands of hosts once each would leave one idle connection
# per host open on both sides until the descriptors run out.
KEEPALIVE_S = 15.0
_FILLER = (b"<p>" + "政务公开信息".encode() * 40 + b"</p>\n") * 64


PEAK_WINDOW_S = 60.0


class _Client:
    """One client address as one server address's protection sees it."""

    __slots__ = ("banned", "bans", "peak", "recent", "requests", "until", "window")

    def __init__(self) -> None:
        self.window: deque[float] = deque()  # requests counted towards the limit (sliding window)
        self.recent: deque[float] = deque()  # every request of the last PEAK_WINDOW_S (the peak)
        self.until = 0.0  # end of the current ban (loop time), 0: not banned
        self.requests = 0
        self.banned = 0
        self.bans = 0
        self.peak = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "served": self.requests - self.banned,
            "banned": self.banned,
            "bans": self.bans,
            "peak_per_min": self.peak,
        }


class AddressStats:
    """Requests one server address received (every address has one)."""

    __slots__ = ("banned", "bans", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.banned = 0
        self.bans = 0


class Gate:
    """The CC protection and latency of one server address (:class:`~simnet.model.AddressPolicy`):
    clients by address, their sliding windows and bans. The farm runs on one event loop, so the
    counts need no lock however many connections a client opens."""

    __slots__ = ("ban_page", "ban_s", "clients", "latency", "limit", "policy", "stats", "style", "window_s")

    def __init__(self, policy: AddressPolicy, stats: AddressStats) -> None:
        self.policy = policy
        self.stats = stats
        self.limit = policy.limit
        self.window_s = policy.window_s
        self.ban_s = policy.ban_s
        self.style = policy.ban_style
        self.ban_page = shields.baota() if self.style == "block200" else shields.rate_limited(200)
        lat = policy.latency_ms
        self.latency: Callable[[], float] | float
        if isinstance(lat, tuple):
            lo, hi = lat[0] / 1000, lat[1] / 1000
            self.latency = functools.partial(random.uniform, lo, hi)
        else:
            self.latency = lat / 1000
        self.clients: dict[str, _Client] = {}

    def client(self, ip: str) -> _Client:
        found = self.clients.get(ip)
        if found is None:
            found = self.clients[ip] = _Client()
        return found

    def delay(self) -> float:
        lat = self.latency
        return lat if isinstance(lat, float) else lat()

    def admit(self, c: _Client, now: float) -> bool:
        """Count one request of ``c`` at ``now``; True when it gets the ban answer."""
        c.requests += 1
        recent = c.recent
        recent.append(now)
        cut = now - PEAK_WINDOW_S
        while recent[0] <= cut:
            recent.popleft()
        if len(recent) > c.peak:
            c.peak = len(recent)
        if c.until:
            if now < c.until:
                c.banned += 1
                self.stats.banned += 1
                return True
            c.until = 0.0
            c.window.clear()
        if not self.limit:
            return False
        window = c.window
        window.append(now)
        cut = now - self.window_s
        while window[0] <= cut:
            window.popleft()
        if len(window) <= self.limit:
            return False
        window.clear()
        c.until = now + self.ban_s
        c.bans += 1
        c.banned += 1
        self.stats.bans += 1
        self.stats.banned += 1
        return True

    def ban_answer(self, c: _Client, now: float) -> Route:
        if self.style != "429":
            return self.ban_page
        left = max(1, math.ceil(c.until - now))
        page = self.ban_page
        return Route(429, page.body, page.content_type, (("Retry-After", str(left)),))


class Farm:
    """The shared state of all listening sockets: the universe, open connections, cached bombs,
    address policies (CC limits, latency) and per-address counts."""

    def __init__(
        self,
        universe: Universe,
        bomb: Callable[[int], bytes],
        keepalive_s: float = KEEPALIVE_S,
        policies: Mapping[str, AddressPolicy] | None = None,
        track: bool = False,
    ) -> None:
        self.universe = universe
        self.policies: dict[str, AddressPolicy] = dict(policies or {})
        # track: every address without a policy is measured as if it had an empty one (peaks per client).
        self.track = track
        self.stats: dict[str, AddressStats] = {}
        self.gates: dict[str, Gate] = {}
        self.keepalive_s = keepalive_s
        self.connections: set[asyncio.Transport] = set()
        self.servers: list[asyncio.Server] = []
        self._bomb = bomb
        self._bombs: dict[int, asyncio.Future[bytes]] = {}
        self.requests = 0
        self.conac = ConacLog()  # requests to CONAC's hosts; their 304s to conditional requests
        self.nonce = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def address_stats(self, address: str) -> AddressStats:
        found = self.stats.get(address)
        if found is None:
            found = self.stats[address] = AddressStats()
        return found

    def gate(self, address: str) -> Gate | None:
        """The gate of ``address`` (None: no policy; requests are only counted)."""
        found = self.gates.get(address)
        if found is None:
            policy = self.policies.get(address)
            if policy is None:
                if not self.track:
                    return None
                policy = AddressPolicy()
            found = self.gates[address] = Gate(policy, self.address_stats(address))
        return found

    def report(self) -> dict[str, Any]:
        """Per server address: requests received, served, banned, bans started, the peak requests of
        any client in any 60 s window (addresses with a policy or ``track``), and per client."""
        addresses: dict[str, Any] = {}
        totals = {"requests": 0, "served": 0, "banned": 0, "bans": 0}
        busiest: dict[str, Any] | None = None
        peak = 0
        for addr, st in sorted(self.stats.items()):
            gate = self.gates.get(addr)
            row: dict[str, Any] = {
                "requests": st.requests,
                "served": st.requests - st.banned,
                "banned": st.banned,
                "bans": st.bans,
                "peak_per_min": None,
                "policy": None,
                "clients": {},
            }
            if gate is not None:
                row["policy"] = gate.policy.as_dict()
                row["clients"] = {ip: c.as_dict() for ip, c in sorted(gate.clients.items())}
                row["peak_per_min"] = max((c.peak for c in gate.clients.values()), default=0)
                peak = max(peak, row["peak_per_min"])
            addresses[addr] = row
            for k in totals:
                totals[k] += row[k]
            if busiest is None or st.requests > busiest["requests"]:
                busiest = {"address": addr, "requests": st.requests}
        return {"addresses": addresses, "totals": totals, "busiest": busiest, "peak_per_min": peak}

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def bomb(self, size: int) -> asyncio.Future[bytes]:
        fut = self._bombs.get(size)
        if fut is None:
            fut = asyncio.get_running_loop().run_in_executor(None, self._bomb, size)
            self._bombs[size] = fut
        return fut

    async def listen(
        self,
        addresses: list[str],
        port: int,
        tls: ssl.SSLContext | None,
        fallback_ephemeral: bool = True,
        own: Mapping[str, ssl.SSLContext | Callable[[], asyncio.Protocol]] | None = None,
    ) -> int:
        """Listen on ``port`` on every address (0: one free port shared by all); returns the port.

        ``own``: addresses served differently on this port: by another TLS context (a TLS 1.0-only
        server; TLS is then terminated by :class:`_TlsBridge`) or by another protocol altogether
        (a protocol factory: the 国密 TLCP server)."""
        loop = asyncio.get_running_loop()
        want = port
        for _attempt in range(30):
            opened: list[asyncio.Server] = []
            try:
                for addr in addresses:
                    special = own.get(addr) if own else None
                    factory: Callable[[], asyncio.Protocol]
                    if isinstance(special, ssl.SSLContext):
                        factory = functools.partial(_TlsBridge, self, addr, special)
                    elif special is not None:
                        factory = special
                    else:
                        factory = functools.partial(_Conn, self, addr, tls is not None)
                    server = await loop.create_server(
                        factory,
                        addr,
                        want,
                        ssl=tls if special is None else None,
                        reuse_address=True,
                        backlog=2048,
                    )
                    if want == 0:
                        want = server.sockets[0].getsockname()[1]
                    opened.append(server)
            except OSError as exc:
                for s in opened:
                    s.close()
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                if port and not fallback_ephemeral:
                    raise
                log.info("port %s not available on all addresses (%s); trying another", want, exc)
                want = 0
                port = 0
                continue
            self.servers += opened
            return want
        raise OSError("no port free on every farm address")

    async def close(self) -> None:
        for s in self.servers:
            s.close()
        for t in list(self.connections):
            t.abort()
        for task in list(self.tasks):
            task.cancel()
        for s in self.servers:
            await s.wait_closed()
        self.servers.clear()


class _Conn(asyncio.Protocol):
    __slots__ = (
        "buf",
        "busy",
        "client",
        "closed",
        "farm",
        "gate",
        "idle",
        "local",
        "resume",
        "stat",
        "tls",
        "transport",
    )

    def __init__(self, farm: Farm, local: str, tls: bool) -> None:
        self.farm = farm
        self.local = local
        self.tls = tls
        self.buf = b""
        self.busy = False
        self.closed = False
        self.resume: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.stat = farm.address_stats(local)
        self.gate = farm.gate(local)
        self.client: _Client | None = None

    # --- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.farm.connections.add(transport)
        if self.gate is not None:
            peer = transport.get_extra_info("peername")
            self.client = self.gate.client(str(peer[0]) if peer else "?")
        self.idle = asyncio.get_running_loop().call_later(self.farm.keepalive_s, self._idle_close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        if self.transport is not None:
            self.farm.connections.discard(self.transport)
        if self.resume is not None and not self.resume.done():
            self.resume.set_result(None)

    def pause_writing(self) -> None:
        self.resume = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.resume is not None and not self.resume.done():
            self.resume.set_result(None)
        self.resume = None

    def data_received(self, data: bytes) -> None:
        self.buf = self.buf + data if self.buf else data
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        if not self.busy:
            self._process()

    def _idle_close(self) -> None:
        self.idle = None
        if not self.busy and not self.closed and self.transport is not None:
            self.transport.close()
            self.closed = True

    # --- request handling -----------------------------------------------------------------------

    def _process(self) -> None:
        self._process_buffer()
        if not self.busy and not self.closed and self.idle is None:
            self.idle = asyncio.get_running_loop().call_later(self.farm.keepalive_s, self._idle_close)

    def _process_buffer(self) -> None:
        t = self.transport
        assert t is not None
        while self.buf and not self.busy and not self.closed:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    t.write(BAD_REQUEST.wire(False, False))
                    t.close()
                    self.closed = True
                return
            head = self.buf[:end]
            lower = head.lower()
            body_len = _header(lower, head, b"content-length")
            need = end + 4 + (int(body_len) if body_len and body_len.isdigit() else 0)
            if len(self.buf) < need:
                return
            self.buf = self.buf[need:]
            self._handle(head, lower)

    def _handle(self, head: bytes, lower: bytes) -> None:
        t = self.transport
        assert t is not None
        first = head.split(b"\r\n", 1)[0]
        parts = first.split(b" ")
        if len(parts) != 3:
            t.write(BAD_REQUEST.wire(False, False))
            t.close()
            self.closed = True
            return
        method, target, version = parts
        conn = _header(lower, lower, b"connection") or b""
        keep = (b"close" not in conn) if version == b"HTTP/1.1" else (b"keep-alive" in conn)
        head_only = method == b"HEAD"
        self.stat.requests += 1
        client = self.client
        if client is not None:
            gate = self.gate
            assert gate is not None
            loop = asyncio.get_running_loop()
            banned = gate.admit(client, loop.time())
            delay = gate.delay()
            if delay > 0:
                self.busy = True
                loop.call_later(delay, self._after_latency, head, lower, target, keep, head_only, banned)
            elif banned:
                self._send(gate.ban_answer(client, loop.time()), keep, head_only)
            else:
                self._serve(head, lower, target, keep, head_only)
            return
        self._serve(head, lower, target, keep, head_only)

    def _after_latency(
        self, head: bytes, lower: bytes, target: bytes, keep: bool, head_only: bool, banned: bool
    ) -> None:
        self.busy = False
        if self.closed:
            return
        if banned:
            assert self.gate is not None and self.client is not None
            self._send(self.gate.ban_answer(self.client, asyncio.get_running_loop().time()), keep, head_only)
        else:
            self._serve(head, lower, target, keep, head_only)
        if not self.busy and not self.closed:
            self._process()

    def _serve(self, head: bytes, lower: bytes, target: bytes, keep: bool, head_only: bool) -> None:
        """Answer one request by its host's route (after the address's gate let it through)."""
        t = self.transport
        assert t is not None
        raw_host = _header(lower, head, b"host") or b""
        path = target
        if target.startswith((b"http://", b"https://")):
            rest = target.split(b"//", 1)[1]
            raw_host, _, p = rest.partition(b"/")
            path = b"/" + p
        host = _host(raw_host)
        site = self.farm.universe.host(host) if host else None
        if site is None or site.address != self.local:
            # Real platforms answer an unknown Host with their default site (a portal), not a 404.
            site = self.farm.universe.default_host(self.local)
            if site is None:
                self._send(MISDIRECTED, keep, head_only)
                return
        self.farm.requests += 1
        if not self.tls and not site.plain_http:
            self._reset()
            return
        route = lookup_route(site, path.decode("latin-1"), self.tls)
        route = self.farm.conac.answer(site.host, route, lower)
        action = route.action
        if action is Action.RESPOND:
            t.write(route.wire(keep, head_only))
            if not keep:
                t.close()
                self.closed = True
        elif action is Action.DELAY:
            self.busy = True
            asyncio.get_running_loop().call_later(route.delay_ms / 1000, self._later, route, keep, head_only)
        elif action is Action.HANG:
            self.busy = True  # read and ignore everything; the client gives up
        elif action is Action.RESET:
            self._reset()
        elif action is Action.BLOCK:
            ua = _header(lower, lower, b"user-agent") or b""
            cookie = _header(lower, lower, b"cookie") or b""
            passed = b"mozilla" in ua and b"__waf_pass=1" in cookie
            self._send(route if passed else CHALLENGE, keep, head_only)
        elif action is Action.STREAM:
            self.busy = True
            self.farm.spawn(self._stream(route, head_only))
        elif action is Action.GZIP_BOMB:
            self.busy = True
            self.farm.spawn(self._bomb(route, keep, head_only))
        elif action is Action.RAW:
            t.write(route.body)
            t.close()
            self.closed = True
        elif action is Action.DRIP:
            self.busy = True
            self.farm.spawn(self._drip(route))
        elif action is Action.STALL:
            self.busy = True  # like HANG, after a part of an answer
            t.write(route.body)
        elif action is Action.DYNAMIC:
            self.farm.nonce += 1
            body = route.body.replace(b"{nonce}", b"%d-%x" % (self.farm.nonce, hash(self.local) & 0xFFFFFF))
            self._send(Route(route.status, body, route.content_type, route.headers), keep, head_only)

    def _send(self, route: Route, keep: bool, head_only: bool) -> None:
        t = self.transport
        assert t is not None
        if self.closed:
            return
        t.write(route.wire(keep, head_only))
        if not keep:
            t.close()
            self.closed = True

    def _later(self, route: Route, keep: bool, head_only: bool) -> None:
        plain = Route(
            status=route.status, body=route.body, content_type=route.content_type, headers=route.headers
        )
        self._send(plain, keep, head_only)
        self.busy = False
        if not self.closed:
            self._process()

    def _reset(self) -> None:
        t = self.transport
        assert t is not None
        sock = t.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.abort()
        self.closed = True

    async def _drain(self) -> None:
        if self.resume is not None:
            await self.resume
        else:
            await asyncio.sleep(0)  # let connection_lost and other connections run

    async def _stream(self, route: Route, head_only: bool) -> None:
        """A body of ``stream_bytes`` (0: endless, chunked) written as fast as the client reads."""
        t = self.transport
        assert t is not None
        total = route.stream_bytes
        if total:
            head = (
                f"HTTP/1.1 200 OK\r\nServer: simnet\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {total}\r\nConnection: close\r\n\r\n"
            )
        else:
            head = (
                "HTTP/1.1 200 OK\r\nServer: simnet\r\nContent-Type: text/html; charset=utf-8\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
        t.write(head.encode())
        if head_only:
            t.close()
            return
        sent = 0
        prefix = route.body
        while not self.closed and not t.is_closing():
            piece = prefix or _FILLER
            prefix = b""
            if total:
                piece = piece[: total - sent]
                t.write(piece)
            else:
                t.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sent += len(piece)
            if total and sent >= total:
                break
            await self._drain()
        if not self.closed:
            t.close()

    async def _drip(self, route: Route) -> None:
        """``body`` as it is, ``stream_bytes`` at a time every ``delay_ms``, then close."""
        t = self.transport
        assert t is not None
        step = max(1, route.stream_bytes)
        for start in range(0, len(route.body), step):
            if self.closed or t.is_closing():
                return
            if start:
                await asyncio.sleep(route.delay_ms / 1000)
            t.write(route.body[start : start + step])
        if not self.closed:
            t.close()
            self.closed = True

    async def _bomb(self, route: Route, keep: bool, head_only: bool) -> None:
        data = await self.farm.bomb(route.stream_bytes)
        bomb = Route(body=data, headers=(("Content-Encoding", "gzip"),))
        self._send(bomb, False, head_only)


class _TlsBridge(asyncio.Protocol):
    """TLS terminated over memory BIOs in front of a :class:`_Conn`.

    asyncio's own TLS aborts the connection when a handshake fails, dropping the alert OpenSSL queued:
    a client refused by a TLS 1.0-only server would see a reset where real servers send a
    ``protocol_version`` alert. Here every byte OpenSSL produces, the alert included, is sent."""

    def __init__(self, farm: Farm, local: str, ctx: ssl.SSLContext) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.sslobj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.inner = _Conn(farm, local, True)
        self.transport: asyncio.Transport | None = None
        self.ready = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ready:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        t = self.transport
        assert t is not None
        self.incoming.write(data)
        if not self.ready:
            try:
                self.sslobj.do_handshake()
            except ssl.SSLWantReadError:
                self.flush()
                return
            except (ssl.SSLError, OSError):
                self.flush()  # the alert
                t.close()
                return
            self.ready = True
            self.flush()
            self.inner.connection_made(_BridgedTransport(self))
        plain: list[bytes] = []
        while True:
            try:
                chunk = self.sslobj.read(CHUNK)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLError, OSError):  # close_notify or a broken record
                self.flush()
                t.close()
                break
            if not chunk:
                break
            plain.append(chunk)
        self.flush()
        if plain and not self.inner.closed:
            self.inner.data_received(b"".join(plain))

    def send(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        view = memoryview(data)
        while view:
            n = self.sslobj.write(view[:CHUNK])
            view = view[n:]
            self.flush()

    def flush(self) -> None:
        out = self.outgoing.read()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)


class _BridgedTransport(asyncio.Transport):
    """What the :class:`_Conn` behind a :class:`_TlsBridge` writes to."""

    def __init__(self, bridge: _TlsBridge) -> None:
        super().__init__()
        self.bridge = bridge

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.bridge.send(bytes(data))

    def close(self) -> None:
        t = self.bridge.transport
        if t is not None and not t.is_closing():
            with contextlib.suppress(ssl.SSLError, OSError):
                self.bridge.sslobj.unwrap()  # close_notify (the peer's answer is not awaited)
            self.bridge.flush()
            t.close()

    def abort(self) -> None:
        if self.bridge.transport is not None:
            self.bridge.transport.abort()

    def is_closing(self) -> bool:
        t = self.bridge.transport
        return t is None or t.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self.bridge.sslobj
        t = self.bridge.transport
        return t.get_extra_info(name, default) if t is not None else default


def _header(lower: bytes, source: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower case) from a request head; ``source`` keeps the case."""
    i = lower.find(b"\r\n" + name + b":")
    if i < 0:
        return None
    start = i + 3 + len(name)
    j = lower.find(b"\r\n", start)
    return source[start : j if j >= 0 else len(source)].strip()


def _host(raw: bytes) -> str:
    """The lower-case A-label host from a Host header (port stripped; raw UTF-8 names encoded)."""
    if raw.startswith(b"["):
        return ""
    host = raw.rsplit(b":", 1)[0] if b":" in raw else raw
    try:
        return host.decode("ascii").lower().rstrip(".")
    except UnicodeDecodeError:
        try:
            import idna

            return idna.encode(host.decode("utf-8"), uts46=True).decode("ascii").lower()
        except (UnicodeError, idna.IDNAError):
            return ""
