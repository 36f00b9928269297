"""The number checks against simnet's ground truth, check by check, for every catalogue scenario.

Pages are read from the simnet universe the servers would serve (same bytes, same content type), with
the same-site scripts a page runs, as the crawler captures them; the registry entry comes from the
sample's registry file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from checks.dns import ascii_host
from checks.expected import Expected, UnitKind
from checks.icp import check_icp
from checks.merge import IDENTITY_MISMATCHES
from checks.page import Document, Page
from checks.police import check_police
from checks.reading.scripts import include_needs, script_needs
from checks.rules import Rules
from checks.sitecode import check_site_code
from simnet.model import Universe, lookup_route
from simnet.samples import Sample, load

CHECKS = {"icp": check_icp, "police": check_police, "site_code": check_site_code}
# (verdict data key, ground-truth key) of the identifier each check reads.
DATA_KEYS = {"icp": ("number", "number"), "police": ("digits", "number"), "site_code": ("value", "value")}


World = tuple[Sample, dict[str, Any], dict[str, dict[str, str]]]


@pytest.fixture(scope="module", params=["catalogue", "baoding"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    sample = load(request.param, tmp_path_factory.mktemp("simnet"))
    truth = json.loads(Path(sample.truth_path).read_text(encoding="utf-8"))
    with open(sample.registry_path, encoding="utf-8-sig", newline="") as f:
        rows = {r["网站地址"]: r for r in csv.DictReader(f) if r["网站地址"]}
    return sample, truth, rows


def fetch(universe: Universe, url: str) -> tuple[bytes, str] | None:
    parts = urlsplit(url)
    site = universe.host(ascii_host(parts.hostname or ""))
    if site is None:
        return None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    route = lookup_route(site, target, tls=parts.scheme == "https")
    if route.status != 200:
        return None
    return route.body, route.content_type


def expected_of(row: dict[str, str]) -> Expected:
    kind = UnitKind(row["机构类别"])
    return Expected(
        unit_kind=kind,
        unit_name=row["机构名称"],
        division_code=row["编办代码"],
        site_url=row["网站地址"],
        icp=row["ICP备案号"],
        police_record=row["公安备案号"],
        site_code=row["政府网站标识码"],
        # simnet models 政府网站 as the sites of 党政机关.
        is_government_site=kind is UnitKind.PARTY_GOV,
    )


def readable_sites(truth: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in truth["sites"] if s["checks"]["http"]["status"] != "unknown"]


def test_numbers_match_ground_truth(world: World) -> None:
    sample, truth, rows = world
    sites = readable_sites(truth)
    assert len(sites) > 50
    if truth["meta"].get("sample") != "catalogue":
        # The catalogue has every scenario once; of the larger random mixes a fifth is enough.
        sites = sites[::5]
    wrong: list[str] = []
    compared = 0
    for site in sites:
        final = site["checks"]["http"]["final_url"]
        got = fetch(sample.universe, final)
        assert got is not None, site["id"]
        body, ctype = got
        page = Page(url=final, body=body, headers={"Content-Type": ctype})
        for src in script_needs(page):
            fetched = fetch(sample.universe, urljoin(final, src))
            page.scripts[src] = fetched[0].decode("utf-8", "replace") if fetched else ""
        for need in include_needs(page):  # footers loaded with $.load / XHR / fetch
            fetched = fetch(sample.universe, need.url)
            if fetched:
                page.frames[need.url] = Document.from_bytes(need.url, fetched[0], fetched[1])
        expected = expected_of(rows[site["url"]])
        rules = Rules(red_page_hosts=tuple(truth["meta"].get("red_page_hosts", ())))
        for check, fn in CHECKS.items():
            want = site["checks"][check]
            v = fn(page, expected, rules)
            compared += 1
            if want["reason"] == "http.merged_page" and v.reason in IDENTITY_MISMATCHES:
                continue  # merged is decided over the whole visit; the page shows another site's number
            if (str(v.status), v.reason) != (want["status"], want["reason"]):
                wrong.append(
                    f"{site['scenario']}/{check}: {v.status} {v.reason} != {want['status']} "
                    f"{want['reason']} ({v.detail})"
                )
                continue
            # The number read must be the one the page shows.
            got_key, want_key = DATA_KEYS[check]
            if want.get(want_key) is not None and v.data[got_key] != want[want_key]:
                wrong.append(f"{site['scenario']}/{check}: {v.data[got_key]} != {want[want_key]}")
    assert compared == 3 * len(sites)
    assert not wrong, "\n".join(wrong)
