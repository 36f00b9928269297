"""A registry entry that points at an internal address makes no request leave for it.

Real parts: a nameserver on loopback says the site's name is 127.0.0.2, where a real HTTP server
counts requests. With the default configuration (internal addresses refused) the scan records
``http.address_refused`` and the server sees nothing; with loopback allowed (the simnet
configuration) the same scan reaches it: the test can fail both ways.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from storage.db import make_engine, session_scope, upgrade
from storage.models import Finding, Office, Scan, Unit, Website
from tests.crawler.netkit import DnsTable, HitLog, counting_http, dns_server

ROOT = Path(__file__).resolve().parents[2]
PAGE = "<html><head><title>内网</title></head><body>内部系统</body></html>".encode()


def _registry(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        s.add(Office(code="130600", name="保定市", level="city"))
        s.flush()
        unit = Unit(name="保定市内网测试局", uscc=None, kind="党政机关", office_code="130600")
        s.add(unit)
        s.flush()
        s.add(Website(unit_id=unit.id, name="内网", url="http://intranet.bd.gov.cn/"))
    engine.dispose()


def _scan(
    db_url: str, tmp: Path, nameserver: str, port: int, allow: bool, scrapy: bool = False
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "BADGEWATCH_DATABASE_URL": db_url,
            "BADGEWATCH_NAMESERVERS": nameserver,
            "BADGEWATCH_HTTP_PORT": str(port),
            "BADGEWATCH_ALLOW_PRIVATE": "true" if allow else "false",
            "BADGEWATCH_EVIDENCE_DIR": str(tmp / "evidence"),
            "BADGEWATCH_TIMEOUT_S": "5",
            "BADGEWATCH_CONFIRM_ATTEMPTS": "1",
        }
    )
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "badgewatch", "scan", "--render", "never", "--json"]
    if scrapy:  # the same spider and settings through Scrapy's own command line (scrapy.cfg)
        cmd = [sys.executable, "-m", "scrapy", "crawl", "sites", "-a", "render=never"]
    proc = subprocess.run(
        cmd,
        cwd=ROOT if scrapy else tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    engine = make_engine(db_url)
    with engine.connect() as conn:
        scan_id = (
            json.loads(proc.stdout)["scan_id"]
            if not scrapy
            else conn.execute(sa.select(sa.func.max(Scan.id))).scalar_one()
        )
        assert conn.execute(sa.select(Scan.status).where(Scan.id == scan_id)).scalar_one() == "finished"
        rows = conn.execute(sa.select(Finding.check, Finding.reason).where(Finding.scan_id == scan_id)).all()
    engine.dispose()
    return {c: r for c, r in rows}


def test_internal_address_is_never_contacted(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'bw.db'}"
    _registry(db_url)
    hits = HitLog()
    table = DnsTable(a={"intranet.bd.gov.cn": ["127.0.0.2"]})
    with dns_server(table) as ns, counting_http("127.0.0.2", PAGE, hits) as port:
        refused = _scan(db_url, tmp_path, ns, port, allow=False)
        assert refused["http"] == "http.address_refused"
        assert refused["badge"] == "http.address_refused"
        assert hits.hits == [], "a request reached the internal address"
        assert "intranet.bd.gov.cn" in table.queries  # it was resolved (that is how we know), not fetched

        allowed = _scan(db_url, tmp_path, ns, port, allow=True)
        assert allowed["http"] == "http.ok"
        assert ("intranet.bd.gov.cn", "/") in hits.hits

        # `scrapy crawl sites` runs the same spider with the same settings (and the same guard).
        hits.hits.clear()
        via_scrapy = _scan(db_url, tmp_path, ns, port, allow=False, scrapy=True)
        assert via_scrapy["http"] == "http.address_refused"
        assert hits.hits == []
