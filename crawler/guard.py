"""Address guard: a registry entry must not make the crawler fetch an internal address.

Only globally routable addresses are fetched. Loopback is allowed when the configuration says so
(``allow_private``: the simulated internet lives on 127.0.0.0/8); further networks can be allowed
explicitly (``allow_networks``). Everything else that is private, link-local (cloud metadata at
169.254.169.254), multicast, unspecified or reserved is refused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressGuard:
    """Decides whether an IP address may be contacted."""

    def __init__(self, allow_loopback: bool = False, allow_networks: Iterable[str] = ()) -> None:
        nets: list[IpNetwork] = list(_LOOPBACK) if allow_loopback else []
        for raw in allow_networks:
            nets.append(ipaddress.ip_network(raw.strip(), strict=False))
        self._allowed = tuple(nets)
        self._check = lru_cache(maxsize=65536)(self._refusal)

    def refusal(self, ip: str) -> str | None:
        """Why ``ip`` must not be contacted (``"private"``, ``"link-local"`` …), or None if it may."""
        return self._check(ip)

    def _refusal(self, ip: str) -> str | None:
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return "invalid"
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in net for net in self._allowed):
            return None
        if addr.is_loopback:
            return "loopback"
        if addr.is_unspecified:
            return "unspecified"
        if addr.is_link_local:
            return "link-local"
        if addr.is_multicast:
            return "multicast"
        if addr.is_reserved:
            return "reserved"
        if addr.is_private:
            return "private"
        if not addr.is_global:
            return "reserved"
        return None
