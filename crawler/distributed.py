"""A distributed scan's shared state in Redis: the frontier, leases, the per-IP semaphore, closing.

The frontier of a scan holds **subject strings** (``"site:12"``, ``"domain:7"``), never URLs or pickled
jobs: a worker takes a batch, rebuilds the jobs from the registry (:func:`crawler.jobs.load_jobs`) and
runs them through its own Scrapy downloader. Keys of scan N (``P`` = ``redis_prefix``; the ``{scan:N}``
hash tag keeps them in one slot of a Redis Cluster, so the Lua scripts may touch them together):

==========================  ==================================================================
``P{scan:N}:pending``       LIST of subjects not yet taken (seeded by ``scan --distributed``)
``P{scan:N}:leases``        ZSET subject → lease deadline (ms, Redis clock)
``P{scan:N}:owner``         HASH subject → worker id holding the lease
``P{scan:N}:tries``         HASH subject → how many leases of it expired (only subjects that did)
``P{scan:N}:failed``        SET of subjects given up (a bug in their procedure, or leases expired
                            :data:`MAX_EXPIRED_LEASES` times: a subject that kills its workers)
``P{scan:N}:meta``          HASH total, done, done_before, seeded_at, scope
``P{scan:N}:stats``         HASH counters the workers add up (requests, renders, dns lookups …)
``P{scan:N}:workers``       HASH worker id → last heartbeat (s); how many workers took part
``P{scan:N}:closing``       the once-only closing token
``Pscans``                  SET of scan ids with a frontier (``worker`` without ``--scan``)
``Pip:<address>``           ZSET token → expiry: holders of the per-IP semaphore (shared by scans)
==========================  ==================================================================

A lease is a member of the ``leases`` ZSET with a deadline; the worker renews its leases while it works
and acknowledges a subject (removes it) only after its findings are committed. Taking work first moves
expired leases back to the head of ``pending``, so a worker killed with SIGKILL loses nothing: after
``lease_timeout_s`` its subjects are taken by another worker. scrapy-redis's queues have no leases
(its spiders ``LPOP``/``SPOP`` and forget), which is why these few Lua scripts exist; see
``docs/deployment.md``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import redis
import redis.asyncio

from checks.errors import ServiceError

# Shared per-address places moved to crawler/ip_places.py; their names stay importable from here.
from crawler.ip_places import IP_IDLE_S as IP_IDLE_S
from crawler.ip_places import IpSemaphore as IpSemaphore

log = logging.getLogger(__name__)

# Leases of one subject that may expire before it is given up (each expiry means a worker died or
# stalled while holding it: a subject that crashes its workers must not crash them all, forever).
MAX_EXPIRED_LEASES = 3
SEED_CHUNK = 2000
ACTIVE_SCANS = "scans"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def connect(url: str) -> redis.Redis:
    """A Redis client (strings decoded), failing with a Chinese message when Redis cannot be reached."""
    client = redis.Redis.from_url(
        url, decode_responses=True, health_check_interval=30, socket_timeout=10, socket_connect_timeout=10
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        raise DistributedError(f"无法连接 Redis（{_safe_url(url)}）：{exc}") from exc
    return client


def _safe_url(url: str) -> str:
    """The URL without its password (for messages)."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"


class DistributedError(ServiceError):
    """A distributed scan cannot start or continue (the message says why, in Chinese)."""


# Moves expired leases back to the head of the frontier (the longest expired first), then leases up
# to n subjects.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[3])
local max_expired = tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for i = #expired, 1, -1 do
  local s = expired[i]
  redis.call('ZREM', KEYS[2], s)
  redis.call('HDEL', KEYS[3], s)
  if redis.call('HINCRBY', KEYS[4], s, 1) >= max_expired then
    redis.call('SADD', KEYS[5], s)
  else
    redis.call('LPUSH', KEYS[1], s)
  end
end
redis.call('HSET', KEYS[6], ARGV[2], t[1])
local out = {}
for i = 1, n do
  local s = redis.call('LPOP', KEYS[1])
  if not s then break end
  redis.call('ZADD', KEYS[2], now + lease_ms, s)
  redis.call('HSET', KEYS[3], s, ARGV[2])
  out[#out + 1] = s
end
return out
"""


@dataclass
class FrontierStatus:
    total: int
    pending: int
    leased: int
    failed: int
    done: int
    done_before: int

    @property
    def drained(self) -> bool:
        return self.pending == 0 and self.leased == 0


class Frontier:
    """The shared frontier of one distributed scan (synchronous client: called from threads and
    between batches, never per request)."""

    def __init__(self, client: redis.Redis, prefix: str, scan_id: int, lease_s: float = 60.0) -> None:
        self.r = client
        self.prefix = prefix
        self.scan_id = scan_id
        self.lease_ms = max(1000, int(lease_s * 1000))
        base = f"{prefix}{{scan:{scan_id}}}:"
        self.pending = base + "pending"
        self.leases = base + "leases"
        self.owner = base + "owner"
        self.tries = base + "tries"
        self.failed = base + "failed"
        self.meta = base + "meta"
        self.stats_key = base + "stats"
        self.workers = base + "workers"
        self.closing = base + "closing"
        self.scans = prefix + ACTIVE_SCANS
        self._take = self.r.register_script(_TAKE)

    @property
    def keys(self) -> list[str]:
        return [
            self.pending,
            self.leases,
            self.owner,
            self.tries,
            self.failed,
            self.meta,
            self.stats_key,
            self.workers,
            self.closing,
        ]

    # --- seeding and lifetime -------------------------------------------------------------------------

    def seed(self, subjects: Iterable[str], *, total: int, done_before: int) -> int:
        """Replace the frontier with ``subjects`` (the scan's pending ones); returns how many."""
        self.r.delete(*self.keys)
        n = 0
        chunk: list[str] = []
        for subject in subjects:
            chunk.append(subject)
            if len(chunk) >= SEED_CHUNK:
                self.r.rpush(self.pending, *chunk)
                n += len(chunk)
                chunk = []
        if chunk:
            self.r.rpush(self.pending, *chunk)
            n += len(chunk)
        self.r.hset(
            self.meta,
            mapping={
                "total": total,
                "done": 0,
                "done_before": done_before,
                "seeded": n,
                "seeded_at": time.time(),
                "lease_ms": self.lease_ms,
            },
        )
        self.r.sadd(self.scans, self.scan_id)
        return n

    def exists(self) -> bool:
        return bool(self.r.exists(self.meta))

    def delete(self) -> None:
        """Remove every key of the scan (after it closed)."""
        self.r.delete(*self.keys)
        self.r.srem(self.scans, self.scan_id)

    # --- work -------------------------------------------------------------------------------------------

    def take(self, worker: str, n: int) -> list[str]:
        """Lease up to ``n`` subjects to ``worker`` (expired leases of others first)."""
        out = self._take(
            keys=[self.pending, self.leases, self.owner, self.tries, self.failed, self.workers],
            args=[n, worker, self.lease_ms, MAX_EXPIRED_LEASES],
        )
        return [str(s) for s in out]

    def renew(self, worker: str, subjects: Iterable[str]) -> list[str]:
        """Extend ``worker``'s leases on ``subjects``; returns the subjects it no longer holds."""
        subjects = list(subjects)
        if not subjects:
            return []
        now_s, now_us = self.r.time()
        deadline = int(now_s) * 1000 + int(now_us) // 1000 + self.lease_ms
        owners = self.r.hmget(self.owner, subjects)
        mine = [s for s, o in zip(subjects, owners, strict=True) if o == worker]
        if mine:
            self.r.zadd(self.leases, dict.fromkeys(mine, deadline), xx=True)
        self.r.hset(self.workers, worker, int(now_s))
        return [s for s, o in zip(subjects, owners, strict=True) if o != worker]

    def ack(self, subjects: list[str], stats: dict[str, int] | None = None) -> None:
        """``subjects`` have their findings committed: they leave the lease set for good.

        Unconditional on the owner: if a subject's lease expired and another worker took it, that
        worker's write finds the findings already there and skips them (see
        :func:`crawler.pipelines.write_batch`)."""
        if not subjects:
            return
        with self.r.pipeline(transaction=True) as p:
            p.zrem(self.leases, *subjects)
            p.hdel(self.owner, *subjects)
            p.hdel(self.tries, *subjects)
            p.hincrby(self.meta, "done", len(subjects))
            for name, value in (stats or {}).items():
                if value:
                    p.hincrby(self.stats_key, name, value)
            p.execute()

    def release(self, subjects: list[str]) -> None:
        """Give ``subjects`` back to the frontier at once (e.g. their write failed)."""
        if not subjects:
            return
        with self.r.pipeline(transaction=True) as p:
            p.zrem(self.leases, *subjects)
            p.hdel(self.owner, *subjects)
            p.lpush(self.pending, *subjects)
            p.execute()

    def fail(self, subjects: list[str]) -> None:
        """Give ``subjects`` up in this scan (their procedure raised): the scan ends ``interrupted``
        and ``scan --resume`` tries them again."""
        if not subjects:
            return
        with self.r.pipeline(transaction=True) as p:
            p.zrem(self.leases, *subjects)
            p.hdel(self.owner, *subjects)
            p.sadd(self.failed, *subjects)
            p.execute()

    def add_stats(self, stats: dict[str, int]) -> None:
        with self.r.pipeline(transaction=False) as p:
            for name, value in stats.items():
                if value:
                    p.hincrby(self.stats_key, name, value)
            p.execute()

    # --- state -----------------------------------------------------------------------------------------

    def status(self) -> FrontierStatus:
        with self.r.pipeline(transaction=True) as p:
            p.hmget(self.meta, ["total", "done", "done_before"])
            p.llen(self.pending)
            p.zcard(self.leases)
            p.scard(self.failed)
            meta, pending, leased, failed = p.execute()
        total, done, before = (int(x or 0) for x in meta)
        return FrontierStatus(total, int(pending), int(leased), int(failed), done, before)

    def drained(self) -> bool:
        return self.status().drained

    def failed_subjects(self) -> list[str]:
        return sorted(str(s) for s in self.r.smembers(self.failed))

    def stats(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.r.hgetall(self.stats_key).items()}

    def worker_count(self) -> int:
        return int(self.r.hlen(self.workers))

    def claim_close(self, holder: str, ttl_s: float = 120.0) -> bool:
        """Whether this caller is the one that closes the scan (the first to ask, until ``ttl_s``)."""
        return bool(self.r.set(self.closing, holder, nx=True, px=int(ttl_s * 1000)))

    def unclaim_close(self, holder: str) -> None:
        if self.r.get(self.closing) == holder:
            self.r.delete(self.closing)

    def memory_bytes(self) -> int:
        """Bytes Redis uses for this scan's keys (``MEMORY USAGE``, all elements sampled)."""
        total = 0
        for key in self.keys:
            used = self.r.memory_usage(key, samples=0)
            total += int(used or 0)
        return total


def active_scans(client: redis.Redis, prefix: str) -> list[int]:
    return sorted(int(x) for x in client.smembers(prefix + ACTIVE_SCANS))


def iter_keys(client: redis.Redis, prefix: str) -> Iterator[str]:
    """Every key under ``prefix`` (SCAN, not KEYS: safe on a busy Redis)."""
    for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
        yield str(key)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
