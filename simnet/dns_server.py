"""The authoritative nameserver of simnet: real DNS packets over UDP and TCP (dnspython messages).

It answers for the zones in :data:`ZONES` from a :class:`~simnet.model.Universe`: A/AAAA/TXT records,
CNAME chains (followed inside our zones, as an authoritative server does), NXDOMAIN, NODATA, and the
per-name behaviours SERVFAIL, REFUSED, no answer, truncated UDP answers and slow answers. Names outside
the zones are REFUSED.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from simnet.model import DnsBehaviour, DnsEntry, Universe

log = logging.getLogger(__name__)

ZONES: tuple[str, ...] = (
    "xn--zfr164b.cn",
    "xn--55qw42g.cn",
    "xn--zfr164b",
    "xn--55qw42g",
    "conac.cn",
    "gov.cn",
    "cn",
    "com",
)
TTL = 300
MAX_CHAIN = 16


def zone_of(name: str) -> str | None:
    """The most specific zone that contains ``name``, or None."""
    for zone in ZONES:  # ordered most specific first
        if name == zone or name.endswith("." + zone):
            return zone
    return None


@dataclass(slots=True)
class Outcome:
    """How to answer one query."""

    response: dns.message.Message | None  # None: do not answer at all
    delay_s: float = 0.0
    force_tc: bool = False


def _soa(zone: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(
        zone + ".",
        TTL,
        "IN",
        "SOA",
        f"ns1.conac.cn. hostmaster.conac.cn. 2015033101 3600 600 86400 {TTL}",
    )


def answer(universe: Universe, query: dns.message.Message) -> Outcome:
    """Decide the response to ``query``."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    response.flags &= ~dns.flags.RA
    if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
        response.set_rcode(dns.rcode.NOTIMP)
        return Outcome(response)
    q = query.question[0]
    name = q.name.to_text(omit_final_dot=True).lower()
    zone = zone_of(name)
    if zone is None:
        response.flags &= ~dns.flags.AA
        response.set_rcode(dns.rcode.REFUSED)
        return Outcome(response)
    entry = universe.dns(name)
    outcome = Outcome(response)
    if entry is not None:
        b = entry.behaviour
        if b == DnsBehaviour.DROP:
            return Outcome(None)
        if b == DnsBehaviour.SERVFAIL:
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.SERVFAIL)
            return outcome
        if b == DnsBehaviour.REFUSED:
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.REFUSED)
            return outcome
        if b == DnsBehaviour.NXDOMAIN:
            entry = None
        elif b == DnsBehaviour.SLOW:
            outcome.delay_s = entry.delay_ms / 1000
        elif b == DnsBehaviour.TRUNCATE:
            outcome.force_tc = True
    if entry is None:
        if name == zone:
            _apex(response, zone, q.rdtype)
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(_soa(zone))
        return outcome
    _fill(universe, response, entry, q.rdtype, zone)
    return outcome


def _apex(response: dns.message.Message, zone: str, rdtype: dns.rdatatype.RdataType) -> None:
    if rdtype in (dns.rdatatype.SOA, dns.rdatatype.ANY):
        response.answer.append(_soa(zone))
    if rdtype in (dns.rdatatype.NS, dns.rdatatype.ANY):
        response.answer.append(
            dns.rrset.from_text_list(zone + ".", TTL, "IN", "NS", [f"ns{i}.conac.cn." for i in range(1, 6)])
        )
    if not response.answer:
        response.authority.append(_soa(zone))


def _fill(
    universe: Universe,
    response: dns.message.Message,
    entry: DnsEntry,
    rdtype: dns.rdatatype.RdataType,
    zone: str,
) -> None:
    seen: set[str] = set()
    current: DnsEntry | None = entry
    while current is not None:
        owner = current.name + "."
        seen.add(current.name)
        if current.cname and rdtype != dns.rdatatype.CNAME:
            response.answer.append(dns.rrset.from_text(owner, TTL, "IN", "CNAME", current.cname + "."))
            target = current.cname.lower()
            if target in seen or len(seen) >= MAX_CHAIN:
                return  # a loop: the chain so far shows it
            if zone_of(target) is None:
                return  # outside our zones: the client follows it elsewhere
            nxt = universe.dns(target)
            if nxt is None or nxt.behaviour == DnsBehaviour.NXDOMAIN:
                response.set_rcode(dns.rcode.NXDOMAIN)
                response.authority.append(_soa(zone_of(target) or zone))
                return
            current = nxt
            continue
        records: list[tuple[str, list[str]]] = []
        if rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            records.append(("A", current.a))
        if rdtype in (dns.rdatatype.AAAA, dns.rdatatype.ANY):
            records.append(("AAAA", current.aaaa))
        if rdtype in (dns.rdatatype.TXT, dns.rdatatype.ANY):
            records.append(("TXT", [f'"{t}"' for t in current.txt]))
        if rdtype == dns.rdatatype.CNAME and current.cname:
            records.append(("CNAME", [current.cname + "."]))
        added = False
        for kind, values in records:
            if values:
                response.answer.append(dns.rrset.from_text_list(owner, TTL, "IN", kind, values))
                added = True
        if not added and not response.answer:
            response.authority.append(_soa(zone_of(current.name) or zone))  # NODATA
        return


def to_wire(outcome: Outcome, query: dns.message.Message, udp: bool) -> bytes:
    """Serialise, truncating for UDP when the answer does not fit or the name forces TCP."""
    response = outcome.response
    assert response is not None
    limit = 65535
    if udp:
        limit = max(512, query.payload if query.edns >= 0 else 512)
    if udp and outcome.force_tc:
        return _truncated(response)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        return _truncated(response)


def _truncated(response: dns.message.Message) -> bytes:
    response.answer = []
    response.authority = []
    response.additional = []
    response.flags |= dns.flags.TC
    return response.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # a malformed packet gets no answer, as from most servers
            log.debug("malformed DNS query from %s", addr)
            return
        outcome = answer(self.universe, query)
        if outcome.response is None:
            return
        wire = to_wire(outcome, query, udp=True)
        transport = self.transport
        if transport is None:
            return
        if outcome.delay_s:
            asyncio.get_running_loop().call_later(outcome.delay_s, _send_udp, transport, wire, addr)
        else:
            transport.sendto(wire, addr)


def _send_udp(transport: asyncio.DatagramTransport, wire: bytes, addr: tuple[str, int]) -> None:
    if not transport.is_closing():
        transport.sendto(wire, addr)


class _Tcp(asyncio.Protocol):
    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 2:
            (size,) = struct.unpack(">H", self.buf[:2])
            if len(self.buf) < 2 + size:
                return
            packet, self.buf = self.buf[2 : 2 + size], self.buf[2 + size :]
            try:
                query = dns.message.from_wire(packet)
            except Exception:
                if self.transport is not None:
                    self.transport.close()
                return
            outcome = answer(self.universe, query)
            if outcome.response is None:
                continue  # hold the connection: the client times out
            wire = to_wire(outcome, query, udp=False)
            framed = struct.pack(">H", len(wire)) + wire
            if outcome.delay_s:
                asyncio.get_running_loop().call_later(outcome.delay_s, self._send, framed)
            else:
                self._send(framed)

    def _send(self, framed: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(framed)


async def serve_dns(
    universe: Universe, host: str, port: int
) -> tuple[asyncio.DatagramTransport, asyncio.Server, int]:
    """Listen on UDP and TCP ``host:port`` (port 0: a free port usable for both); returns the port."""
    loop = asyncio.get_running_loop()
    for _attempt in range(20):
        udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(universe), local_addr=(host, port))
        actual = udp.get_extra_info("sockname")[1]
        try:
            tcp = await loop.create_server(lambda: _Tcp(universe), host, actual, reuse_address=True)
        except OSError:
            udp.close()
            if port:
                raise
            continue
        return udp, tcp, int(actual)
    raise OSError(f"no free port for DNS on {host}")
