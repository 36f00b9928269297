"""The CONAC cache (crawler/conac_cache.py): CONAC's answers kept across scans.

Real scans in subprocesses against simnet on loopback; requests are counted where CONAC answers them
(``SimNet.conac``: per host, conditional ones, 304s).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from checks.page import NeedKind
from crawler.checking import rules_from_config
from crawler.conac_cache import ConacCachingFetcher, refusal
from crawler.flow import REVALIDATE, RawResponse
from crawler.recheck import recheck_scan
from simnet.pages import challenge_page
from storage.conac_cache import CachedResource, ConacCacheStore
from storage.config import Config
from storage.db import make_engine, upgrade
from storage.evidence import EvidenceStore, prune_captures
from storage.models import Capture, ConacCacheEntry
from tests.crawler.scanning import Workspace, pg_workspace, workspace

CONAC_KINDS = {str(NeedKind.BADGE_SCRIPT), str(NeedKind.BSZS), str(NeedKind.IMAGE)}
BADGE_MIX = {
    "badge.wrong_kind": 1.0,
    "badge.error_image": 1.0,
    "badge.copied_badge": 1.0,
    "badge.copied_verify_link": 1.0,
    "badge.outdated_unit_name": 1.0,
    "badge.outdated_domain": 1.0,
}


def _counts(net: Any) -> tuple[int, int, int]:
    log = net.conac
    return log.total, log.conditional, log.not_modified


def _night(ws: Workspace, net: Any, **env: str) -> tuple[int, dict[str, Any], tuple[int, int, int]]:
    """One scan; its id, findings and (requests, conditional, 304) at CONAC's side."""
    before = _counts(net)
    out = ws.scan("--render", "never", **env)
    assert out["status"] == "finished", out
    after = _counts(net)
    scan_id = int(out["scan_id"])
    delta = (after[0] - before[0], after[1] - before[1], after[2] - before[2])
    return scan_id, ws.findings(scan_id), delta


def _verdicts(findings: dict[Any, tuple[str, str, int]]) -> dict[Any, tuple[str, str]]:
    return {k: (v[0], v[1]) for k, v in findings.items()}


def _conac_records(db_url: str, scan_id: int) -> list[dict[str, Any]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            subs = conn.execute(sa.select(Capture.subresources).where(Capture.scan_id == scan_id)).scalars()
            return [
                rec
                for s in subs
                for url, rec in (s or {}).items()
                if isinstance(rec, dict) and rec.get("kind") in CONAC_KINDS and "conac.cn" in url
            ]
    finally:
        engine.dispose()


def _cache_rows(db_url: str) -> list[Any]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(ConacCacheEntry)).all())
    finally:
        engine.dispose()


def test_second_night_asks_conac_nothing_and_judges_the_same(
    simnet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    net = simnet_factory("generated", sites=40, failure_rate=0.0, addresses=4)
    ws = workspace(tmp_path, net)

    first, found1, (req1, cond1, nm1) = _night(ws, net)
    assert req1 > 40 and cond1 == 0 and nm1 == 0, (req1, cond1, nm1)
    rows = _cache_rows(ws.db_url)
    assert rows and all(200 <= r.status < 300 and r.etag and r.last_modified for r in rows)
    assert len({r.url for r in rows}) == len(rows)

    # Within the max age: not one request to CONAC, the same verdicts.
    second, found2, counts2 = _night(ws, net)
    assert counts2 == (0, 0, 0), counts2
    assert _verdicts(found2) == _verdicts(found1)
    records = _conac_records(ws.db_url, second)
    assert records and all(r["cache"]["state"] == "fresh" for r in records), records[:3]
    assert all(r["cache"]["validated_at"] and r.get("blob") for r in records)
    assert not any("cache" in r for r in _conac_records(ws.db_url, first))

    # Max age 0 (or expired): every answer revalidated with a conditional request, every one a 304.
    third, found3, (req3, cond3, nm3) = _night(ws, net, BADGEWATCH_CONAC_CACHE_MAX_AGE_H="0")
    assert req3 == cond3 == nm3 > 0, (req3, cond3, nm3)
    assert req3 <= req1
    assert _verdicts(found3) == _verdicts(found1)
    records = _conac_records(ws.db_url, third)
    assert records and all(r["cache"]["state"] == "revalidated" for r in records)
    validated = {r.url: r.validated_at for r in _cache_rows(ws.db_url)}
    assert all(validated[r.url] > r.validated_at for r in rows), "a 304 refreshes the validation time"

    # The evidence rebuilds the same verdicts (the cached body is the capture's blob).
    engine = make_engine(ws.db_url)
    config = Config(database_url=ws.db_url, evidence_dir=str(ws.dir / "evidence"))
    try:
        for scan_id in (second, third):
            summary = recheck_scan(
                engine, scan_id, EvidenceStore(config.evidence_dir), rules_from_config(config)
            )
            assert summary.changed == 0 and summary.missing_evidence == 0
    finally:
        engine.dispose()

    # Turned off: CONAC is asked for everything, as before the cache.
    _fourth, found4, (req4, cond4, _nm4) = _night(ws, net, BADGEWATCH_CONAC_CACHE="false")
    assert req4 == req1 and cond4 == 0
    assert _verdicts(found4) == _verdicts(found1)


def test_badge_failures_are_the_same_from_the_cache_and_confirmed_with_conac(
    simnet_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Wrong kind, CONAC's error image, a copied badge, outdated registrations: the same verdicts on the
    second night; the failures' retries revalidate (a failure is never confirmed on a kept copy alone),
    nothing else asks."""
    net = simnet_factory("generated", sites=48, failure_rate=0.6, mix=BADGE_MIX, addresses=4)
    ws = workspace(tmp_path, net)
    _first, found1, (req1, _c1, _n1) = _night(ws, net)
    badge = {k: v for k, v in _verdicts(found1).items() if k[1] == "badge"}
    assert {"badge.wrong_kind", "badge.error_image", "badge.registration_outdated"} <= {
        r for _s, r in badge.values()
    }
    second, found2, (req2, cond2, nm2) = _night(ws, net)
    assert _verdicts(found2) == _verdicts(found1)
    assert 0 < req2 < req1
    assert req2 == cond2 == nm2, "only the failures' retries asked, conditionally"
    states = {r["cache"]["state"] for r in _conac_records(ws.db_url, second)}
    assert states == {"fresh", "revalidated"}


def test_postgres_two_nights(
    simnet_factory: Callable[..., Any], tmp_path: Path, fresh_pg_database: Callable[[], str]
) -> None:
    net = simnet_factory("generated", sites=40, failure_rate=0.0, addresses=4)
    ws = pg_workspace(tmp_path, net, fresh_pg_database())
    _first, found1, (req1, _c, _n) = _night(ws, net)
    assert req1 > 40
    _second, found2, counts2 = _night(ws, net)
    assert counts2 == (0, 0, 0)
    assert _verdicts(found2) == _verdicts(found1)


# --- what is never kept ----------------------------------------------------------------------------

SCRIPT_URL = "http://dcs.conac.cn/js/13/000/0000/60429971/CA130000000604299710001.js"
VERIFY_URL = "http://bszs.conac.cn/sitename?method=show&id=0A1B2C3D4E5F"
SCRIPT = (
    b'(function(){var h="<a href=\\"//bszs.conac.cn/sitename?method=show&id=1\\">'
    b'<img src=\\"//dcs.conac.cn/image/red.png\\"></a>";})();'
)
VERIFY = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>网站标识核验</title></head><body>"
    "<table><tr><th>单位名称</th><td>保定市人民政府办公室</td></tr><tr><th>机构类型</th><td>党政机关</td></tr>"
    "<tr><th>网站域名</th><td>www.bd.gov.cn</td></tr></table></body></html>"
).encode()
JS = {"Content-Type": "application/javascript; charset=utf-8", "ETag": '"v1"'}
HTML = {"Content-Type": "text/html; charset=utf-8", "ETag": '"p1"'}


class _Scripted:
    """A fetcher answering from a list, recording the headers it was asked with."""

    def __init__(self) -> None:
        self.answers: list[RawResponse] = []
        self.asked: list[tuple[str, dict[str, str]]] = []

    async def get(self, url: str, *, maxsize: int, priority: int = 0, headers: Any = None) -> RawResponse:
        self.asked.append((url, dict(headers or {})))
        return self.answers.pop(0)


@pytest.fixture()
def cache_db(tmp_path: Path) -> tuple[ConacCacheStore, EvidenceStore, str]:
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    upgrade(url)
    return ConacCacheStore(make_engine(url)), EvidenceStore(tmp_path / "evidence"), url


@pytest.mark.parametrize(
    ("url", "status", "headers", "body", "why"),
    [
        (SCRIPT_URL, 404, HTML, b"<html><body>404 Not Found</body></html>", "status 404"),
        (SCRIPT_URL, 500, JS, SCRIPT, "status 500"),
        (SCRIPT_URL, 200, HTML, challenge_page().encode(), "a page where a script or image was asked for"),
        (SCRIPT_URL, 200, JS, b"", "empty"),
        (SCRIPT_URL, 200, JS, b"var x = 1;", "no badge image named"),
        (VERIFY_URL, 200, HTML, challenge_page().encode(), "http.blocked"),
        (VERIFY_URL, 403, HTML, challenge_page().encode(), "status 403"),
        (VERIFY_URL, 200, HTML, "<html><body><h1>访问过于频繁，请稍后再试</h1></body></html>".encode(), ""),
        (VERIFY_URL, 200, HTML, "<html><body><h1>系统维护中</h1></body></html>".encode(), ""),
        (VERIFY_URL, 200, JS, SCRIPT, "not a page"),
    ],
)
def test_errors_and_challenge_pages_are_never_kept(
    cache_db: tuple[ConacCacheStore, EvidenceStore, str],
    url: str,
    status: int,
    headers: dict[str, str],
    body: bytes,
    why: str,
) -> None:
    store, blobs, db_url = cache_db
    resp = RawResponse(url, status, headers, body)
    reason = refusal(url, resp)
    assert reason, "kept"
    if why:
        assert reason == why
    inner = _Scripted()
    inner.answers.append(resp)
    cached = ConacCachingFetcher(inner, store, blobs, max_age=timedelta(hours=36))
    got = asyncio.run(cached.get(url, maxsize=10**6))
    assert got is resp and got.cache is None
    assert _cache_rows(db_url) == []


def test_a_bad_night_does_not_replace_a_good_entry(
    cache_db: tuple[ConacCacheStore, EvidenceStore, str],
) -> None:
    store, blobs, db_url = cache_db
    now = [datetime(2026, 12, 1, 1, tzinfo=UTC)]
    inner = _Scripted()

    def fetcher() -> ConacCachingFetcher:  # a new scan: nothing in memory
        return ConacCachingFetcher(inner, store, blobs, max_age=timedelta(hours=36), clock=lambda: now[0])

    assert refusal(VERIFY_URL, RawResponse(VERIFY_URL, 200, HTML, VERIFY)) == ""
    inner.answers.append(RawResponse(VERIFY_URL, 200, HTML, VERIFY))
    asyncio.run(fetcher().get(VERIFY_URL, maxsize=10**6))
    assert inner.asked == [(VERIFY_URL, {})]
    (row,) = _cache_rows(db_url)
    assert row.etag == '"p1"' and row.headers["Content-Type"].startswith("text/html")

    # Two nights later: stale; the conditional request meets a WAF page, which is passed on, not kept.
    now[0] += timedelta(hours=48)
    waf = RawResponse(VERIFY_URL, 200, {"Content-Type": "text/html"}, challenge_page().encode())
    inner.answers.append(waf)
    assert asyncio.run(fetcher().get(VERIFY_URL, maxsize=10**6)) is waf
    assert inner.asked[-1] == (VERIFY_URL, {"If-None-Match": '"p1"'})
    assert _cache_rows(db_url) == [row]

    # The next night CONAC answers 304: the kept page is used, its validation time moves on.
    now[0] += timedelta(hours=24)
    inner.answers.append(RawResponse(VERIFY_URL, 304, {"ETag": '"p1"'}, b""))
    got = asyncio.run(fetcher().get(VERIFY_URL, maxsize=10**6))
    assert got.status == 200 and got.body == VERIFY and got.headers["Content-Type"] == HTML["Content-Type"]
    assert got.cache is not None and got.cache["state"] == "revalidated"
    assert got.cache["validated_at"] == now[0].isoformat()
    (row2,) = _cache_rows(db_url)
    assert row2.validated_at == now[0] and row2.fetched_at == row.fetched_at

    # Within the max age: no request; a retry (confirming a failure) asks all the same.
    asked = len(inner.asked)
    again = fetcher()
    got = asyncio.run(again.get(VERIFY_URL, maxsize=10**6))
    assert got.cache is not None and got.cache["state"] == "fresh" and len(inner.asked) == asked

    async def retry() -> RawResponse:
        REVALIDATE.set(True)
        return await again.get(VERIFY_URL, maxsize=10**6)

    inner.answers.append(RawResponse(VERIFY_URL, 304, {}, b""))
    got = asyncio.run(retry())
    assert got.cache is not None and got.cache["state"] == "revalidated" and len(inner.asked) == asked + 1


def test_concurrent_requests_share_one_fetch(cache_db: tuple[ConacCacheStore, EvidenceStore, str]) -> None:
    store, blobs, _db_url = cache_db

    class Slow(_Scripted):
        async def get(self, url: str, *, maxsize: int, priority: int = 0, headers: Any = None) -> RawResponse:
            self.asked.append((url, dict(headers or {})))
            await asyncio.sleep(0.05)
            return RawResponse(url, 200, JS, SCRIPT)

    inner = Slow()
    cached = ConacCachingFetcher(inner, store, blobs, max_age=timedelta(hours=36))

    async def many() -> list[RawResponse]:
        return await asyncio.gather(*(cached.get(SCRIPT_URL, maxsize=10**6) for _ in range(20)))

    got = asyncio.run(many())
    assert len(inner.asked) == 1 and all(g.body == SCRIPT for g in got)


def _race(store: ConacCacheStore, blobs: EvidenceStore, writers: int = 8) -> None:
    """``writers`` threads storing the same URL at the same moment: none fails, one row stays."""
    at = datetime.now(UTC)
    entries = [
        CachedResource(
            url=SCRIPT_URL,
            status=200,
            headers=dict(JS),
            body_blob=blobs.put(SCRIPT + str(i).encode()),
            body_size=len(SCRIPT) + 1,
            fetched_at=at,
            validated_at=at + timedelta(seconds=i),
            etag=f'"v{i}"',
        )
        for i in range(writers)
    ]
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(entry: CachedResource) -> None:
        barrier.wait()
        try:
            for _ in range(5):
                store.put(entry)
                store.revalidated(entry)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(e,)) for e in entries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = store.get(SCRIPT_URL)
    assert got is not None and got.etag == f'"v{writers - 1}"', "the answer validated last wins"


def test_concurrent_writers_sqlite(cache_db: tuple[ConacCacheStore, EvidenceStore, str]) -> None:
    store, blobs, _ = cache_db
    _race(store, blobs)


def test_concurrent_writers_postgres(postgres_url: str, tmp_path: Path) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url, pool_size=10)
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(ConacCacheEntry))
        _race(ConacCacheStore(engine), EvidenceStore(tmp_path / "evidence"))
    finally:
        engine.dispose()


def test_retention_keeps_the_cache_bodies(cache_db: tuple[ConacCacheStore, EvidenceStore, str]) -> None:
    store, blobs, db_url = cache_db
    at = datetime.now(UTC) - timedelta(days=900)
    key = blobs.put(SCRIPT)
    store.put(CachedResource(SCRIPT_URL, 200, dict(JS), key, len(SCRIPT), at, at))
    old = blobs.path_of(key)
    os.utime(old, (at.timestamp(), at.timestamp()))
    engine = make_engine(db_url)
    try:
        prune_captures(engine, blobs, 400)
    finally:
        engine.dispose()
    assert blobs.get(key) == SCRIPT
