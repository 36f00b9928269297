"""Sample worlds: ``catalogue`` (one site per scenario), ``baoding`` (附件1 of the seed), ``generated``,
``hostile`` (servers that send malformed answers: the crawler's fuzz test), ``province`` (sites on
consolidation platforms behind CC limits)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simnet.build import Built, infrastructure
from simnet.conac import RED_PAGE_HOST
from simnet.model import StaticUniverse, Universe
from simnet.output import RegistryWriter, TruthWriter, write_offices, write_xlsx

SAMPLES = ("catalogue", "baoding", "generated", "hostile", "province")


@dataclass
class Sample:
    """A world ready to serve and the files that describe it."""

    name: str
    universe: Universe
    registry_path: Path
    offices_path: Path
    truth_path: Path
    xlsx_path: Path | None = None
    red_page_hosts: list[str] = field(default_factory=lambda: [RED_PAGE_HOST])
    sites: int = 0


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def assemble(
    name: str,
    workdir: Path,
    built: list[Built],
    offices: list[dict[str, str]],
    meta: dict[str, Any],
    xlsx: bool = False,
) -> Sample:
    """Write registry, offices and ground truth, and index everything into a static universe."""
    workdir.mkdir(parents=True, exist_ok=True)
    universe = StaticUniverse()
    infra = infrastructure(today())
    universe.add_dns(infra.dns)
    for h in infra.hosts:
        universe.add_host(h)
    universe.defaults.update(infra.defaults)
    reg = RegistryWriter(workdir / f"{name}-registry.csv")
    truth = TruthWriter(workdir / f"{name}-truth.json", meta)
    for b in built:
        universe.add_dns(b.dns)
        for h in b.hosts:
            universe.add_host(h)
        universe.defaults.update(b.defaults)
        reg.write(b.rows)
        truth.add(b)
    reg.close()
    truth.close()
    offices_path = workdir / f"{name}-offices.csv"
    write_offices(offices_path, offices)
    xlsx_path = workdir / f"{name}-registry.xlsx"
    has_xlsx = xlsx and write_xlsx(xlsx_path, reg.path, offices_path)
    return Sample(
        name,
        universe,
        reg.path,
        offices_path,
        truth.path,
        xlsx_path if has_xlsx else None,
        sites=truth.counts["sites"],
    )


def load(name: str, workdir: Path, **options: Any) -> Sample:
    """Build sample ``name`` into ``workdir``."""
    xlsx = bool(options.pop("xlsx", False))
    if name == "catalogue":
        from simnet.samples.catalogue import build_catalogue

        return build_catalogue(workdir, xlsx=xlsx)
    if name == "baoding":
        from simnet.samples.baoding import build_baoding

        return build_baoding(workdir, xlsx=xlsx)
    if name == "generated" or name.startswith("generated:"):
        from simnet.samples.generated import GenConfig, build_generated

        n = int(name.split(":", 1)[1]) if ":" in name else int(options.pop("sites", 1000))
        return build_generated(workdir, GenConfig(sites=n, **options))
    if name == "hostile" or name.startswith("hostile:"):
        from simnet.samples.hostile import HostileConfig, load_hostile

        n = int(name.split(":", 1)[1]) if ":" in name else int(options.pop("sites", 2000))
        return load_hostile(workdir, HostileConfig(sites=n, **options))
    if name == "province" or name.startswith("province:"):
        from simnet.samples.province import ProvinceConfig, build_province

        n = int(name.split(":", 1)[1]) if ":" in name else int(options.pop("sites", 20_000))
        return build_province(workdir, ProvinceConfig(sites=n, **options))
    raise ValueError(
        f"unknown sample {name!r}; choose one of {', '.join(SAMPLES)} (generated:N, hostile:N, province:N)"
    )
