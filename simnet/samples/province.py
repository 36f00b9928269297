"""A province as a crawler meets it: most sites on a few consolidation platforms (集约化平台) behind CC
protection, the rest on servers of their own, every address with its latency.

Sites are those of the ``generated`` sample (site ``i`` is a pure function of the configuration and
``i``: unit, scenario, names ``www.g{i}.gov.cn`` / ``…测试单位{i}.政务``, ground truth), placed
differently: a ``platform_share`` of them on ``platforms`` addresses in 127.66.0.0/16 (as virtual hosts;
an unknown ``Host`` there gets the platform's portal), the platforms' sizes skewed like real ones (the
provincial platform hosts thousands, a city's a few dozen: weight ``1 / rank ** platform_skew``), the
others each on an address of its own in 127.67.0.0/16. Every site address gets an
:class:`~simnet.model.AddressPolicy`: a latency drawn once per address from ``latency_ms`` and the CC
limit ``cc_per_min`` (per client, over all sites of the address); the CONAC hosts (``dcs``, ``bszs`` and
the beacons share :data:`~simnet.build.CONAC_ADDR`) get ``conac_cc_per_min`` when it is set.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simnet.build import CONAC_ADDR, platform_portal
from simnet.ident import stable_int
from simnet.model import BAN_STYLES, AddressPolicy
from simnet.samples import Sample
from simnet.samples.generated import GenConfig, GeneratedUniverse, build_generated

MAX_SITES = 1_000_000
OWN_CAP = 6000  # own addresses at most (two listening sockets each): beyond, non-platform sites share


def platform_address(p: int) -> str:
    return f"127.66.{p // 250}.{p % 250 + 1}"


def own_address(k: int) -> str:
    return f"127.67.{k // 250}.{k % 250 + 1}"


Latency = int | tuple[int, int]


@dataclass
class ProvinceConfig(GenConfig):
    """Size, placement, latency and CC limits of a province (see the module's doc)."""

    sites: int = 20_000
    platform_share: float = 0.7  # share of sites on platform addresses
    platforms: int = 50
    platform_skew: float = 1.0  # 0: platforms of equal size
    own_addresses: int = 0  # addresses of the other sites; 0: one each (at most OWN_CAP)
    latency_ms: Latency = (100, 800)  # per address: fixed, or drawn once per address from (lo, hi)
    cc_per_min: int = 120  # per client and site address; 0: no limit
    window_s: float = 60.0
    ban_s: float = 600.0
    ban_style: str = "page200"  # page200 | 429 | block200
    conac_cc_per_min: int = 0  # the CONAC hosts' limit; 0: none
    conac_ban_s: float | None = None  # None: ban_s
    conac_latency_ms: Latency = 0
    _place: array[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sites > MAX_SITES:
            raise ValueError(f"province sites must be at most {MAX_SITES:,}, not {self.sites}")
        if not 0 <= self.platform_share <= 1:
            raise ValueError(f"platform_share must be within 0..1, not {self.platform_share}")
        if not 1 <= self.platforms <= 250 * 256:
            raise ValueError(f"platforms must be between 1 and 64000, not {self.platforms}")
        if self.ban_style not in BAN_STYLES:
            raise ValueError(f"ban_style must be one of {', '.join(BAN_STYLES)}, not {self.ban_style!r}")
        if self.own_addresses < 0:
            raise ValueError("own_addresses must be >= 0")
        self.latency_ms = _latency(self.latency_ms)
        self.conac_latency_ms = _latency(self.conac_latency_ms)
        AddressPolicy(self.cc_per_min, self.window_s, self.ban_s, self.ban_style, self.latency_ms)
        # Placement of every site: p >= 0 platform p, -(k + 1) own address k (4 bytes a site).
        weights = [1 / (p + 1) ** self.platform_skew for p in range(self.platforms)]
        cumulative: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            cumulative.append(total)
        place = array("i", bytes(4 * self.sites))
        own = 0
        for i in range(self.sites):
            if stable_int(self.seed, i, "platform") / 2**64 < self.platform_share:
                x = stable_int(self.seed, i, "which-platform") / 2**64 * total
                place[i] = min(bisect.bisect_right(cumulative, x), self.platforms - 1)
            else:
                place[i] = -(own + 1)
                own += 1
        cap = self.own_addresses or OWN_CAP
        if own > cap:
            for i in range(self.sites):
                if place[i] < 0:
                    place[i] = -((-place[i] - 1) % cap + 1)
        self._place = place

    @property
    def sample_name(self) -> str:
        return "province"

    def address_of(self, i: int) -> str:
        p = self._place[i]
        return platform_address(p) if p >= 0 else own_address(-p - 1)

    def placement(self) -> tuple[dict[str, int], dict[str, int]]:
        """(sites per platform address, sites per own address), as placed (failure scenarios that need
        an address of their shape, e.g. refused or TLS 1.0 only, are served elsewhere)."""
        platforms = {platform_address(p): 0 for p in range(self.platforms)}
        own: dict[str, int] = {}
        for p in self._place:
            if p >= 0:
                platforms[platform_address(p)] += 1
            else:
                a = own_address(-p - 1)
                own[a] = own.get(a, 0) + 1
        return platforms, own

    def site_addresses(self) -> list[str]:
        platforms, own = self.placement()
        return [*platforms, *own]

    def latency_of(self, address: str) -> int:
        lat = self.latency_ms
        if isinstance(lat, tuple):
            lo, hi = lat
            return lo + stable_int(self.seed, address, "latency") % (hi - lo + 1)
        return lat

    def policies(self) -> dict[str, AddressPolicy]:
        """The policy of every site address (and of the CONAC hosts' address when limited or slowed)."""
        out = {
            a: AddressPolicy(self.cc_per_min, self.window_s, self.ban_s, self.ban_style, self.latency_of(a))
            for a in self.site_addresses()
        }
        if self.conac_cc_per_min or self.conac_latency_ms:
            ban_s = self.ban_s if self.conac_ban_s is None else self.conac_ban_s
            out[CONAC_ADDR] = AddressPolicy(
                self.conac_cc_per_min, self.window_s, ban_s, self.ban_style, self.conac_latency_ms
            )
        return out

    def meta(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        for k in ("latency_ms", "conac_latency_ms"):
            if isinstance(out[k], tuple):
                out[k] = list(out[k])
        platforms, own = self.placement()
        out["placement"] = {
            "platform_sites": platforms,
            "own_addresses": len(own),
            "own_sites": sum(own.values()),
        }
        return out


def _latency(value: Any) -> Latency:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"latency_ms must be a number or (lo, hi), not {value!r}")
        lo, hi = int(value[0]), int(value[1])
        if not 0 <= lo <= hi:
            raise ValueError(f"latency_ms range must have 0 <= lo <= hi, not {value!r}")
        return (lo, hi)
    if int(value) < 0:
        raise ValueError(f"latency_ms must be >= 0, not {value}")
    return int(value)


class ProvinceUniverse(GeneratedUniverse):
    """The generated universe with platform portals and address policies."""

    def __init__(self, cfg: ProvinceConfig) -> None:
        super().__init__(cfg)
        for p in range(cfg.platforms):
            addr = platform_address(p)
            self.static.defaults[addr] = platform_portal(addr, f"省级政府网站集约化平台{p + 1}")
        self.policies: dict[str, AddressPolicy] = cfg.policies()


def build_province(workdir: Path, cfg: ProvinceConfig) -> Sample:
    """Stream the registry and ground truth of ``cfg`` into ``workdir``; serve it from names."""
    return build_generated(workdir, cfg, ProvinceUniverse(cfg))
