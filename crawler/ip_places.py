"""Places per server address shared by every worker of a distributed scan: a counting semaphore in
Redis whose holders expire (:class:`IpSemaphore`), and the asyncio Redis client of per-request calls.
Apart from :mod:`crawler.distributed` (the scan's frontier) because it serves the politeness layer
(:mod:`crawler.shared_politeness`), not the frontier."""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
import uuid
from typing import Any

import redis
import redis.asyncio

log = logging.getLogger(__name__)

# Counting semaphore with expiring holders: a holder whose worker died frees its place by itself.
# Seconds a worker keeps a place on an address it no longer uses before returning it to Redis.
IP_IDLE_S = 0.5

# Push a held place's expiry forward (only if it is still held: ZADD XX).
_REFRESH_IP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local changed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return changed
"""

_ACQUIRE_IP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
"""


def shared_client(url: str) -> Any:
    """An asyncio Redis client for the per-request calls of a worker (places, pacing). Its pool waits
    for a free connection instead of failing: the requests of hundreds of subjects may ask at once,
    more than redis-py's default pool of 100 (which raised "Too many connections")."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5, max_connections=64, timeout=20
    )
    return redis.asyncio.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


class IpSemaphore:
    """The per-IP concurrency limit shared by every worker: a counting semaphore in Redis whose
    holders expire (a killed worker's places free themselves after ``ttl_s``).

    Asynchronous (``redis.asyncio`` on the crawler's asyncio loop). Asking Redis twice per request
    measured as the worker's largest cost (two workers reached 1.42× one worker's rate with it, 1.81×
    without), so a place, once taken, is kept by the worker while it is in use and for
    :data:`IP_IDLE_S` after: the next request to the same address (the page's sub-resources, the next
    site of a consolidation platform, the CONAC service) reuses it without Redis. Every place in use is
    still a holder in Redis, so all workers together never exceed the limit; a place kept idle is
    returned by a sweeper, and the expiry of places kept long is pushed forward before it falls due.
    A local release hands the place straight to a request of this worker waiting for that address."""

    def __init__(self, url: str, prefix: str, limit: int, ttl_s: float) -> None:
        self.url = url
        self.prefix = prefix + "ip:"
        self.limit = max(1, limit)
        self.ttl_ms = max(1000, int(ttl_s * 1000))
        self._client: Any = None
        self._acquire: Any = None
        self._refresh: Any = None
        self.waits = 0
        self.redis_acquires = 0
        self._address: dict[str, str] = {}  # every place this worker holds: token -> address
        self._refreshed: dict[str, float] = {}  # token -> when its expiry was last set
        self._free: dict[str, list[str]] = {}  # places held but not in use, per address
        self._idle_since: dict[str, float] = {}
        self._waiters: dict[str, collections.deque[asyncio.Future[str]]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def _ready(self) -> None:
        if self._client is None:
            self._client = shared_client(self.url)
            self._acquire = self._client.register_script(_ACQUIRE_IP)
            self._refresh = self._client.register_script(_REFRESH_IP)

    @property
    def held(self) -> int:
        """Places this worker holds in Redis (in use or kept idle)."""
        return len(self._address)

    async def acquire(self, address: str) -> str:
        """Wait for a place on ``address``; returns the token to release."""

        self._ready()
        free = self._free.get(address)
        if free:
            token = free.pop()
            if not free:
                del self._free[address]
            self._idle_since.pop(token, None)
            return token
        token = uuid.uuid4().hex
        delay = 0.005
        while True:
            try:
                got = await asyncio.wait_for(
                    self._acquire(keys=[self.prefix + address], args=[token, self.limit, self.ttl_ms]), 10
                )
            except (redis.RedisError, TimeoutError) as exc:
                # Redis unreachable for a moment: wait and ask again (never send without a place).
                log.warning("per-IP semaphore for %s: %s; retrying", address, exc or type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            self.redis_acquires += 1
            if int(got) == 1:
                self._address[token] = address
                self._refreshed[token] = time.monotonic()
                self._start_sweeper()
                return token
            self.waits += 1
            # Full: wait for one of our own places on this address to be released, or ask Redis again
            # after a back-off (another worker's place may have freed).
            fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(address, collections.deque()).append(fut)
            await asyncio.wait({fut}, timeout=delay * (0.5 + random.random()))
            if fut.done():
                return fut.result()
            fut.cancel()
            delay = min(delay * 2, 0.2)

    async def release(self, address: str, token: str) -> None:
        if token not in self._address:
            return  # its expiry passed in Redis (a long stall): the place is no longer ours
        waiters = self._waiters.get(address)
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(token)
                return
        if waiters is not None:
            del self._waiters[address]
        self._free.setdefault(address, []).append(token)
        self._idle_since[token] = time.monotonic()

    def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Return places kept idle for :data:`IP_IDLE_S`; push forward the expiry of places kept long."""
        refresh_after = self.ttl_ms / 3000
        while self._address:
            await asyncio.sleep(IP_IDLE_S / 2)
            now = time.monotonic()
            idle = [
                (address, token)
                for address, tokens in self._free.items()
                for token in tokens
                if now - self._idle_since[token] >= IP_IDLE_S
            ]
            for address, token in idle:
                self._forget(address, token)
            due = [t for t, at in self._refreshed.items() if now - at >= refresh_after]
            try:
                if idle:
                    pipe = self._client.pipeline(transaction=False)
                    for address, token in idle:
                        pipe.zrem(self.prefix + address, token)
                    await asyncio.wait_for(pipe.execute(), 10)
                for token in due:
                    address = self._address[token]
                    kept = await asyncio.wait_for(
                        self._refresh(keys=[self.prefix + address], args=[token, self.ttl_ms]), 10
                    )
                    self._refreshed[token] = now
                    if not int(kept):
                        log.warning("a place on %s expired in Redis while held: dropped", address)
                        self._forget(address, token)
            except (redis.RedisError, TimeoutError) as exc:
                # Places not returned expire by themselves; the next round tries the rest again.
                log.warning("per-IP semaphore upkeep failed: %s", exc or type(exc).__name__)

    def _forget(self, address: str, token: str) -> None:
        self._address.pop(token, None)
        self._refreshed.pop(token, None)
        self._idle_since.pop(token, None)
        tokens = self._free.get(address)
        if tokens is not None and token in tokens:
            tokens.remove(token)
            if not tokens:
                del self._free[address]

    async def aclose(self) -> None:
        """Return every place this worker holds (in use or idle) and close the connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._client is not None:
            if self._address:
                pipe = self._client.pipeline(transaction=False)
                for token, address in self._address.items():
                    pipe.zrem(self.prefix + address, token)
                try:
                    await asyncio.wait_for(pipe.execute(), 10)
                except (redis.RedisError, TimeoutError) as exc:
                    log.warning("returning %d places failed (%s): they expire by themselves", self.held, exc)
            self._address.clear()
            self._refreshed.clear()
            self._free.clear()
            self._idle_since.clear()
            await self._client.aclose()
            self._client = None
