"""The vantage check: a scan starts by fetching the configured reference sites (real sockets, simnet on
loopback); when most of them fail it stops before opening or marking anything, with exit status 3, a
Chinese message naming each failure and, with ``--json``, ``vantage_failed`` and per-URL details."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from crawler.vantage import EXIT_VANTAGE, check_vantage
from storage.config import Config
from storage.db import make_engine
from storage.models import Capture, Finding, Scan, ScanLock
from tests.crawler.scanning import Workspace, pg_workspace

VANTAGE_TIMEOUT = "2"


def working_sites(net: Any, n: int = 3) -> list[str]:
    """Reference sites from the catalogue's ground truth: compliant sites whose home page is fine."""
    urls = [
        s["url"]
        for s in net.ground_truth["sites"]
        if s["scenario"].startswith("compliant.") and s["checks"]["http"]["reason"] == "http.ok"
    ]
    assert len(urls) >= n
    return urls[:n]


def site_of(net: Any, scenario: str) -> str:
    return str(next(s["url"] for s in net.ground_truth["sites"] if s["scenario"] == scenario))


def failing_sites(net: Any) -> dict[str, str]:
    """URL -> the reason its probe must give: a name that does not exist, a site that hangs, a closed
    port, an address nothing serves, a firewall's block page."""
    return {
        "http://vantage-missing.gov.cn/": "dns.nxdomain",
        site_of(net, "http.timeout"): "http.timeout",
        site_of(net, "http.refused"): "http.refused",
        "http://127.9.9.9/": "http.refused",
        site_of(net, "http.blocked"): "http.blocked",
    }


def _env(urls: list[str]) -> dict[str, str]:
    return {"BADGEWATCH_VANTAGE_URLS": ",".join(urls), "BADGEWATCH_VANTAGE_TIMEOUT_S": VANTAGE_TIMEOUT}


def _counts(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                m.__tablename__: int(conn.execute(sa.select(sa.func.count()).select_from(m)).scalar_one())
                for m in (Scan, Finding, Capture, ScanLock)
            }
    finally:
        engine.dispose()


def test_probes_say_why_each_reference_site_failed(simnet: Any) -> None:
    good = working_sites(simnet)
    bad = failing_sites(simnet)
    # A WAF's challenge means the site was reached: the network is fine.
    challenge = site_of(simnet, "http.waf_ruishu")
    config = Config.load(env={**simnet.env(), **_env([])})
    report = check_vantage(config, [*good, *bad, challenge])
    by_url = {p.url: p for p in report.probes}
    assert [by_url[u].ok for u in good] == [True, True, True]
    assert {u: by_url[u].reason for u in bad} == bad
    assert by_url[challenge].ok and by_url[challenge].reason == "reached"
    assert report.answered == 4 and report.needed == 5 and not report.passed
    assert by_url[site_of(simnet, "http.timeout")].elapsed_ms < 2 * 2000 + 1500  # the short timeout
    assert "NXDOMAIN" in by_url["http://vantage-missing.gov.cn/"].message
    # The same sites through a resolver that does not answer: every failure is the resolver's.
    broken = Config.load(env={**simnet.env(), **_env([]), "BADGEWATCH_NAMESERVERS": "127.0.0.1:9"})
    report = check_vantage(broken, good)
    assert [p.reason for p in report.probes] == ["dns.timeout"] * 3
    message = report.message()
    assert "DNS 服务器" in message and "127.0.0.1:9" in message
    # Report only: with vantage_min_ok = 0 nothing stops a scan.
    lax = Config.load(env={**simnet.env(), **_env([]), "BADGEWATCH_VANTAGE_MIN_OK": "0"})
    assert check_vantage(lax, list(bad)).passed


def test_scan_runs_when_reference_sites_answer_and_stops_when_most_fail(
    simnet: Any, catalogue_ws: Workspace
) -> None:
    ws = catalogue_ws
    good = working_sites(simnet)
    ok = ws.run("scan", "--json", "--limit", "2", **_env(good))
    summary = json.loads(ok.stdout)
    assert summary["status"] == "finished"
    assert "参照网站检查：3 个中 3 个可以访问" in ok.stderr, ok.stderr
    scan_id = int(summary["scan_id"])
    before = _counts(ws.db_url)
    assert before["scan"] == 1 and before["finding"] > 0

    bad = failing_sites(simnet)
    refs = [good[0], *bad]  # one of six answers: most fail
    failed = ws.run("scan", "--json", check=False, **_env(refs))
    assert failed.returncode == EXIT_VANTAGE, failed.stderr
    # The operator's message (standard error): which reference sites failed, why, what to do.
    err = failed.stderr
    assert "巡检未开始" in err and "6 个中只有 1 个可以访问" in err, err
    for url in bad:
        assert f"[失败] {url}" in err, (url, err)
    assert "域名不存在（NXDOMAIN）" in err and "超时" in err and "连接被拒绝" in err and "拦截页" in err
    assert "中国大陆境内" in err and "DNS 服务器" in err and "--skip-vantage" in err
    # The machine-readable failure (standard output, --json).
    out = json.loads(failed.stdout)
    assert out["error"] == "vantage_failed" and out["scan_id"] is None and out["status"] == "not_started"
    v = out["vantage"]
    assert (v["answered"], v["total"], v["needed"], v["passed"]) == (1, 6, 3, False)
    probes = {p["url"]: p for p in v["probes"]}
    assert {u: probes[u]["reason"] for u in bad} == bad
    assert probes[good[0]]["ok"] and probes[good[0]]["status_code"] == 200
    assert all(p["message"] for p in v["probes"])
    # Nothing was opened, marked or locked.
    assert _counts(ws.db_url) == before

    # Without --json: the same message and exit status.
    plain = ws.run("scan", "--limit", "1", check=False, **_env(refs))
    assert plain.returncode == EXIT_VANTAGE and "巡检未开始" in plain.stderr and not plain.stdout.strip()
    # A second pass would replace the night's findings by the visit's: it checks first too.
    second = ws.run("scan", "--json", "--second-pass", str(scan_id), check=False, **_env(refs))
    assert second.returncode == EXIT_VANTAGE and json.loads(second.stdout)["error"] == "vantage_failed"
    assert _counts(ws.db_url) == before

    # The operator may insist.
    forced = ws.run("scan", "--json", "--limit", "1", "--skip-vantage", **_env(refs))
    assert json.loads(forced.stdout)["status"] == "finished"
    assert "参照网站检查" not in forced.stderr


def test_bad_min_ok_is_refused(simnet: Any, catalogue_ws: Workspace) -> None:
    proc = catalogue_ws.run("scan", check=False, **_env(working_sites(simnet)), BADGEWATCH_VANTAGE_MIN_OK="2")
    assert proc.returncode == 1 and "vantage_min_ok" in proc.stderr, proc.stderr
    assert _counts(catalogue_ws.db_url)["scan"] == 0


@pytest.mark.redis
@pytest.mark.postgres
def test_distributed_opener_and_worker_check_their_vantage(
    simnet: Any,
    tmp_path: Path,
    fresh_pg_database: Callable[[], str],
    redis_url: str,
    redis_prefix: str,
) -> None:
    ws = pg_workspace(tmp_path, simnet, fresh_pg_database())
    redis_env = {"BADGEWATCH_REDIS_URL": redis_url, "BADGEWATCH_REDIS_PREFIX": redis_prefix}
    good = working_sites(simnet)
    refs = [good[0], *failing_sites(simnet)]
    client = redis.Redis.from_url(redis_url)
    try:
        # The opener: nothing opened in the database, nothing seeded in Redis.
        args = ("scan", "--distributed", "--no-wait", "--json", "--limit", "2")
        opened = ws.run(*args, check=False, **redis_env, **_env(refs))
        assert opened.returncode == EXIT_VANTAGE, opened.stderr
        assert json.loads(opened.stdout)["error"] == "vantage_failed"
        assert "巡检未开始" in opened.stderr
        assert _counts(ws.db_url) == {"scan": 0, "finding": 0, "capture": 0, "scan_lock": 0}
        assert list(client.scan_iter(match=redis_prefix + "*")) == []

        # A scan opened from a good vantage; a worker on a machine that cannot see the sites refuses to
        # take anything, one that can finishes the scan.
        opened = ws.run(*args, **redis_env, **_env(good))
        scan_id = json.loads(opened.stdout)["scan_id"]
        refused = ws.run("worker", "--scan", str(scan_id), "--json", check=False, **redis_env, **_env(refs))
        assert refused.returncode == EXIT_VANTAGE, refused.stderr
        assert json.loads(refused.stdout)["error"] == "vantage_failed"
        counts = _counts(ws.db_url)
        assert counts["finding"] == 0 and counts["capture"] == 0
        done = ws.run("worker", "--scan", str(scan_id), "--json", **redis_env, **_env(good))
        assert json.loads(done.stdout)["scan_status"] == "finished"
    finally:
        client.close()
