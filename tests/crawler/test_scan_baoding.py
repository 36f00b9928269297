"""The 保定 sample (the seed's 附件1 registry, thousands of sites and domains on a consolidation platform
and shared addresses) scanned end to end and compared with its ground truth, check by check."""

from __future__ import annotations

import os
from typing import Any

import pytest

from storage.db import make_engine
from tests.crawler.scanning import workspace
from tests.crawler.truth import compare


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get("BADGEWATCH_SLOW_TESTS", "") not in ("1", "true", "yes"),
    reason="scans ~10,000 subjects (minutes); set BADGEWATCH_SLOW_TESTS=1 to run it",
)
def test_baoding_every_check_matches_ground_truth(
    simnet_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    net = simnet_factory("baoding")
    ws = workspace(tmp_path_factory.mktemp("baoding"), net)
    result = ws.scan("--render", "auto", "--concurrency", "128", timeout=3500)
    assert result["status"] == "finished", result
    engine = make_engine(ws.db_url)
    truth = net.ground_truth
    cmp = compare(engine, int(result["scan_id"]), truth, rendered=True)
    engine.dispose()
    assert cmp.compared > 10_000, cmp.report()
    for site in cmp.not_imported:
        assert str(site.get("scenario", "")).startswith("domain."), site
    assert cmp.ok, "\n" + cmp.report()


# 容城县: a county of the sample with its own platform-hosted sites, shared addresses and failure
# scenarios (the demo scans it too). Runs in CI; the whole sample is the opt-in test above.
COUNTY = "130629"


def test_baoding_county_every_check_matches_ground_truth(
    simnet_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    net = simnet_factory("baoding")
    ws = workspace(tmp_path_factory.mktemp("baoding-county"), net)
    result = ws.scan("--render", "auto", "--office", COUNTY, timeout=900)
    assert result["status"] == "finished", result
    engine = make_engine(ws.db_url)
    cmp = compare(engine, int(result["scan_id"]), net.ground_truth, rendered=True)
    engine.dispose()
    assert cmp.compared > 1_000, cmp.report()
    assert cmp.ok, "\n" + cmp.report()
