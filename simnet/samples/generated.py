"""Generated registries of any size (10 … 1,000,000 sites) for benchmarks, served in constant memory.

Site ``i`` is a pure function of ``(config, i)``: its unit, scenario, latency and names. The registry
and ground truth are streamed to disk; the nameserver and web farm rebuild a site from any of its names
(``www.g{i}.…``, ``保定市测试单位{i}.政务``, CDN aliases, badge script paths, verification ids) and keep
recently used sites in a bounded cache.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import idna

from simnet import scenarios as sc
from simnet.build import (
    CONAC_ADDR,
    LEGACY_TLS_ADDR,
    MIIT_ADDR,
    PARKING_ADDR,
    PKI_ADDR,
    PLATFORM_ADDR,
    REDPAGE_ADDR,
    SM2_ADDR,
    TLS_ONLY_ADDR,
    Built,
    SiteSpec,
    UnitSpec,
    build_site,
    cn_domain_for,
    infrastructure,
    unit_truth,
)
from simnet.conac import BSZS_HOST, DCS_HOST, RED_PAGE_HOST
from simnet.ident import INSTITUTION, PARTY, serial_of_verify_id, stable_int
from simnet.model import DnsEntry, HostSite, Route, StaticUniverse
from simnet.output import RegistryWriter, TruthWriter, write_offices
from simnet.samples import Sample, today
from simnet.samples.baoding import TABLE, office_prefix, offices

SERIAL_BASE = 100_000
FOREIGN = 50_000_000
CACHE = 20_000


@dataclass
class GenConfig:
    """Size, seed and the latency / failure distribution of a generated farm."""

    sites: int = 1000
    seed: int = 1
    delay_ms: int = 0  # latency added to every page of every site
    jitter_ms: int = 0  # plus a per-site uniform 0..jitter_ms
    failure_rate: float = 0.1  # share of sites drawn from the failure scenarios
    addresses: int = 64  # loopback addresses the sites are spread over
    # Optional weights per failure scenario name (default: all failure scenarios equally).
    mix: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.sites <= 10_000_000:
            raise ValueError(f"sites must be between 1 and 10,000,000, not {self.sites}")
        if not 0 <= self.failure_rate <= 1:
            raise ValueError(f"failure_rate must be within 0..1, not {self.failure_rate}")
        unknown = set(self.mix) - set(sc.BY_NAME)
        if unknown:
            raise ValueError(f"unknown scenario(s) in mix: {', '.join(sorted(unknown))}")

    @property
    def sample_name(self) -> str:
        return "generated"

    def address_of(self, i: int) -> str:
        """The loopback address site ``i`` lives on."""
        a = i % self.addresses
        return f"127.63.{a // 250}.{a % 250 + 1}"

    def site_addresses(self) -> list[str]:
        """Every address some site lives on (the farm listens on these and the infrastructure's)."""
        return [self.address_of(a) for a in range(min(self.addresses, self.sites))]

    def delay_of(self, i: int) -> int:
        """Latency added to every page of site ``i``."""
        jitter = stable_int(self.seed, i, "jitter") % (self.jitter_ms + 1) if self.jitter_ms else 0
        return self.delay_ms + jitter

    def meta(self) -> dict[str, Any]:
        """The ``config`` of the ground truth's meta."""
        return dict(self.__dict__)


def _choose(cfg: GenConfig, i: int, kind: str) -> sc.Scenario:
    r = stable_int(cfg.seed, i, "fail") / 2**64
    base = "compliant.party" if kind == PARTY else "compliant.institution"
    if r >= cfg.failure_rate:
        return sc.Scenario(base, kind=kind, site_code="meta_and_footer")
    pool = [
        (s, cfg.mix.get(s.name, 1.0 if not cfg.mix else 0.0))
        for s in sc.FAILURE_SCENARIOS
        if not (s.badge == "wrong_kind" and kind == PARTY) and not s.site_on_cn
    ]
    pool = [(s, w) for s, w in pool if w > 0]
    total = sum(w for _, w in pool)
    x = stable_int(cfg.seed, i, "which") / 2**64 * total
    for s, w in pool:
        x -= w
        if x < 0:
            return _with_kind(s, kind)
    return _with_kind(pool[-1][0], kind)


def _with_kind(s: sc.Scenario, kind: str) -> sc.Scenario:
    return replace(s, kind=kind)


def site_spec(cfg: GenConfig, i: int) -> SiteSpec:
    """The description of site ``i``."""
    row = TABLE[i % len(TABLE)]
    kind = PARTY if stable_int(cfg.seed, i, "kind") % 3 == 0 else INSTITUTION
    s = _choose(cfg, i, kind)
    unit = UnitSpec(f"{office_prefix(row)}测试单位{i}", kind, row.code, SERIAL_BASE + i)
    d = cn_domain_for(unit, s.domain, today())
    d.dns, d.usage = s.dns, s.usage
    if s.domain == "expired":
        d.dns = "nxdomain"
    tld = ".gov.cn" if kind == PARTY or s.gov_cn_institution else ".cn"
    return SiteSpec(
        key=f"gen-{i}",
        unit=unit,
        scenario=s,
        site_name=f"{unit.name}网站",
        en_host=f"www.g{i}{tld}",
        domains=[d],
        address=cfg.address_of(i),
        serial=SERIAL_BASE + i,
        badge_status=s.badge_status,
        badge_prefix=("05", "106", f"{i % len(TABLE):04d}"),
        delay_ms=cfg.delay_of(i),
    )


def build_index(cfg: GenConfig, i: int) -> Built:
    spec = site_spec(cfg, i)
    b = build_site(spec, today())
    b.units.append(unit_truth(spec.key, spec.unit, spec.domains))
    return b


_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[int], int]], ...] = (
    (re.compile(r"^www\.g(\d+)\."), lambda n: n),
    (re.compile(r"^www\.(?:new|portal|hebing)(\d+)\.gov\.cn$"), lambda n: n - SERIAL_BASE),
    (re.compile(r"^(?:s|edge|loop)(\d+)\.cdn-[ab]\.com$"), lambda n: n // 10 - SERIAL_BASE),
    (re.compile(r"^www\.qita(\d+)\.gov\.cn$"), lambda n: n // 10 - SERIAL_BASE),
)
_CN = re.compile(r"测试单位(\d+)")
_SCRIPT = re.compile(r"/CA\d{9}(\d{8})\d{4}\.js$")


class GeneratedUniverse:
    """A universe computed from names; recently used sites are cached."""

    def __init__(self, cfg: GenConfig) -> None:
        self.cfg = cfg
        self.static = StaticUniverse()
        infra = infrastructure(today())
        self.static.add_dns(infra.dns)
        for h in infra.hosts:
            self.static.add_host(h)
        self.static.defaults.update(infra.defaults)
        self._cache: OrderedDict[int, tuple[dict[str, DnsEntry], dict[str, HostSite]]] = OrderedDict()
        for name in (DCS_HOST, BSZS_HOST, RED_PAGE_HOST):
            shared = self.static.hosts[name]
            shared.routes = _LazyRoutes(self, dict(shared.routes), name)

    def addresses(self) -> list[str]:
        own = self.cfg.site_addresses()
        infra = [CONAC_ADDR, REDPAGE_ADDR, PARKING_ADDR, MIIT_ADDR, PKI_ADDR, LEGACY_TLS_ADDR, SM2_ADDR]
        return [*own, *infra, PLATFORM_ADDR, TLS_ONLY_ADDR]

    def site(self, i: int) -> tuple[dict[str, DnsEntry], dict[str, HostSite]] | None:
        if not 0 <= i < self.cfg.sites:
            return None
        got = self._cache.get(i)
        if got is not None:
            self._cache.move_to_end(i)
            return got
        b = self.build(i)
        names = {e.name: e for e in b.dns}
        hosts: dict[str, HostSite] = {}
        for h in b.hosts:
            if h.host in hosts:
                hosts[h.host].routes.update(h.routes)
            else:
                hosts[h.host] = h
        self._cache[i] = (names, hosts)
        if len(self._cache) > CACHE:
            self._cache.popitem(last=False)
        return names, hosts

    def build(self, i: int) -> Built:
        """Everything site ``i`` contributes (a subclass serves other sites from the same machinery)."""
        return build_index(self.cfg, i)

    def index_of(self, name: str) -> int | None:
        for pattern, to_index in _PATTERNS:
            m = pattern.match(name)
            if m:
                return to_index(int(m.group(1)))
        if "xn--" in name:
            try:
                m2 = _CN.search(idna.decode(name))
            except idna.IDNAError:
                return None
            if m2:
                return int(m2.group(1))
        return None

    def dns(self, name: str) -> DnsEntry | None:
        found = self.static.dns(name)
        if found is not None:
            return found
        i = self.index_of(name)
        got = self.site(i) if i is not None else None
        return got[0].get(name) if got else None

    def default_host(self, address: str) -> HostSite | None:
        return self.static.default_host(address)

    def host(self, name: str) -> HostSite | None:
        found = self.static.host(name)
        if found is not None:
            return found
        i = self.index_of(name)
        got = self.site(i) if i is not None else None
        return got[1].get(name) if got else None


class _LazyRoutes(dict[str, Route]):
    """Routes of the shared CONAC hosts (dcs, bszs, the red-page platform), built on demand from the
    badge serial or the domain name in the request path."""

    def __init__(self, universe: GeneratedUniverse, static: dict[str, Route], host: str) -> None:
        super().__init__(static)
        self.universe = universe
        self.host = host

    def get(self, key: str, default: Route | None = None) -> Route | None:  # type: ignore[override]
        found = super().get(key)
        if found is not None:
            return found
        serial: int | None = None
        index: int | None = None
        if self.host == DCS_HOST:
            m = _SCRIPT.search(key)
            serial = int(m.group(1)) if m else None
        elif self.host == RED_PAGE_HOST:
            index = self.universe.index_of(key.strip("/").split("/", 1)[0])
        elif "?id=" in key:
            serial = serial_of_verify_id(key.rsplit("=", 1)[1])
        if serial is not None:
            index = serial % FOREIGN - SERIAL_BASE
        if index is None:
            return default
        got = self.universe.site(index)
        if got is None:
            return default
        site = got[1].get(self.host)
        return site.routes.get(key, default) if site else default


def build_generated(workdir: Path, cfg: GenConfig, universe: GeneratedUniverse | None = None) -> Sample:
    """Stream the registry and ground truth of ``cfg`` into ``workdir``; serve it from names."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = f"{cfg.sample_name}-{cfg.sites}"
    reg = RegistryWriter(workdir / f"{name}-registry.csv")
    meta = {
        "sample": cfg.sample_name,
        "as_of": today().isoformat(),
        "red_page_hosts": ["hy.conac.cn"],
        "config": cfg.meta(),
    }
    with TruthWriter(workdir / f"{name}-truth.json", meta) as truth:
        for i in range(cfg.sites):
            b = build_index(cfg, i)
            reg.write(b.rows)
            truth.add(b)
    reg.close()
    offices_path = workdir / f"{name}-offices.csv"
    write_offices(offices_path, offices())
    universe = universe or GeneratedUniverse(cfg)
    return Sample(cfg.sample_name, universe, reg.path, offices_path, truth.path, sites=cfg.sites)
