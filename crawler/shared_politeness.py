"""Politeness shared by the workers of a distributed scan: per-address concurrency (the Redis counting
semaphore of :class:`crawler.distributed.IpSemaphore`), and the rate, its adaptation and bans kept in
one Redis hash per address, so N workers together send what one would (see
:mod:`crawler.politeness` for the rules).

Pacing asks Redis once per request (a Lua script takes the address's next start time) only when the
address has a rate; adaptation on push-back is one script call; answers without push-back are counted
locally and reported every :data:`crawler.politeness.RECOVER_AFTER` of them. Times are wall-clock
milliseconds (workers on several machines share them; a skew of a second shifts one request).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis
import redis.asyncio

from crawler.ip_places import IpSemaphore, shared_client
from crawler.politeness import (
    HORIZON_S,
    MAX_BANS,
    MAX_WAIT_S,
    RECOVER_AFTER,
    PolitenessSettings,
    Signal,
    Witnesses,
    backlog_s,
)

log = logging.getLogger(__name__)

# KEYS[1]: the address's hash; ARGV: now (ms), its rate when none is stored, key life (ms).
# Returns {-1, banned until} while banned, {0, 0} without a rate, else {1, start time (ms)}.
_PACE = """
local now = tonumber(ARGV[1])
local banned = tonumber(redis.call('HGET', KEYS[1], 'banned') or '0')
if banned > now then return {-1, banned} end
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ARGV[2])
if rate <= 0 then return {0, 0} end
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local start = math.max(now, nxt)
redis.call('HSET', KEYS[1], 'next', start + 60000 / rate)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, start}
"""
# ARGV: signal (ok|pushback|ban), now (ms), configured rate, min rate, ban (ms), max ban (ms),
# Retry-After (ms, 0 if none), key life (ms), bans waited out at most (then it stops waiting).
# Returns the address's rate after the change.
_FEEDBACK = """
local now = tonumber(ARGV[2])
local ceiling = tonumber(ARGV[3])
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ARGV[3])
if ARGV[1] == 'ok' then
  if ceiling > 0 and rate < ceiling then
    rate = math.min(ceiling, rate + ceiling / 10)
    redis.call('HSET', KEYS[1], 'rate', rate)
  end
else
  if ceiling > 0 then
    rate = math.max(tonumber(ARGV[4]), (rate > 0 and rate or ceiling) / 2)
    redis.call('HSET', KEYS[1], 'rate', rate)
  end
  local retry = tonumber(ARGV[7])
  if (ARGV[1] == 'ban' or retry > 0) and redis.call('HINCRBY', KEYS[1], 'bans', 1) <= tonumber(ARGV[9]) then
    local last = tonumber(redis.call('HGET', KEYS[1], 'ban') or '0')
    local len = retry
    if len <= 0 then len = last > 0 and last * 2 or tonumber(ARGV[5]) end
    len = math.min(tonumber(ARGV[6]), len)
    redis.call('HSET', KEYS[1], 'ban', len, 'banned', now + len)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return tostring(rate)
"""
# An address's state (its slowed rate, a ban, the bans counted) outlives the scan that saw it by an hour:
# a second pass or the next scan minutes later finds it; then it goes by itself.
KEY_LIFE_MS = 3600 * 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


class SharedPoliteness:
    """The :class:`crawler.politeness.Politeness` interface over Redis (one per worker)."""

    def __init__(
        self,
        url: str,
        prefix: str,
        settings: PolitenessSettings,
        ttl_s: float,
        rates: dict[str, float] | None = None,
    ) -> None:
        self.settings = settings
        self.places = IpSemaphore(url, prefix, settings.concurrency, ttl_s)
        self.url = url
        self.prefix = prefix + "pol:"
        self._rates = dict(rates or {})
        self._client: Any = None
        self._pace: Any = None
        self._feedback: Any = None
        self._calm: dict[str, int] = {}
        self._banned: dict[str, float] = {}  # address -> wall-clock ms, as last seen
        self._subjects: dict[str, int] = {}
        # What this worker knows of an address's queue (the frontier's admission): its requests waiting
        # for a place or a turn, its subjects started that have not asked yet, the next start it was given.
        self._queued: dict[str, int] = {}
        self._fresh: dict[str, int] = {}
        self._next: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # feedback in flight (kept until done)
        self._witnesses: dict[str, Witnesses] = {}  # addresses that pushed back lately (at most 4,096)
        self.bans = 0
        self.pushbacks = 0

    def _ready(self) -> None:
        if self._client is None:
            self._client = shared_client(self.url)
            self._pace = self._client.register_script(_PACE)
            self._feedback = self._client.register_script(_FEEDBACK)

    def set_rate(self, address: str, rate_per_min: float) -> None:
        self._rates[address] = rate_per_min

    def _ceiling(self, address: str) -> float:
        return self._rates.get(address, self.settings.rate_per_min)

    async def acquire(self, address: str) -> str:
        if self._fresh.get(address):
            self._fresh[address] -= 1
        self._queued[address] = self._queued.get(address, 0) + 1
        try:
            token = await self.places.acquire(address)
            try:
                await self._wait_turn(address)
            except BaseException:
                await self.places.release(address, token)
                raise
        finally:
            left = self._queued[address] - 1
            if left:
                self._queued[address] = left
            else:
                del self._queued[address]
        return token

    async def _wait_turn(self, address: str) -> None:
        self._ready()
        while True:
            try:
                kind, when = await asyncio.wait_for(
                    self._pace(
                        keys=[self.prefix + address], args=[_now_ms(), self._ceiling(address), KEY_LIFE_MS]
                    ),
                    10,
                )
            except (redis.RedisError, TimeoutError) as exc:
                log.warning("pacing %s: %s; retrying", address, exc or type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            kind, when = int(kind), int(when)
            if kind == 0:
                return
            wait = (when - _now_ms()) / 1000
            rate = self._ceiling(address)
            if kind > 0 and rate > 0:
                self._next[address] = max(self._next.get(address, 0), when + int(60000 / rate))
            if kind < 0:
                self._banned[address] = when
                await asyncio.sleep(min(MAX_WAIT_S, max(0.05, wait)))
                continue
            if wait > 0:
                await asyncio.sleep(wait)
            return

    async def release(self, address: str, token: str) -> None:
        await self.places.release(address, token)

    def feedback(
        self,
        address: str,
        signal: Signal,
        retry_after_s: float | None = None,
        host: str = "",
        mark: str = "",
    ) -> None:
        if not address:
            return
        witnesses = self._witnesses.get(address)
        if witnesses is None and signal is not Signal.OK:
            if len(self._witnesses) >= 4096:
                del self._witnesses[next(iter(self._witnesses))]
            witnesses = self._witnesses[address] = Witnesses()
        mark = "" if signal is Signal.OK else (mark or str(signal))
        if witnesses is not None and not witnesses.agree(host, mark, time.monotonic()) and mark:
            return  # one site's own page (this worker's view), not the address's
        if signal is Signal.OK:
            calm = self._calm.get(address, 0) + 1
            if calm < RECOVER_AFTER:
                self._calm[address] = calm
                return
            self._calm.pop(address, None)
        else:
            self._calm.pop(address, None)
            if signal is Signal.BAN or retry_after_s:
                self.bans += 1
            else:
                self.pushbacks += 1
        task = asyncio.get_running_loop().create_task(self._tell(address, signal, retry_after_s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tell(self, address: str, signal: Signal, retry_after_s: float | None) -> None:
        self._ready()
        s = self.settings
        args = [
            str(signal), _now_ms(), self._ceiling(address), s.min_rate_per_min, int(s.ban_s * 1000),
            int(s.max_ban_s * 1000), int((retry_after_s or 0) * 1000), KEY_LIFE_MS, MAX_BANS,
        ]  # fmt: skip
        try:
            await asyncio.wait_for(self._feedback(keys=[self.prefix + address], args=args), 10)
        except (redis.RedisError, TimeoutError) as exc:
            log.warning("politeness feedback for %s lost: %s", address, exc or type(exc).__name__)

    def admit(self, address: str) -> bool:
        """As :meth:`crawler.politeness.Politeness.admit`, from what this worker has seen (the other
        workers' requests show in the next start times Redis hands out)."""
        now = _now_ms()
        if self._banned.get(address, 0) > now:
            return False
        if self._subjects.get(address, 0) >= self.settings.subject_limit:
            return False
        rate = self._ceiling(address)
        queued = self._queued.get(address, 0) + self._fresh.get(address, 0)
        return rate <= 0 or backlog_s((self._next.get(address, 0) - now) / 1000, queued, rate) < HORIZON_S

    def started(self, address: str) -> None:
        self._subjects[address] = self._subjects.get(address, 0) + 1
        self._fresh[address] = self._fresh.get(address, 0) + 1

    def finished(self, address: str) -> None:
        n = self._subjects.get(address, 0) - 1
        if n > 0:
            self._subjects[address] = n
            self._fresh[address] = min(self._fresh.get(address, 0), n)
        else:
            for known in (self._subjects, self._banned, self._fresh, self._next, self._witnesses):
                known.pop(address, None)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        await self.places.aclose()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
