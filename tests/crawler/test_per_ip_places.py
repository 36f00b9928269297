"""Per-IP places are given back however a download ends: sites on one address whose downloads are
cut short (a gzip bomb, refused by Scrapy's decompression middleware with IgnoreRequest on the way
back, which skips the rest of the response chain; a server that never answers) must not use up the
address's places and stall the scan (a baoding scan stalled this way, every request waiting)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from simnet.runtime import run
from storage.db import make_engine
from storage.models import Finding
from tests.crawler.scanning import Workspace
from tests.reports.dbdata import uscc

SITES = 12  # six times the per-IP limit below


def _spec() -> str:
    lines = ["sites:"]
    registry = ["registry:"]
    for i in range(SITES):
        kind = "gzip_bomb" if i % 2 else "timeout"
        lines += [
            f"  - host: site{i}.shared.example.cn",
            "    address: 127.64.0.50",
            "    pages: {/: {html: '<html><body>x</body></html>'}}",
            f"    behaviour: {{kind: {kind}}}",
        ]
        registry.append(
            f"  - {{编办代码: '130600', 机构名称: 共享平台单位{i}, "
            f"统一社会信用代码: '{uscc('2', '130600', i + 1)}', 机构类别: 事业单位, "
            f"网站名称: 网站{i}, 网站地址: 'http://site{i}.shared.example.cn/'}}"
        )
    return "\n".join(lines + registry) + "\n"


def test_cut_short_downloads_give_their_places_back(tmp_path: Path) -> None:
    spec = tmp_path / "shared.yaml"
    spec.write_text(_spec(), encoding="utf-8")
    with run(spec=spec) as net:
        ws = Workspace(tmp_path / "ws", net.env())
        ws.dir.mkdir()
        ws.import_registry(net.registry_path, net.offices_path)
        proc = ws.run(
            "scan",
            "--json",
            "--render",
            "never",
            timeout=240,
            BADGEWATCH_PER_IP_CONCURRENCY="2",
            BADGEWATCH_TIMEOUT_S="2",
            check=False,
        )
    result: dict[str, Any] = json.loads(proc.stdout)
    assert result["status"] == "finished", proc.stderr[-3000:]
    engine = make_engine(ws.db_url)
    with engine.connect() as conn:
        http = dict(
            conn.execute(sa.select(Finding.subject, Finding.reason).where(Finding.check == "http")).all()
        )
    engine.dispose()
    assert len(http) == SITES
    assert sorted(set(http.values())) == ["http.timeout", "http.too_large"], http
