"""Distributed scans: two `badgewatch worker` processes on one frontier in Redis and one PostgreSQL
database; one worker killed with SIGKILL mid-way; the findings equal the single-process scan's; the
per-IP limit holds across workers (counted by a proxy in front of the web farm)."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from crawler.distributed import MAX_EXPIRED_LEASES, Frontier
from crawler.shared_politeness import KEY_LIFE_MS
from storage.db import make_engine
from storage.models import Finding, Scan, ScanLock
from tests.crawler.conftest import ScannedCatalogue
from tests.crawler.scanning import PgWorkspace, pg_workspace

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def _done(ws: PgWorkspace, scan_id: int) -> int:
    engine = make_engine(ws.db_url)
    try:
        with engine.connect() as conn:
            q = sa.select(sa.func.count(sa.distinct(Finding.subject))).where(Finding.scan_id == scan_id)
            return int(conn.execute(q).scalar_one())
    finally:
        engine.dispose()


def _scan_row(ws: PgWorkspace, scan_id: int) -> tuple[str, dict[str, Any], int]:
    engine = make_engine(ws.db_url)
    try:
        with engine.connect() as conn:
            status, counters = conn.execute(
                sa.select(Scan.status, Scan.counters).where(Scan.id == scan_id)
            ).one()
            locks = conn.execute(sa.select(sa.func.count()).select_from(ScanLock)).scalar_one()
    finally:
        engine.dispose()
    return str(status), dict(counters or {}), int(locks)


def _keys(redis_url: str, prefix: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return sorted(client.scan_iter(match=prefix + "*"))
    finally:
        client.close()


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"worker did not end:\n{err[-4000:]}") from None
    return out, err


def test_sqlite_is_refused(catalogue_ws: Any, redis_url: str) -> None:
    proc = catalogue_ws.run("scan", "--distributed", check=False, BADGEWATCH_REDIS_URL=redis_url)
    assert proc.returncode != 0
    assert "分布式巡检需要 PostgreSQL" in proc.stderr, proc.stderr
    proc = catalogue_ws.run("worker", check=False, BADGEWATCH_REDIS_URL=redis_url)
    assert proc.returncode != 0 and "PostgreSQL" in proc.stderr, proc.stderr


def test_two_workers_one_killed_equal_single_process(
    scanned_catalogue: ScannedCatalogue,
    simnet: Any,
    tmp_path: Path,
    fresh_pg_database: Callable[[], str],
    redis_url: str,
    redis_prefix: str,
) -> None:
    reference = scanned_catalogue.ws.findings(scanned_catalogue.scan_id)
    subjects = {s for s, _ in reference}
    ws = pg_workspace(tmp_path, simnet, fresh_pg_database())
    # Small per-worker capacity (16 subjects leased at once) so both workers share the work.
    extra: dict[str, Any] = {
        "BADGEWATCH_REDIS_URL": redis_url,
        "BADGEWATCH_REDIS_PREFIX": redis_prefix,
        "BADGEWATCH_LEASE_TIMEOUT_S": "4",
        "BADGEWATCH_CONCURRENCY": "8",
    }
    opened = json.loads(
        ws.run("scan", "--distributed", "--no-wait", "--json", "--render", "auto", **extra).stdout
    )
    scan_id = int(opened["scan_id"])
    assert opened["seeded"] == len(subjects)
    frontier = Frontier(redis.Redis.from_url(redis_url, decode_responses=True), redis_prefix, scan_id)

    victim = ws.popen("worker", "--scan", str(scan_id), **extra)
    survivor = ws.popen("worker", "--scan", str(scan_id), "--json", **extra)
    held_by_victim: set[str] = set()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and victim.poll() is None:
            owners = frontier.r.hgetall(frontier.owner)
            held_by_victim = {str(s) for s, w in owners.items() if f":{victim.pid}:" in str(w)}
            if _done(ws, scan_id) >= len(subjects) // 3 and held_by_victim:
                break
            time.sleep(0.1)
        if victim.poll() is not None:
            raise AssertionError(
                "the worker ended before it could be killed:\n" + _finish(victim, 10)[1][-4000:]
            )
        assert held_by_victim, "the killed worker held no lease"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    assert victim.returncode == -signal.SIGKILL
    partial = _done(ws, scan_id)
    assert 0 < partial < len(subjects)

    out, err = _finish(survivor, timeout=300)
    assert survivor.returncode == 0, err[-4000:]
    summary = json.loads(out)
    assert summary["scan_status"] == "finished", err[-4000:]

    final = ws.findings(scan_id)  # also asserts no (subject, check) twice
    assert {s for s, _ in final} == subjects, "a subject is missing"
    # What the killed worker held when it died was done by the other one.
    assert held_by_victim <= {s for s, _ in final}
    assert {k: v[:2] for k, v in final.items()} == {k: v[:2] for k, v in reference.items()}
    assert all(1 <= v[2] <= 2 for v in final.values())

    engine = make_engine(ws.db_url)
    with engine.connect() as conn:
        per_subject = conn.execute(
            sa.select(Finding.subject, sa.func.count(sa.distinct(Finding.capture_id)))
            .where(Finding.scan_id == scan_id)
            .group_by(Finding.subject)
        ).all()
    engine.dispose()
    # One capture per visited subject; unit-level findings rest on the registry (no capture).
    assert all(n == (0 if s.startswith("unit:") else 1) for s, n in per_subject), per_subject

    status, counters, locks = _scan_row(ws, scan_id)
    assert status == "finished" and locks == 0
    assert counters["distributed"] is True and counters["total"] == len(subjects)
    assert sum(counters["by_status"].values()) == len(reference)
    left = _keys(redis_url, redis_prefix)
    assert not [k for k in left if "{scan:" in k or k.endswith(":scans")], left
    # Only per-IP semaphore places the killed worker held, and the addresses' politeness state (kept an
    # hour for the next scan), may remain; they expire by themselves.
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    places = [k for k in left if k.startswith(redis_prefix + "ip:")]
    assert all(0 < client.pttl(k) <= 30_000 for k in places), places
    states = [k for k in left if k not in places]
    assert all(k.startswith(redis_prefix + "pol:") for k in states), states
    assert all(0 < client.pttl(k) <= KEY_LIFE_MS for k in states), states
    client.close()

    again = ws.run("worker", "--scan", str(scan_id), **extra)
    assert "已结束" in again.stderr


# --- per-IP politeness across workers ------------------------------------------------------------------


class CountingProxy:
    """An HTTP proxy in front of the web farm, listening on every farm address on one port: counts the
    requests in flight per address (from the request read to the response sent) and the peak."""

    def __init__(self, addresses: list[str], upstream_port: int) -> None:
        self.addresses = addresses
        self.upstream_port = upstream_port
        self.active: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CountingProxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        for _ in range(20):
            probe = socket.socket()
            probe.bind((self.addresses[0], 0))
            port = probe.getsockname()[1]
            probe.close()
            try:
                for addr in self.addresses:
                    await asyncio.start_server(self._serve, addr, port)
            except OSError:
                continue
            self.port = port
            return
        raise RuntimeError("no common free port")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr = writer.get_extra_info("sockname")[0]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        self.active[addr] += 1
        self.peak[addr] = max(self.peak[addr], self.active[addr])
        self.served[addr] += 1
        try:
            lines = [ln for ln in head.split(b"\r\n") if ln and not ln.lower().startswith(b"connection:")]
            request = b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n"
            up_reader, up_writer = await asyncio.open_connection(addr, self.upstream_port)
            up_writer.write(request)
            await up_writer.drain()
            body = await up_reader.read()
            up_writer.close()
            writer.write(body)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.active[addr] -= 1
            writer.close()


@pytest.fixture()
def slow_farm(simnet_factory: Callable[..., Any]) -> Iterator[tuple[Any, CountingProxy]]:
    """40 sites on one address, every page 300 ms late, behind a counting proxy."""
    net = simnet_factory("generated", sites=40, addresses=1, delay_ms=300, failure_rate=0.0)
    proxy = CountingProxy(list(net.addresses), net.http_port).start()
    try:
        yield net, proxy
    finally:
        proxy.stop()


def test_per_ip_limit_is_shared_by_workers(
    slow_farm: tuple[Any, CountingProxy],
    tmp_path: Path,
    fresh_pg_database: Callable[[], str],
    redis_url: str,
    redis_prefix: str,
) -> None:
    net, proxy = slow_farm
    ws = pg_workspace(tmp_path, net, fresh_pg_database())
    sites = {s["address"] for s in net.ground_truth["sites"]}
    assert len(sites) == 1
    (address,) = sites
    limit = 2
    extra: dict[str, Any] = {
        "BADGEWATCH_REDIS_URL": redis_url,
        "BADGEWATCH_REDIS_PREFIX": redis_prefix,
        "BADGEWATCH_PER_IP_CONCURRENCY": str(limit),
        "BADGEWATCH_HTTP_PORT": str(proxy.port),
        "BADGEWATCH_CONCURRENCY": "32",
    }
    # The waiting `scan` reports progress and may be the one that closes the scan.
    waiting = ws.popen("scan", "--distributed", "--json", "--render", "never", **extra)
    deadline = time.monotonic() + 60
    while not _keys(redis_url, redis_prefix) and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [ws.popen("worker", **extra) for _ in range(2)]
    for w in workers:
        _, err = _finish(w, timeout=300)
        assert w.returncode == 0, err[-4000:]
    out, err = _finish(waiting, timeout=120)
    assert waiting.returncode == 0, err[-4000:]
    result = json.loads(out)
    assert result["status"] == "finished"
    assert "badgewatch worker --scan" in err

    # Both workers worked, and together they never had more than `limit` requests on the address
    # (each alone would have allowed `limit`: without the shared semaphore the peak would reach 2×).
    assert result["counters"]["workers"] == 2
    assert proxy.served[address] >= 40
    assert proxy.peak[address] == limit, dict(proxy.peak)
    # Nothing left but the addresses' politeness state, which expires by itself (an hour).
    assert [k for k in _keys(redis_url, redis_prefix) if not k.startswith(redis_prefix + "pol:")] == []


# --- leases, on a real Redis ---------------------------------------------------------------------------


def test_expired_leases_return_and_poison_subjects_are_given_up(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    frontier = Frontier(client, redis_prefix, 1, lease_s=1.0)
    assert frontier.seed(["site:1", "site:2", "domain:3"], total=3, done_before=0) == 3
    assert frontier.take("a", 2) == ["site:1", "site:2"]
    assert frontier.renew("a", ["site:1"]) == []
    assert frontier.renew("b", ["site:2"]) == ["site:2"]  # b holds nothing
    time.sleep(1.1)
    # a died: its leases expired; b takes them back first, then the rest.
    taken = frontier.take("b", 5)
    assert set(taken[:2]) == {"site:1", "site:2"} and taken[2] == "domain:3"
    assert frontier.renew("a", ["site:1"]) == ["site:1"]  # a's late renewal: lost
    frontier.ack(["site:1", "site:2"])
    st = frontier.status()
    assert (st.pending, st.leased, st.done) == (0, 1, 2) and not st.drained
    # A subject whose workers keep dying is given up after MAX_EXPIRED_LEASES expiries.
    for _ in range(MAX_EXPIRED_LEASES):
        time.sleep(1.1)
        frontier.take("c", 1)
    assert frontier.failed_subjects() == ["domain:3"]
    assert frontier.status().drained
    frontier.delete()
    assert _keys(redis_url, redis_prefix) == []
    client.close()


def test_ip_places_are_kept_briefly_and_never_exceed_the_limit(redis_url: str, redis_prefix: str) -> None:
    """Two workers' semaphores on one address (limit 2) on real Redis: a released place is reused by
    its worker without Redis, goes back to Redis after ``IP_IDLE_S`` for the other worker, and the
    holders in Redis never exceed the limit; closing returns every place."""
    import asyncio

    import redis

    from crawler.distributed import IP_IDLE_S, IpSemaphore

    key = redis_prefix + "ip:192.0.2.7"
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    async def scenario() -> None:
        a = IpSemaphore(redis_url, redis_prefix, 2, 30)
        b = IpSemaphore(redis_url, redis_prefix, 2, 30)
        t1 = await a.acquire("192.0.2.7")
        t2 = await a.acquire("192.0.2.7")
        assert client.zcard(key) == 2 and a.redis_acquires == 2
        await a.release("192.0.2.7", t1)
        # Reused by its worker without asking Redis.
        assert await a.acquire("192.0.2.7") == t1 and a.redis_acquires == 2
        await a.release("192.0.2.7", t1)
        # The other worker finds the address full until A's idle place goes back.
        started = asyncio.get_running_loop().time()
        waiting = asyncio.ensure_future(b.acquire("192.0.2.7"))
        peak = 0
        while not waiting.done():
            peak = max(peak, client.zcard(key))
            await asyncio.sleep(0.02)
        waited = asyncio.get_running_loop().time() - started
        assert waited >= IP_IDLE_S * 0.8, waited
        assert b.waits > 0 and peak <= 2
        assert client.zcard(key) == 2  # A's place in use (t2) and B's new one
        # A waiter of the same worker gets a released place directly.
        handed = asyncio.ensure_future(a.acquire("192.0.2.7"))
        await asyncio.sleep(0.05)
        assert not handed.done()
        await a.release("192.0.2.7", t2)
        assert await asyncio.wait_for(handed, 1) == t2
        await a.aclose()
        assert client.zcard(key) == 1  # only B's place is left
        await b.aclose()
        assert client.zcard(key) == 0

    try:
        asyncio.run(scenario())
    finally:
        client.close()


@pytest.mark.redis
def test_rate_and_bans_are_shared_by_workers(redis_url: str, redis_prefix: str) -> None:
    """Two workers' politeness on one address (600 a minute) on real Redis: their requests together
    start at most one per 0.1 s; a ban one worker sees holds the other."""
    import asyncio

    from crawler.politeness import PolitenessSettings, Signal
    from crawler.shared_politeness import SharedPoliteness

    settings = PolitenessSettings(concurrency=8, rate_per_min=600, ban_s=1.0)
    address = "192.0.2.9"

    async def worker(pol: SharedPoliteness, n: int, starts: list[float]) -> None:
        for _ in range(n):
            token = await pol.acquire(address)
            starts.append(time.monotonic())
            await pol.release(address, token)

    async def scenario() -> tuple[list[float], float]:
        a = SharedPoliteness(redis_url, redis_prefix, settings, 30)
        b = SharedPoliteness(redis_url, redis_prefix, settings, 30)
        starts: list[float] = []
        try:
            await asyncio.gather(worker(a, 8, starts), worker(b, 8, starts))
            # A ban seen by A (two hosts answering the same CC page) holds B.
            a.feedback(address, Signal.BAN, host="x.example", mark="page:cc")
            a.feedback(address, Signal.BAN, host="y.example", mark="page:cc")
            await asyncio.sleep(0.2)  # the feedback reaches Redis
            t0 = time.monotonic()
            await b.release(address, await b.acquire(address))
            held = time.monotonic() - t0
        finally:
            await a.aclose()
            await b.aclose()
        return sorted(starts), held

    starts, held = asyncio.run(scenario())
    gaps = [y - x for x, y in itertools.pairwise(starts)]
    assert len(starts) == 16 and min(gaps) >= 0.1 - 0.02, gaps
    assert held >= 0.6  # most of the one-second ban (less the feedback's 0.2 s)
