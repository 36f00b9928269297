"""The runtime model of the simulated internet: DNS entries, HTTP routes, hosts, universes.

A *universe* answers two questions for the servers: what does the DNS say about a name, and what does
the web farm send for a request to a host. :class:`StaticUniverse` holds everything in dictionaries
(catalogue, baoding, spec files); generated universes compute answers from the name (constant memory).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class DnsBehaviour(enum.StrEnum):
    """How the nameserver treats a query for a name."""

    ANSWER = "answer"  # normal answer (records, NODATA when none of the type)
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    DROP = "drop"  # never answers: the client times out
    TRUNCATE = "truncate"  # UDP answers carry TC=1 and no records: the client must use TCP
    SLOW = "slow"  # answers after ``delay_ms``


@dataclass(slots=True)
class DnsEntry:
    """What the authoritative server knows about one name (lower-case A-label form, no trailing dot)."""

    name: str
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    cname: str = ""
    txt: list[str] = field(default_factory=list)
    behaviour: DnsBehaviour = DnsBehaviour.ANSWER
    delay_ms: int = 0


class Action(enum.StrEnum):
    """What the web farm does with a request."""

    RESPOND = "respond"  # send the precomputed response
    DELAY = "delay"  # send it after ``delay_ms``
    HANG = "hang"  # accept, read, never answer
    RESET = "reset"  # close with RST (SO_LINGER 0)
    BLOCK = "block"  # 403 challenge page to clients that do not look like a browser
    STREAM = "stream"  # ``stream_bytes`` of body (0 = endless), written as fast as the client reads
    GZIP_BOMB = "gzip_bomb"  # small gzip body that inflates to ``stream_bytes``
    RAW = "raw"  # ``body`` is written as it is (status line and headers included), then the connection closes
    DYNAMIC = "dynamic"  # ``body`` with ``{nonce}`` replaced on every request (differs on each visit)
    # ``body`` written as it is in pieces of ``stream_bytes``, one every ``delay_ms``, then the connection
    # closes (a slow server dripping its answer).
    DRIP = "drip"
    STALL = "stall"  # ``body`` written as it is, then nothing more and the connection stays open


@dataclass(slots=True)
class Route:
    """One precomputed HTTP response (or a behaviour) for a host and path."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    action: Action = Action.RESPOND
    delay_ms: int = 0
    stream_bytes: int = 0
    _wire: dict[tuple[bool, bool], bytes] = field(default_factory=dict, repr=False)

    def wire(self, keep_alive: bool, head: bool) -> bytes:
        """The full response bytes (cached per connection mode and method)."""
        key = (keep_alive, head)
        cached = self._wire.get(key)
        if cached is not None:
            return cached
        lines = [f"HTTP/1.1 {self.status} {REASON_PHRASES.get(self.status, 'Status')}"]
        lines.append("Server: simnet")
        if self.content_type:
            lines.append(f"Content-Type: {self.content_type}")
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: " + ("keep-alive" if keep_alive else "close"))
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head:
            raw += self.body
        self._wire[key] = raw
        return raw


REASON_PHRASES: dict[int, str] = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    421: "Misdirected Request",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class TlsMode(enum.StrEnum):
    """Which certificate chain (or which protocol) a host presents on its HTTPS port."""

    OK = "ok"  # issued by the simnet intermediate CA for the host; leaf + intermediate sent
    EXPIRED = "expired"  # issued by the CA, validity ended
    SELF_SIGNED = "self_signed"
    WRONG_HOST = "wrong_host"  # issued by the CA for another name
    # The leaf alone, without the intermediate that issued it; the leaf names the intermediate's URL
    # (AIA caIssuers), as browsers use to complete such chains.
    INCOMPLETE_CHAIN = "incomplete_chain"
    # Only TLS 1.0 (old servers). The protocol version is fixed per listening socket (SNI cannot change
    # it), so every host of such an address is served this way.
    LEGACY = "legacy"
    # Only 国密 TLCP (GM/T 0024, SM2 certificates): no TLS at all; a listener of its own as well.
    SM2_ONLY = "sm2_only"


# Modes that need a listener of their own (one per address): every host of the address is served so.
LISTENER_MODES = frozenset({TlsMode.LEGACY, TlsMode.SM2_ONLY})


@dataclass(slots=True)
class HostSite:
    """One virtual host of the web farm (``host`` is the lower-case A-label form)."""

    host: str
    address: str
    routes: dict[str, Route] = field(default_factory=dict)
    tls: TlsMode = TlsMode.OK
    # Routes for HTTPS requests when they differ (an http:// to https:// redirect), else None.
    tls_routes: dict[str, Route] | None = None
    # A behaviour applied to every path of the host (slow, hang, reset, block...), or None.
    default: Route | None = None
    # False: the host answers HTTPS only; a plain HTTP request for it is reset.
    plain_http: bool = True


BAN_STYLES = ("page200", "429", "block200")


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """How one server address treats its clients: CC protection (集约化平台的访问频率限制) and latency.

    The farm counts requests per *client address* over every site of the server address (a platform's
    protection sees the client, not the ``Host``). More than ``cc_per_min`` requests per minute,
    measured over a sliding window of ``window_s`` seconds (the limit within the window is
    ``cc_per_min * window_s / 60``), start a ban of ``ban_s`` seconds: the request over the limit and
    every request of the client during the ban get the ban answer (``ban_style``): ``page200`` the CC
    notice of :func:`simnet.shields.rate_limited` at 200 (访问过于频繁), ``429`` the same notice with
    ``Retry-After`` (the seconds left), ``block200`` 宝塔's block page at 200. Requests during a ban do
    not count towards the next window; the window starts empty when the ban ends.
    ``latency_ms`` is added before every answer of the address: a fixed delay or a ``(lo, hi)`` range
    drawn per request."""

    cc_per_min: int = 0  # 0: no limit (the address is only measured)
    window_s: float = 60.0
    ban_s: float = 600.0
    ban_style: str = "page200"
    latency_ms: int | tuple[int, int] = 0

    def __post_init__(self) -> None:
        if self.cc_per_min < 0:
            raise ValueError(f"cc_per_min must be >= 0, not {self.cc_per_min}")
        if self.window_s <= 0 or self.ban_s < 0:
            raise ValueError("window_s must be > 0 and ban_s >= 0")
        if self.ban_style not in BAN_STYLES:
            raise ValueError(f"ban_style must be one of {', '.join(BAN_STYLES)}, not {self.ban_style!r}")
        lat = self.latency_ms
        if isinstance(lat, (list, tuple)):
            if len(lat) != 2 or not 0 <= lat[0] <= lat[1]:
                raise ValueError(f"latency_ms range must be (lo, hi) with 0 <= lo <= hi, not {lat!r}")
            object.__setattr__(self, "latency_ms", (int(lat[0]), int(lat[1])))
        elif lat < 0:
            raise ValueError(f"latency_ms must be >= 0, not {lat}")

    @property
    def limit(self) -> int:
        """Requests allowed within one window (0: no limit)."""
        if not self.cc_per_min:
            return 0
        return max(1, round(self.cc_per_min * self.window_s / 60))

    def as_dict(self) -> dict[str, Any]:
        lat = self.latency_ms
        return {
            "cc_per_min": self.cc_per_min,
            "window_s": self.window_s,
            "ban_s": self.ban_s,
            "ban_style": self.ban_style,
            "latency_ms": list(lat) if isinstance(lat, tuple) else lat,
        }

    @classmethod
    def coerce(cls, value: AddressPolicy | Mapping[str, Any]) -> AddressPolicy:
        """A policy from itself or from a plain mapping (options, JSON)."""
        if isinstance(value, AddressPolicy):
            return value
        known = {"cc_per_min", "window_s", "ban_s", "ban_style", "latency_ms"}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown policy field(s): {', '.join(sorted(unknown))}")
        fields = dict(value)
        if "ban_style" in fields:
            fields["ban_style"] = str(fields["ban_style"])  # YAML reads 429 as a number
        if isinstance(fields.get("latency_ms"), list):
            fields["latency_ms"] = tuple(fields["latency_ms"])
        return cls(**fields)


def policies_of(universe: object) -> dict[str, AddressPolicy]:
    """The address policies a universe carries (``policies`` attribute; none: empty)."""
    found = getattr(universe, "policies", None)
    return dict(found) if isinstance(found, Mapping) else {}


class Universe(Protocol):
    """What the servers ask."""

    def addresses(self) -> list[str]:
        """Every loopback address the web farm must listen on."""
        ...

    def dns(self, name: str) -> DnsEntry | None:
        """The entry for ``name`` (A-label, lower case, no trailing dot), or None if it does not exist."""
        ...

    def host(self, name: str) -> HostSite | None:
        """The virtual host ``name`` (A-label, lower case, no port), or None."""
        ...

    def default_host(self, address: str) -> HostSite | None:
        """What an address serves for a ``Host`` it does not know (a platform's portal), or None (404)."""
        ...


NOT_FOUND = Route(status=404, body=b"<html><body><h1>404 Not Found</h1></body></html>")


def lookup_route(site: HostSite, target: str, tls: bool = False) -> Route:
    """The route for a request target: exact match, then the path without query, then the host default."""
    if site.default is not None:
        return site.default
    routes = site.tls_routes if tls and site.tls_routes is not None else site.routes
    route = routes.get(target)
    if route is not None:
        return route
    path, _, query = target.partition("?")
    route = routes.get(path)
    if route is not None:
        return route
    if query:
        # Verification pages are keyed by their id only: parameter order and &amp; vary in the wild.
        for part in query.replace("&amp;", "&").split("&"):
            if part.startswith("id="):
                route = routes.get(f"{path}?id={part[3:].upper()}")
                if route is not None:
                    return route
    if path.endswith("/"):
        route = routes.get(path + "index.html")
        if route is not None:
            return route
    return NOT_FOUND


@dataclass
class StaticUniverse:
    """A universe held in dictionaries (catalogue, baoding, spec files)."""

    names: dict[str, DnsEntry] = field(default_factory=dict)
    hosts: dict[str, HostSite] = field(default_factory=dict)
    extra_addresses: set[str] = field(default_factory=set)
    defaults: dict[str, HostSite] = field(default_factory=dict)  # address -> its default virtual host
    policies: dict[str, AddressPolicy] = field(default_factory=dict)  # address -> CC limit, latency

    def addresses(self) -> list[str]:
        found = {h.address for h in self.hosts.values()} | self.extra_addresses | set(self.defaults)
        return sorted(found, key=_addr_key)

    def dns(self, name: str) -> DnsEntry | None:
        return self.names.get(name)

    def host(self, name: str) -> HostSite | None:
        return self.hosts.get(name)

    def default_host(self, address: str) -> HostSite | None:
        return self.defaults.get(address)

    def add_dns(self, entries: Iterable[DnsEntry]) -> None:
        for e in entries:
            self.names[e.name] = e

    def add_host(self, site: HostSite) -> None:
        existing = self.hosts.get(site.host)
        if existing is None:
            self.hosts[site.host] = site
        else:
            # Several builders may contribute pages to one host (the CONAC services).
            existing.routes.update(site.routes)


def _addr_key(addr: str) -> tuple[int, ...]:
    return tuple(int(p) for p in addr.split("."))
