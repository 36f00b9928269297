"""A scan of a platform-heavy scope keeps the platforms' CC limits: zero bans, and the same findings as
the same scope scanned with no limits at all; the same scan without a rate does get banned (the limits
bite, so the first result means something).

The province sample puts most sites on a few platform addresses whose CC rule counts the scanner's
requests over all their sites (simnet.model.AddressPolicy); the window is short so that the test takes
seconds while an unpaced scan still exceeds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simnet.runtime import SimNet
from tests.crawler.scanning import workspace

SITES = 240
CC_PER_MIN = 600  # 50 requests in any 5 s per client, over all the sites of a platform address
WINDOW_S = 5.0
RATE = CC_PER_MIN * 0.9  # the scanner's configured rate, under the platforms' rule


def _net(tmp_path: Path, name: str, limited: bool) -> SimNet:
    options = {
        "sites": SITES,
        "platforms": 3,
        "platform_share": 0.75,
        "latency_ms": (5, 40),
        "cc_per_min": CC_PER_MIN if limited else 0,
        "window_s": WINDOW_S,
        "ban_s": 5,
        "seed": 7,
    }
    return SimNet("province", workdir=tmp_path / name, options=options).start()


def _scan(tmp_path: Path, net: SimNet, name: str, **env: str) -> dict[tuple[str, str], tuple[str, str]]:
    (tmp_path / name).mkdir()
    ws = workspace(tmp_path / name, net)
    proc = ws.run("scan", "--json", "--render", "never", check=False, timeout=600, **env)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    scan_id = int(json.loads(proc.stdout)["scan_id"])
    return {k: (v[0], v[1]) for k, v in ws.findings(scan_id).items()}


@pytest.mark.timeout(900)
def test_platform_scope_zero_bans_and_findings_equal_unlimited(tmp_path: Path) -> None:
    free = _net(tmp_path, "net-free", limited=False)
    try:
        reference = _scan(tmp_path, free, "free", BADGEWATCH_PER_IP_RATE_PER_MIN="0")
    finally:
        free.stop()
    assert len({s for s, _c in reference}) >= SITES  # every site (and its domain) was judged

    limited = _net(tmp_path, "net-cc", limited=True)
    try:
        placement = limited.ground_truth["meta"]["config"]["placement"]["platform_sites"]
        assert sum(placement.values()) >= 0.7 * SITES and len(placement) == 3
        polite = _scan(tmp_path, limited, "polite", BADGEWATCH_PER_IP_RATE_PER_MIN=str(RATE))
        report = limited.cc_report()
    finally:
        limited.stop()
    assert report["totals"]["bans"] == 0, report["totals"]
    peaks = [report["addresses"][a]["peak_per_min"] for a in placement]
    assert 0 < max(peaks) <= CC_PER_MIN, peaks  # the platforms were used, within their rule
    assert polite == reference

    # The same scope, the scanner without a rate (concurrency only, as before): banned.
    again = _net(tmp_path, "net-cc2", limited=True)
    try:
        _scan(tmp_path, again, "unpaced", BADGEWATCH_PER_IP_RATE_PER_MIN="0")
        unpaced = again.cc_report()
    finally:
        again.stop()
    assert unpaced["totals"]["bans"] > 0
