"""Spec files (YAML or JSON): describe your own sites, names and behaviours for simnet to serve.

See ``docs/simnet.md`` for the format. A spec may start from a sample (``base: catalogue``) and adds
sites (``sites:``), DNS entries (``dns:``) and registry rows (``registry:``). Errors name the entry and
the field that is wrong.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from simnet.build import REGISTRY_HEADERS, infrastructure
from simnet.ident import try_ascii
from simnet.model import (
    Action,
    AddressPolicy,
    DnsBehaviour,
    DnsEntry,
    HostSite,
    Route,
    StaticUniverse,
    TlsMode,
)
from simnet.output import RegistryWriter, TruthWriter, write_offices
from simnet.samples import Sample, load, today
from simnet.samples.baoding import offices

SPEC_ADDR_PREFIX = "127.64.0."
BEHAVIOURS = {"slow", "timeout", "reset", "blocked", "status", "endless", "gzip_bomb", "huge"}


class SpecError(ValueError):
    """A spec file that cannot be used (says where and why)."""


def read_spec(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"spec {path}: cannot read: {exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError(
            f"spec {path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise SpecError(f"spec {path}: the top level must be a mapping with sites/dns/registry")
    unknown = set(data) - {"base", "sites", "dns", "registry", "policies"}
    if unknown:
        raise SpecError(f"spec {path}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    return data


def _host(where: str, name: Any) -> str:
    if not isinstance(name, str):
        raise SpecError(f"{where}: a host name must be a string, not {name!r}")
    ascii_name = try_ascii(name.strip().rstrip("."))
    if ascii_name is None:
        raise SpecError(f"{where}: {name!r} is not a valid domain name")
    return ascii_name


def _page(where: str, raw: Any, base_dir: Path) -> Route:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a page must be a mapping (html/file/redirect), not {raw!r}")
    status = int(raw.get("status", 200))
    headers: list[tuple[str, str]] = [(str(k), str(v)) for k, v in (raw.get("headers") or {}).items()]
    encoding = str(raw.get("encoding", "utf-8"))
    if "redirect" in raw:
        loc = str(raw["redirect"])
        return Route(status=int(raw.get("status", 302)), body=b"", headers=(*headers, ("Location", loc)))
    if "html" in raw:
        try:
            body = str(raw["html"]).encode(encoding)
        except (LookupError, UnicodeEncodeError) as exc:
            raise SpecError(f"{where}: cannot encode the page as {encoding}: {exc}") from exc
    elif "file" in raw:
        file = (base_dir / str(raw["file"])).resolve()
        try:
            body = file.read_bytes()
        except OSError as exc:
            raise SpecError(f"{where}: cannot read file {file}: {exc}") from exc
    else:
        raise SpecError(f"{where}: a page needs one of html, file or redirect")
    default_type = "text/html; charset=" + encoding if raw.get("declare_charset", True) else "text/html"
    return Route(
        status=status,
        body=body,
        content_type=str(raw.get("content_type", default_type)),
        headers=tuple(headers),
    )


def _behaviour(where: str, raw: Any, home: Route | None) -> Route | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("kind") not in BEHAVIOURS:
        raise SpecError(
            f"{where}: behaviour must be a mapping with kind one of {', '.join(sorted(BEHAVIOURS))}"
        )
    kind = raw["kind"]
    body = home.body if home else b""
    if kind == "slow":
        return Route(
            action=Action.DELAY,
            delay_ms=int(raw.get("delay_ms", 2000)),
            body=body,
            content_type=home.content_type if home else "text/html",
        )
    if kind == "timeout":
        return Route(action=Action.HANG)
    if kind == "reset":
        return Route(action=Action.RESET)
    if kind == "blocked":
        return Route(action=Action.BLOCK, body=body)
    if kind == "status":
        return Route(status=int(raw.get("status", 503)), body=b"<h1>error</h1>")
    if kind == "endless":
        return Route(action=Action.STREAM, stream_bytes=0, body=body[:2000])
    if kind == "huge":
        return Route(action=Action.STREAM, stream_bytes=int(raw.get("bytes", 8 * 1024 * 1024)), body=body)
    return Route(action=Action.GZIP_BOMB, stream_bytes=int(raw.get("bytes", 128 * 1024 * 1024)))


def _apply_policies(raw: Any, universe: StaticUniverse) -> None:
    """``policies: {127.64.0.9: {cc_per_min: 60, ban_s: 600, ban_style: 429, latency_ms: [100, 800]}}``"""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise SpecError("spec policies: a mapping of address to policy")
    for address, fields in raw.items():
        where = f"spec policies[{address}]"
        address = str(address)
        if not address.startswith("127.") or len(address.split(".")) != 4:
            raise SpecError(f"{where}: {address!r} is not a 127.0.0.0/8 address (simnet is loopback only)")
        if not isinstance(fields, dict):
            raise SpecError(f"{where}: a mapping of policy fields")
        try:
            universe.policies[address] = AddressPolicy.coerce({k: v for k, v in fields.items()})
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{where}: {exc}") from None


def apply_spec(
    data: dict[str, Any], universe: StaticUniverse, base_dir: Path
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Add the spec's sites and names to ``universe``; returns (registry rows, ground-truth records)."""
    truths: list[dict[str, Any]] = []
    _apply_policies(data.get("policies"), universe)
    sites = data.get("sites") or []
    if not isinstance(sites, list):
        raise SpecError("spec: sites must be a list")
    for n, raw in enumerate(sites, 1):
        where = f"spec sites[{n}]"
        if not isinstance(raw, dict) or "host" not in raw:
            raise SpecError(f"{where}: each site needs at least a host")
        host = _host(f"{where}.host", raw["host"])
        aliases = [_host(f"{where}.aliases", a) for a in raw.get("aliases") or []]
        address = str(raw.get("address", f"{SPEC_ADDR_PREFIX}{n}"))
        if not address.startswith("127.") or len(address.split(".")) != 4:
            raise SpecError(
                f"{where}.address: {address!r} is not a 127.0.0.0/8 address (simnet is loopback only)"
            )
        try:
            tls = TlsMode(raw.get("tls", "ok"))
        except ValueError:
            raise SpecError(f"{where}.tls: one of {', '.join(m.value for m in TlsMode)}") from None
        pages_raw = raw.get("pages") or {}
        if not isinstance(pages_raw, dict):
            raise SpecError(f"{where}.pages: a mapping of path to page")
        routes = {str(p): _page(f"{where}.pages[{p}]", r, base_dir) for p, r in pages_raw.items()}
        default = _behaviour(f"{where}.behaviour", raw.get("behaviour"), routes.get("/"))
        for name in (host, *aliases):
            universe.hosts[name] = HostSite(name, address, dict(routes), tls=tls, default=default)
            universe.names.setdefault(name, DnsEntry(name, a=[address]))
        if "truth" in raw:
            truths.append({"id": f"spec-{n}", "scenario": "spec", "hosts": [host, *aliases], **raw["truth"]})
    for n, raw in enumerate(data.get("dns") or [], 1):
        where = f"spec dns[{n}]"
        if not isinstance(raw, dict) or "name" not in raw:
            raise SpecError(f"{where}: each entry needs a name")
        name = _host(f"{where}.name", raw["name"])
        try:
            behaviour = DnsBehaviour(raw.get("behaviour", "answer"))
        except ValueError:
            raise SpecError(f"{where}.behaviour: one of {', '.join(b.value for b in DnsBehaviour)}") from None
        universe.names[name] = DnsEntry(
            name,
            a=[str(x) for x in raw.get("a") or []],
            aaaa=[str(x) for x in raw.get("aaaa") or []],
            cname=_host(f"{where}.cname", raw["cname"]) if raw.get("cname") else "",
            txt=[str(x) for x in raw.get("txt") or []],
            behaviour=behaviour,
            delay_ms=int(raw.get("delay_ms", 0)),
        )
    rows: list[dict[str, str]] = []
    for n, raw in enumerate(data.get("registry") or [], 1):
        if not isinstance(raw, dict):
            raise SpecError(f"spec registry[{n}]: a row must be a mapping of header to value")
        unknown = set(raw) - set(REGISTRY_HEADERS)
        if unknown:
            raise SpecError(f"spec registry[{n}]: unknown column(s) {', '.join(sorted(unknown))}")
        rows.append({h: str(raw.get(h, "")) for h in REGISTRY_HEADERS})
    return rows, truths


def load_spec(path: Path, workdir: Path) -> Sample:
    """Build the world a spec file describes into ``workdir``."""
    data = read_spec(path)
    base = data.get("base", "none")
    workdir.mkdir(parents=True, exist_ok=True)
    if base in (None, "none"):
        universe = StaticUniverse()
        infra = infrastructure(today())
        universe.add_dns(infra.dns)
        for h in infra.hosts:
            universe.add_host(h)
        reg = RegistryWriter(workdir / "spec-registry.csv")
        truth_meta: dict[str, Any] = {"sample": "spec", "as_of": today().isoformat(), "spec": str(path)}
        rows, truths = apply_spec(data, universe, path.parent)
        reg.write(rows)
        reg.close()
        writer = TruthWriter(workdir / "spec-truth.json", truth_meta)
        from simnet.build import Built

        writer.add(Built(sites=truths))
        writer.close()
        offices_path = workdir / "spec-offices.csv"
        write_offices(offices_path, offices())
        return Sample("spec", universe, reg.path, offices_path, writer.path, sites=len(truths))
    sample = load(str(base), workdir)
    if not isinstance(sample.universe, StaticUniverse):
        raise SpecError(f"spec {path}: base {base!r} cannot be extended (use catalogue, baoding or none)")
    rows, truths = apply_spec(data, sample.universe, path.parent)
    with sample.registry_path.open("a", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(REGISTRY_HEADERS))
        for row in rows:
            w.writerow(row)
    truth = json.loads(sample.truth_path.read_text(encoding="utf-8"))
    truth["sites"] += truths
    truth["meta"]["spec"] = str(path)
    sample.truth_path.write_text(json.dumps(truth, ensure_ascii=False), encoding="utf-8")
    sample.sites += len(truths)
    return sample
