"""Politeness per server address: how many requests at once, how many per minute, and backing off when
an address pushes back.

Most government sites sit on a few consolidation platforms (集约化) behind CC protection that counts a
client's requests over *all* their sites (typically 60–300 a minute, then a ban of minutes to hours,
often served as a 200 block page). A limit on concurrency alone sends thousands of requests a minute to
one platform. Every address therefore has:

* a **concurrency** limit (``per_ip_concurrency``) and a **rate** (``per_ip_rate_per_min``, requests
  per minute: requests are spaced by 60 / rate seconds);
* **AIMD** adaptation, the idea of Scrapy's AutoThrottle applied to push-back rather than latency: a
  sign of push-back (429/503, ``Retry-After``, a connection reset, a block, challenge or rate-limit
  page) halves the address's rate (not below ``per_ip_min_rate_per_min``); every
  :data:`RECOVER_AFTER` answers without push-back add a tenth of the configured rate back;
* a **ban** (a rate-limit or block page, or ``Retry-After``): the address is left alone for
  ``Retry-After`` or ``ban_backoff_s`` (doubling while bans repeat) and resumed after it.

:class:`Politeness` is the limiter of one process; :class:`crawler.distributed.SharedPoliteness` keeps
the same state in Redis for the workers of a distributed scan. Both hand out *places* the way
a per-address semaphore would (``acquire`` → token, ``release``), and answer
:meth:`admit` for the frontier: a subject of an address without a free place or rate budget is not
started (it would only hold one of the scan's slots while it waits), the subjects of other addresses
go first.

Rate 0 means no rate limit (concurrency only), as benchmarks and tests of other things use.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum

#: Answers without push-back before an address's rate grows again by a tenth of the configured rate.
RECOVER_AFTER = 20
#: Longest single sleep while waiting for an address (bans are re-checked after it).
MAX_WAIT_S = 30.0


class Signal(StrEnum):
    """What an answer said about the address's tolerance."""

    OK = "ok"
    PUSHBACK = "pushback"  # 429/503 without a ban, a reset: slow down
    BAN = "ban"  # a rate-limit or block page, Retry-After: stay away for a while


@dataclass(slots=True)
class AddressState:
    rate: float  # requests per minute allowed now (0: unlimited)
    next_at: float = 0.0  # monotonic time the next request may start
    banned_until: float = 0.0
    ban_s: float = 0.0  # the last ban's length (doubles while bans repeat)
    in_use: int = 0
    waiting: int = 0
    subjects: int = 0  # subjects of this address in flight (the frontier's count)
    calm: int = 0  # answers without push-back since the last change of rate
    pushbacks: int = 0
    bans: int = 0


@dataclass(frozen=True, slots=True)
class PolitenessSettings:
    concurrency: int = 8
    rate_per_min: float = 120.0
    min_rate_per_min: float = 6.0
    ban_s: float = 600.0
    max_ban_s: float = 4 * 3600.0
    subjects_per_address: int = 0  # subjects in flight per address (0: twice the concurrency)

    @property
    def subject_limit(self) -> int:
        return self.subjects_per_address or max(2, 2 * self.concurrency)


class Politeness:
    """Concurrency, rate and bans per address, for one process (see the module docstring)."""

    def __init__(self, settings: PolitenessSettings, rates: dict[str, float] | None = None) -> None:
        self.settings = settings
        self._states: dict[str, AddressState] = {}
        self._rates = dict(rates or {})  # addresses with a rate of their own (CONAC's hosts)
        self._cond: dict[str, asyncio.Condition] = {}
        self.bans = 0
        self.pushbacks = 0

    # --- places ---------------------------------------------------------------------------------

    def _state(self, address: str) -> AddressState:
        st = self._states.get(address)
        if st is None:
            st = self._states[address] = AddressState(self._rates.get(address, self.settings.rate_per_min))
        return st

    def set_rate(self, address: str, rate_per_min: float) -> None:
        """Give ``address`` a configured rate of its own (CONAC's hosts: ``conac_rate_per_min``)."""
        self._rates[address] = rate_per_min
        st = self._states.get(address)
        if st is not None:
            st.rate = min(st.rate, rate_per_min) if rate_per_min else st.rate

    def _ceiling(self, address: str) -> float:
        return self._rates.get(address, self.settings.rate_per_min)

    async def acquire(self, address: str) -> str:
        """Wait for a place at ``address`` (concurrency, rate, ban); returns a token for release."""
        st = self._state(address)
        cond = self._cond.get(address)
        if cond is None:
            cond = self._cond[address] = asyncio.Condition()
        st.waiting += 1
        try:
            async with cond:
                await cond.wait_for(lambda: st.in_use < self.settings.concurrency)
                st.in_use += 1
            try:
                await self._pace(st)
            except BaseException:
                await self.release(address, "")
                raise
        finally:
            st.waiting -= 1
        return ""

    async def _pace(self, st: AddressState) -> None:
        """Sleep out a ban, then take the next start time the rate allows."""
        while True:
            now = time.monotonic()
            if st.banned_until > now:
                await asyncio.sleep(min(MAX_WAIT_S, st.banned_until - now))
                continue
            if st.rate <= 0:
                return
            start = max(now, st.next_at)
            st.next_at = start + 60.0 / st.rate
            if start > now:
                await asyncio.sleep(start - now)
            if st.banned_until <= time.monotonic():
                return

    async def release(self, address: str, token: str) -> None:
        st = self._states.get(address)
        if st is None:
            return
        st.in_use = max(0, st.in_use - 1)
        cond = self._cond.get(address)
        if cond is not None:
            async with cond:
                cond.notify()
        self._forget(address, st)

    def _forget(self, address: str, st: AddressState) -> None:
        # Memory stays flat over a registry: an idle address at its configured rate, not banned, goes.
        if (
            not st.in_use
            and not st.waiting
            and not st.subjects
            and st.banned_until <= time.monotonic()
            and st.rate >= self._ceiling(address)
            and st.next_at <= time.monotonic()
        ):
            self._states.pop(address, None)
            self._cond.pop(address, None)

    # --- feedback -------------------------------------------------------------------------------

    def feedback(self, address: str, signal: Signal, retry_after_s: float | None = None) -> None:
        """Adapt ``address`` to what an answer said (see the module docstring)."""
        if not address:
            return
        st = self._state(address)
        ceiling = self._ceiling(address)
        now = time.monotonic()
        if signal is Signal.OK:
            st.calm += 1
            if ceiling and st.rate < ceiling and st.calm >= RECOVER_AFTER:
                st.rate = min(ceiling, st.rate + ceiling / 10)
                st.calm = 0
            if st.banned_until < now:
                st.ban_s = 0.0
            return
        st.calm = 0
        if ceiling:
            base = st.rate or ceiling
            st.rate = max(self.settings.min_rate_per_min, base / 2)
            st.next_at = max(st.next_at, now) + 60.0 / st.rate
        if signal is Signal.PUSHBACK and not retry_after_s:
            st.pushbacks += 1
            self.pushbacks += 1
            return
        # A ban: the address's protection has us blocked; stay away for its time, then resume.
        length = retry_after_s or min(self.settings.max_ban_s, (st.ban_s * 2) or self.settings.ban_s)
        st.ban_s = length
        st.banned_until = max(st.banned_until, now + length)
        st.bans += 1
        self.bans += 1

    # --- the frontier ---------------------------------------------------------------------------

    def admit(self, address: str) -> bool:
        """Whether a subject of ``address`` may start now: not banned, and fewer of its subjects in
        flight than :attr:`PolitenessSettings.subject_limit`."""
        st = self._states.get(address)
        if st is None:
            return True
        return st.banned_until <= time.monotonic() and st.subjects < self.settings.subject_limit

    def started(self, address: str) -> None:
        self._state(address).subjects += 1

    def finished(self, address: str) -> None:
        st = self._states.get(address)
        if st is not None:
            st.subjects = max(0, st.subjects - 1)
            self._forget(address, st)

    def snapshot(self) -> dict[str, dict[str, float]]:
        """The addresses that pushed back or are slowed (for the scan's counters and logs)."""
        return {
            a: {"rate": round(s.rate, 1), "bans": s.bans, "pushbacks": s.pushbacks}
            for a, s in self._states.items()
            if s.bans or s.pushbacks or (s.rate and s.rate < self._ceiling(a))
        }
