"""Compare a scan's findings with simnet's ground truth, check by check, with a confusion table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.models import Domain, Finding, Scan, Unit, Website

SITE_CHECKS = ("http", "badge", "icp", "police", "site_code")
DOMAIN_CHECKS = ("dns", "usage", "domain")
UNIT_CHECKS = ("domain",)


@dataclass
class Comparison:
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    confusion: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (check, expected, got)
    not_imported: list[dict[str, Any]] = field(default_factory=list)  # sites the registry import refused

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.missing

    def accusations(self) -> list[tuple[str, str, str, int]]:
        """``fail`` findings where the truth is ``unknown``: the false accusations, by check."""
        return [
            (check, exp, got, n)
            for (check, exp, got), n in sorted(self.confusion.items())
            if exp.startswith("unknown/") and got.startswith("fail/")
        ]

    def table(self) -> str:
        lines = [f"{'check':10s} {'expected':28s} {'got':28s} n"]
        for (check, exp, got), n in sorted(self.confusion.items()):
            mark = "" if exp == got else "   <-- mismatch"
            lines.append(f"{check:10s} {exp:28s} {got:28s} {n}{mark}")
        return "\n".join(lines)

    def report(self) -> str:
        out = [
            f"compared {self.compared} checks; {len(self.mismatches)} mismatches, {len(self.missing)} missing"
        ]
        out += self.mismatches[:80] + self.missing[:40]
        out.append(self.table())
        return "\n".join(out)


def expected_verdict(entry: dict[str, Any], rendered: bool) -> dict[str, Any]:
    """The truth of a check, or its ``rendered`` truth when the scan rendered the pages needing it."""
    out = dict(entry)
    if rendered and isinstance(entry.get("rendered"), dict):
        out.update(entry["rendered"])
    return out


def compare(
    engine: Engine,
    scan_id: int,
    truth: dict[str, Any],
    *,
    rendered: bool = True,
) -> Comparison:
    """Every check of every site and domain in ``truth`` against the findings of ``scan_id``.

    ``rendered``: the scan rendered the pages that need it, so the badge is judged against the
    rendered ground truth where one exists.
    """
    with engine.connect() as conn:
        scope = conn.execute(sa.select(Scan.scope).where(Scan.id == scan_id)).scalar_one() or {}
        sites = {_norm_url(url): i for i, url in conn.execute(sa.select(Website.id, Website.url))}
        domains = {a: i for i, a in conn.execute(sa.select(Domain.id, Domain.ascii))}
        units: dict[tuple[str, str], int] = {}
        for i, uscc, name, office in conn.execute(sa.select(Unit.id, Unit.uscc, Unit.name, Unit.office_code)):
            if uscc:
                units[("uscc", uscc)] = i
            units[("name", f"{office}/{name}")] = i
        found: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {
            (subj, check): (status, reason, data or {})
            for subj, check, status, reason, data in conn.execute(
                sa.select(Finding.subject, Finding.check, Finding.status, Finding.reason, Finding.data).where(
                    Finding.scan_id == scan_id
                )
            )
        }
    cmp = Comparison()

    def one(subject: str, label: str, check: str, exp: dict[str, Any]) -> None:
        got = found.get((subject, check))
        exp_key = f"{exp['status']}/{exp['reason']}"
        if got is None:
            cmp.missing.append(f"{label} {check}: expected {exp_key}, no finding")
            cmp.confusion[(check, exp_key, "(none)")] += 1
            return
        got_key = f"{got[0]}/{got[1]}"
        cmp.compared += 1
        cmp.confusion[(check, exp_key, got_key)] += 1
        if got_key != exp_key:
            cmp.mismatches.append(f"{label} {check}: expected {exp_key}, got {got_key}")

    # A scan of some offices is compared on what it covered: the units of those offices.
    offices = set(scope.get("office_codes") or ())
    office_by_uscc = {u.get("uscc"): u.get("office_code") for u in truth.get("units", []) if u.get("uscc")}

    def covered(office: Any) -> bool:
        return not offices or office in offices

    for site in truth["sites"]:
        if not covered((site.get("unit") or {}).get("office_code")):
            continue
        wid = sites.get(_norm_url(site["url"]))
        label = f"{site.get('scenario')} {site['url']}"
        if wid is None:
            cmp.not_imported.append(site)
            continue
        for check in SITE_CHECKS:
            exp = site["checks"].get(check)
            if exp is None:
                continue
            exp = expected_verdict(exp, rendered)
            one(f"site:{wid}", label, check, exp)
    for dom in truth["domains"]:
        if not covered(office_by_uscc.get(dom.get("uscc"))):
            continue
        did = domains.get(dom.get("ascii") or "")
        label = f"{dom.get('scenario', '')} {dom['domain']}"
        if did is None:
            # Invalid names are refused by the registry import, so they never reach a scan.
            continue
        for check in DOMAIN_CHECKS:
            exp = dom["checks"].get(check)
            if exp is not None:
                one(f"domain:{did}", label, check, exp)
    for unit in truth.get("units", []):
        if not covered(unit.get("office_code")):
            continue
        uid = units.get(("uscc", unit.get("uscc") or "")) or units.get(
            ("name", f"{unit.get('office_code')}/{unit.get('name')}")
        )
        if uid is None:
            continue  # a unit the registry import refused
        for check in UNIT_CHECKS:
            exp = unit["checks"].get(check)
            if exp is not None:
                one(f"unit:{uid}", f"unit {unit['name']}", check, exp)
    return cmp


def _norm_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    from crawler.resolver import to_ascii

    parts = urlsplit(url.strip())
    host = to_ascii(parts.hostname or "")
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
