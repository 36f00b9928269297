"""The per-process scan context: configuration, the one resolver, the address guard, the port map.

Scrapy builds its DNS resolver from the *process* (before any spider exists) and the spider and
middlewares from the *crawler*; all of them reach the same objects through :func:`get_context`, so
what the DNS check saw is what the fetch used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from crawler.guard import AddressGuard
from crawler.politeness import Limiter
from crawler.resolver import ScanResolver
from crawler.tls import TlsMemory
from storage.config import Config

SETTINGS_KEY = "BADGEWATCH_CONFIG"


@dataclass
class ScanContext:
    config: Config
    resolver: ScanResolver
    guard: AddressGuard
    port_map: dict[int, int]
    # Handshakes seen (peer chains, versions) and the netlocs that needed a legacy TLS context.
    tls: TlsMemory = field(default_factory=TlsMemory)
    # Per-address politeness (crawler.politeness / crawler.shared_politeness), set by the downloader
    # middleware when the crawler starts: the fetcher takes its places before a request enters
    # Scrapy's downloader, the spider's frontier asks it which addresses may start a subject.
    politeness: Limiter | None = None

    def map_port(self, port: int) -> int:
        return self.port_map.get(port, port)


_CURRENT: ScanContext | None = None


def config_to_setting(config: Config) -> dict[str, Any]:
    return asdict(config)


def config_from_setting(raw: Any) -> Config:
    if isinstance(raw, Config):
        return raw
    if not raw:
        return Config.load()
    known = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in dict(raw).items() if k in known})


def build_context(config: Config) -> ScanContext:
    port_map = {}
    if config.http_port != 80:
        port_map[80] = config.http_port
    if config.https_port != 443:
        port_map[443] = config.https_port
    resolver = ScanResolver(config.nameserver_addrs(), timeout=config.dns_timeout_s)
    guard = AddressGuard(config.allow_private, config.allow_networks)
    return ScanContext(config, resolver, guard, port_map)


def get_context(settings: Any = None) -> ScanContext:
    """The process's scan context, built on first use from Scrapy ``settings`` (or the environment)."""
    global _CURRENT
    if _CURRENT is None:
        raw = settings.get(SETTINGS_KEY) if settings is not None else None
        _CURRENT = build_context(config_from_setting(raw))
    return _CURRENT


def reset_context(config: Config | None = None) -> ScanContext | None:
    """Start a new scan context (a new scan in the same process gets fresh answers)."""
    global _CURRENT
    _CURRENT = build_context(config) if config is not None else None
    return _CURRENT
