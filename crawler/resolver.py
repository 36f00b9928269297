"""One resolver for the whole scan: the DNS checks and Scrapy's connections use the same answers.

:class:`ScanResolver` asks the configured nameservers (dnspython, asyncio, UDP with TCP fallback on
truncation) for A and AAAA, follows the CNAME chain itself (so loops and dangling chains are seen, not
hidden by a library) and keeps every answer in a bounded per-scan cache: each name is resolved once,
and concurrent askers of the same name wait for the one query in flight.

:class:`TwistedNameResolver` is our ``DNS_RESOLVER`` for Scrapy: connections resolve through the same
cache, the address guard drops refused addresses, and the configured ports for bare ``http://`` and
``https://`` URLs are applied here (the simulated internet listens on unprivileged ports, and the URL,
the ``Host`` header and TLS SNI stay exactly as the registry wrote them).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import idna

log = logging.getLogger(__name__)

MAX_CNAME_HOPS = 8


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """What the nameservers said about one name (A and AAAA, CNAME chain followed).

    ``rcode`` is the final response code (``NOERROR``, ``NXDOMAIN``, ``SERVFAIL``, ``REFUSED`` …) or
    ``""`` when no server answered; ``error`` is ``timeout``, ``cname_loop``, ``cname_too_long`` or a
    short text for other failures. ``addresses`` are IPv4 then IPv6.
    """

    qname: str
    rcode: str
    error: str | None
    cname_chain: tuple[str, ...]
    addresses: tuple[str, ...]
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "qname": self.qname,
            "rcode": self.rcode,
            "error": self.error,
            "cname_chain": list(self.cname_chain),
            "addresses": list(self.addresses),
            "elapsed_ms": round(self.elapsed_ms, 2),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DnsAnswer:
        return cls(
            qname=str(raw["qname"]),
            rcode=str(raw.get("rcode", "")),
            error=raw.get("error"),
            cname_chain=tuple(raw.get("cname_chain", ())),
            addresses=tuple(raw.get("addresses", ())),
            elapsed_ms=float(raw.get("elapsed_ms", 0.0)),
        )


def system_nameservers() -> list[tuple[str, int]]:
    """The system's nameservers (``/etc/resolv.conf``), used when none are configured."""
    try:
        res = dns.resolver.Resolver()
    except dns.resolver.NoResolverConfiguration:
        return [("127.0.0.1", 53)]
    return [(str(ns), 53) for ns in res.nameservers]


def to_ascii(host: str) -> str:
    """The lower-case ASCII (A-label) form of a host name; IDNA 2008 with UTS #46 mapping."""
    host = host.strip().rstrip(".").rstrip("。").lower()
    if host.isascii():
        return host

    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        # Some names are valid only under IDNA 2003's looser rules; the DNS check still reports them.
        return host.encode("idna").decode("ascii")


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class ScanResolver:
    """Per-scan stub resolver with a bounded answer cache shared by DNS checks and fetches."""

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] = (),
        timeout: float = 5.0,
        # Subjects come unit by unit (crawler.jobs), so a name's second lookup follows its first within
        # a page of units (~1,000 names): 20,000 answers cover it with a wide margin while memory stays
        # bounded however large the registry.
        cache_size: int = 20_000,
        ipv6: bool = True,
    ) -> None:
        self.nameservers = list(nameservers) or system_nameservers()
        self.timeout = timeout
        self.cache_size = cache_size
        self.ipv6 = ipv6
        self._cache: OrderedDict[str, DnsAnswer] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[DnsAnswer]] = {}
        self.lookups = 0  # names actually sent to the nameservers (cache misses)

    def cached(self, host: str) -> DnsAnswer | None:
        return self._cache.get(to_ascii(host))

    def remember(self, answer: DnsAnswer) -> None:
        """Put an answer in the cache (also used to replay stored answers)."""
        self._cache[answer.qname] = answer
        self._cache.move_to_end(answer.qname)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def lookup(self, host: str) -> DnsAnswer:
        """The answer for ``host``: from the cache, from the query in flight, or a new query."""
        name = to_ascii(host)
        hit = self._cache.get(name)
        if hit is not None:
            self._cache.move_to_end(name)  # hot names (CONAC hosts, shared platforms) stay cached
            return hit
        pending = self._inflight.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[DnsAnswer] = asyncio.get_running_loop().create_future()
        self._inflight[name] = fut
        try:
            answer = await self._resolve(name)
        except Exception as exc:
            log.exception("lookup of %s failed", name)
            answer = DnsAnswer(name, "", f"error: {type(exc).__name__}", (), ())
        finally:
            self._inflight.pop(name, None)
        self.remember(answer)
        fut.set_result(answer)
        return answer

    async def _resolve(self, name: str) -> DnsAnswer:
        t0 = time.perf_counter()
        self.lookups += 1
        if is_ip(name):
            return DnsAnswer(name, "NOERROR", None, (), (name.strip("[]"),), 0.0)
        try:
            dns.name.from_text(name)
        except (dns.exception.DNSException, UnicodeError) as exc:
            return DnsAnswer(name, "", f"invalid name: {exc}", (), ())
        deadline = t0 + self.timeout
        if self.ipv6:
            a_res, aaaa_res = await asyncio.gather(
                self._chase(name, dns.rdatatype.A, deadline), self._chase(name, dns.rdatatype.AAAA, deadline)
            )
        else:
            a_res = await self._chase(name, dns.rdatatype.A, deadline)
            aaaa_res = a_res[0], a_res[1], a_res[2], ()
        rcode, error, chain, v4 = a_res
        _, _, _, v6 = aaaa_res
        if not v4 and v6 and error is None and rcode == "NOERROR":
            chain = aaaa_res[2]
        elapsed = (time.perf_counter() - t0) * 1000
        return DnsAnswer(name, rcode, error, chain, tuple(v4) + tuple(v6), elapsed)

    async def _chase(
        self, name: str, rdtype: dns.rdatatype.RdataType, deadline: float
    ) -> tuple[str, str | None, tuple[str, ...], tuple[str, ...]]:
        """Follow CNAMEs from ``name`` for ``rdtype``: (rcode, error, cname chain, addresses)."""
        chain: list[str] = []
        seen = {name}
        current = name
        for _ in range(MAX_CNAME_HOPS + 1):
            response, error = await self._query(current, rdtype, deadline)
            if response is None:
                return "", error, tuple(chain), ()
            rcode = dns.rcode.to_text(response.rcode())
            # Walk the answer section from the current name; a server may send the whole chain at once.
            addresses: list[str] = []
            target = dns.name.from_text(current)
            for _hop in range(MAX_CNAME_HOPS + 1):
                cname_rrset = response.get_rrset(
                    response.answer, target, dns.rdataclass.IN, dns.rdatatype.CNAME
                )
                if cname_rrset is None:
                    break
                nxt = cname_rrset[0].target.to_text(omit_final_dot=True).lower()
                chain.append(nxt)
                if nxt in seen:
                    return rcode, "cname_loop", tuple(chain), ()
                seen.add(nxt)
                target = dns.name.from_text(nxt)
            rrset = response.get_rrset(response.answer, target, dns.rdataclass.IN, rdtype)
            if rrset is not None:
                addresses = [r.to_text() for r in rrset]
                return rcode, None, tuple(chain), tuple(addresses)
            final = target.to_text(omit_final_dot=True).lower()
            if final == current or rcode != "NOERROR":
                return rcode, None, tuple(chain), ()
            current = final  # the chain leaves this server's answer: ask for its target
        return "NOERROR", "cname_too_long", tuple(chain), ()

    async def _query(
        self, name: str, rdtype: dns.rdatatype.RdataType, deadline: float
    ) -> tuple[dns.message.Message | None, str]:
        """One question to the nameservers in turn until one answers; (response, error)."""
        query = dns.message.make_query(name, rdtype)
        query.flags |= dns.flags.RD
        error = "timeout"
        # Two rounds over the servers: UDP loss is real, and one lost datagram is not an answer.
        tries = [(host, port) for _ in range(2) for host, port in self.nameservers]
        for i, (host, port) in enumerate(tries):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None, "timeout"
            # Share what is left of the lookup's time among the tries still to come.
            per_try = remaining / (len(tries) - i)
            try:
                response, _tcp = await dns.asyncquery.udp_with_fallback(
                    query, host, timeout=per_try, port=port
                )
            except dns.exception.Timeout:
                error = "timeout"
                continue
            except (OSError, dns.exception.DNSException) as exc:
                error = f"error: {type(exc).__name__}"
                continue
            return response, ""
        return None, error
