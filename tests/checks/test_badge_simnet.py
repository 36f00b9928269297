"""The badge check (through the suite) against simnet's ground truth, site by site, for the catalogue and
the 保定市 sample.

Pages and every sub-resource the checks ask for are read from the simnet universe the servers would
serve (same bytes, same content type) — the crawler's fetch→needs loop without sockets. Where the
ground truth says only a browser can decide (static ``unknown/badge.needs_render`` with a ``rendered``
expectation), static evaluation is allowed to reach the rendered answer, never a different one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from checks.expected import Expected, UnitKind
from checks.merge import IDENTITY_MISMATCHES
from checks.page import Document, Need, NeedKind, Page
from checks.rules import Rules
from checks.suite import run_checks

simnet_model = pytest.importorskip("simnet.model")
simnet_samples = pytest.importorskip("simnet.samples")

World = tuple[Any, dict[str, Any], dict[str, dict[str, str]]]


@pytest.fixture(scope="module", params=["catalogue", "baoding"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    sample = simnet_samples.load(request.param, tmp_path_factory.mktemp("simnet"))
    truth = json.loads(Path(sample.truth_path).read_text(encoding="utf-8"))
    with open(sample.registry_path, encoding="utf-8-sig", newline="") as f:
        rows = {r["网站地址"]: r for r in csv.DictReader(f) if r["网站地址"]}
    return sample, truth, rows


def fetch(universe: Any, url: str) -> tuple[bytes, str] | None:
    parts = urlsplit(url)
    host = (parts.hostname or "").encode("idna").decode("ascii") if parts.hostname else ""
    site = universe.host(host)
    if site is None:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    route = simnet_model.lookup_route(site, target, tls=parts.scheme == "https")
    if route.status != 200 or not route.body:
        return None
    return route.body, route.content_type


def expected_of(row: dict[str, str]) -> Expected:
    return Expected(
        unit_kind=UnitKind(row["机构类别"]),
        unit_name=row["机构名称"],
        division_code=row["编办代码"],
        site_name=row["网站名称"],
        site_url=row["网站地址"],
        badge_code=row["网站标识代码"],
        en_domains=tuple(d for d in row["英文域名"].split(";") if d),
        cn_domains=tuple(d for d in row["中文域名"].split(";") if d),
    )


def serve(universe: Any, page: Page, need: Need) -> None:
    if need.kind is NeedKind.RENDER:
        page.mark_failed(need, "no browser in this test")
        return
    got = fetch(universe, need.url)
    if got is None:
        page.mark_failed(need, "HTTP 404")
        return
    body, ctype = got
    if need.kind is NeedKind.SCRIPT:
        page.scripts[need.url] = body.decode("utf-8", "replace")
    elif need.kind is NeedKind.BADGE_SCRIPT:
        page.badge_scripts[need.url] = body.decode("utf-8", "replace")
    elif need.kind is NeedKind.BSZS:
        page.bszs[need.url] = Document.from_bytes(need.url, body, ctype)
    elif need.kind is NeedKind.FRAME:
        page.frames[need.url] = Document.from_bytes(need.url, body, ctype)
    elif need.kind is NeedKind.IMAGE:
        page.images[need.url] = body


def test_badge_matches_ground_truth(world: World) -> None:
    sample, truth, rows = world
    sites = [s for s in truth["sites"] if s["checks"]["http"]["status"] != "unknown"]
    assert len(sites) > 20
    rules = Rules(red_page_hosts=tuple(truth.get("meta", {}).get("red_page_hosts", ())))
    wrong: list[str] = []
    for site in sites:
        final = site["checks"]["http"]["final_url"]
        got = fetch(sample.universe, final)
        assert got is not None, site["id"]
        page = Page(url=final, body=got[0], headers={"Content-Type": got[1]})
        expected = expected_of(rows[site["url"]])
        for _ in range(8):
            result = run_checks(page, expected, rules, only=["badge"])
            if result.final:
                break
            for need in result.needs:
                serve(sample.universe, page, need)
        assert result.final, f"{site['scenario']}: needs never settle"
        v = result.verdicts["badge"]
        want = site["checks"]["badge"]
        allowed = [(want["status"], want["reason"])]
        if want["reason"] == "http.merged_page":
            # Merged is decided over the whole visit; the page alone shows another site's badge.
            allowed = [("fail", r) for r in IDENTITY_MISMATCHES if r.startswith("badge.")]
        if "rendered" in want:
            allowed.append((want["rendered"]["status"], want["rendered"]["reason"]))
            extra = {k: val for k, val in want["rendered"].items() if k not in ("status", "reason")}
            want = {**want, **extra}
        if (str(v.status), v.reason) not in allowed:
            wrong.append(f"{site['scenario']}: {v.status} {v.reason} != {allowed} ({v.detail})")
            continue
        if str(v.status) == "unknown":
            continue
        for key in ("kind", "code", "verify_id"):
            if want.get(key) is not None and v.data.get(key) is not None and v.data[key] != want[key]:
                wrong.append(f"{site['scenario']}: {key} {v.data[key]} != {want[key]}")
        if str(v.status) == "pass" and want.get("kind") is not None and v.data.get("kind") != want["kind"]:
            wrong.append(f"{site['scenario']}: kind {v.data.get('kind')} != {want['kind']}")
    assert not wrong, "\n".join(wrong)
