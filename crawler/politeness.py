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
* a **ban** (429, ``Retry-After``, a rate-limit page): the address is left alone for
  ``Retry-After`` or ``ban_backoff_s`` (doubling while bans repeat, at most ``ban_max_s``) and
  resumed after it; after :data:`MAX_BANS` the scan stops waiting for it;
* a push-back or ban shown by a page or a status counts once different hosts of the address show it
  and it is most of what the address answered lately (:class:`Witnesses`): on a platform, one site's
  own WAF or maintenance page is not the platform's CC rule, which answers every site alike.

:class:`Politeness` is the limiter of one process; :class:`crawler.shared_politeness.SharedPoliteness` keeps
the same state in Redis for the workers of a distributed scan. Both hand out *places* the way
a per-address semaphore would (``acquire`` → token, ``release``), and answer
:meth:`admit` for the frontier: a subject of an address without a free place or rate budget is not
started (it would only hold one of the scan's slots while it waits), the subjects of other addresses
go first.

Rate 0 means no rate limit (concurrency only), as benchmarks and tests of other things use.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

#: Answers without push-back before an address's rate grows again by a tenth of the configured rate.
RECOVER_AFTER = 20
#: Longest single sleep while waiting for an address (bans are re-checked after it).
MAX_WAIT_S = 30.0
#: Seconds of an address's rate the frontier keeps queued: a new subject of the address starts only while
#: the requests already waiting for it (and the subjects started that have not asked yet) would go out
#: within this time, so the address never idles and its subjects do not fill the scan's slots.
HORIZON_S = 2.0
#: Bans of one address the scan waits out; after them it stops waiting (the address stays at its slowest
#: rate, its pages say they are rate-limited and its subjects end ``unknown``): a site that always
#: answers with a rate-limit notice must not hold the night for hours.
MAX_BANS = 3
#: Push-back counts for an address once this many of its hosts showed it, and at least half of its last
#: :data:`RECENT` answers (within :data:`WITNESS_S`) were push-back: on a platform or a shared host, one
#: site's own WAF page, maintenance notice or broken backend is that site's, while a CC rule of the address
#: answers every site alike.
WITNESSES = 2
RECENT = 12
WITNESS_S = 60.0


class Limiter(Protocol):
    """What the fetcher, the middleware and the frontier ask of the politeness layer
    (:class:`Politeness` in one process, :class:`crawler.shared_politeness.SharedPoliteness` over Redis)."""

    async def acquire(self, address: str) -> str: ...
    async def release(self, address: str, token: str) -> None: ...
    def set_rate(self, address: str, rate_per_min: float) -> None: ...
    def feedback(
        self,
        address: str,
        signal: Signal,
        retry_after_s: float | None = None,
        host: str = "",
        mark: str = "",
    ) -> None: ...
    def admit(self, address: str) -> bool: ...
    def started(self, address: str) -> None: ...
    def finished(self, address: str) -> None: ...


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
    waiting: int = 0  # requests waiting for a place (concurrency)
    subjects: int = 0  # subjects of this address in flight (the frontier's count)
    fresh: int = 0  # subjects started that have not asked for a place yet
    calm: int = 0  # answers without push-back since the last change of rate
    pushbacks: int = 0
    bans: int = 0
    witnesses: Witnesses = field(default_factory=lambda: Witnesses())


class Witnesses:
    """The last answers of one address, their hosts and what each pushed back with: whether push-back
    is the address's (see :data:`WITNESSES`)."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        # (time, host, mark): mark "" for an answer without push-back, else what it was (a status, the
        # fingerprint of a page: :func:`page_mark`).
        self.seen: collections.deque[tuple[float, str, str]] = collections.deque(maxlen=RECENT)

    def agree(self, host: str, mark: str, now: float) -> bool:
        """Record an answer of ``host`` (``mark``: what it pushed back with, "" for none); whether the
        address's recent answers say push-back now: most of them pushed back, and at least
        :data:`WITNESSES` hosts with the same answer (a platform's CC rule answers every site with one
        page; the sites of a shared host behind their own WAFs answer with different ones). A signal
        without a host (a connection reset) stands for the address."""
        if not host:
            return bool(mark)
        while self.seen and self.seen[0][0] < now - WITNESS_S:
            self.seen.popleft()
        if mark:
            # The same answer counted as fine by its status first, then as push-back by its page.
            for n in range(len(self.seen) - 1, -1, -1):
                if self.seen[n][1] == host:
                    if not self.seen[n][2]:
                        del self.seen[n]
                    break
        self.seen.append((now, host, mark))
        if not mark:
            return False
        bad = [(h, m) for _t, h, m in self.seen if m]
        if 2 * len(bad) < len(self.seen):
            return False
        return len({h for h, m in bad if m == mark}) >= WITNESSES


def page_mark(body: bytes) -> str:
    """A push-back page's fingerprint: its first 4 KiB without digits and hex runs (request ids, times,
    the client's address change from one answer to the next; the template does not)."""
    text = re.sub(rb"[0-9a-fA-F]{6,}|[0-9]+", b"", body[:4096])
    return "page:" + hashlib.blake2b(text, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class PolitenessSettings:
    concurrency: int = 8
    rate_per_min: float = 120.0
    min_rate_per_min: float = 6.0
    ban_s: float = 600.0
    max_ban_s: float = 1800.0
    subjects_per_address: int = 0  # subjects in flight per address (0: twice the concurrency)

    @property
    def subject_limit(self) -> int:
        return self.subjects_per_address or max(2, 2 * self.concurrency)


def backlog_s(until_next_s: float, queued: int, rate_per_min: float) -> float:
    """Seconds of an address's rate already spoken for: the time to its next free start plus the
    requests queued for a place (a subject started counts as one request to come)."""
    return max(0.0, until_next_s) + queued * 60.0 / rate_per_min


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
        st.fresh = max(0, st.fresh - 1)
        st.waiting += 1
        try:
            async with cond:
                await cond.wait_for(lambda: st.in_use < self.settings.concurrency)
                st.in_use += 1
        finally:
            st.waiting -= 1
        try:
            await self._pace(st)
        except BaseException:
            await self.release(address, "")
            raise
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

    def feedback(
        self,
        address: str,
        signal: Signal,
        retry_after_s: float | None = None,
        host: str = "",
        mark: str = "",
    ) -> None:
        """Adapt ``address`` to what an answer from ``host`` said (see the module docstring); ``mark``
        tells push-back answers apart (:class:`Witnesses`; by default the signal)."""
        if not address or (signal is Signal.OK and address not in self._states):
            return  # an idle address at its configured rate has nothing to recover or weigh
        st = self._state(address)
        ceiling = self._ceiling(address)
        now = time.monotonic()
        mark = "" if signal is Signal.OK else (mark or str(signal))
        if not st.witnesses.agree(host, mark, now) and mark:
            return  # one site's own page, not the address's
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
        st.bans += 1
        self.bans += 1
        if st.bans > MAX_BANS:
            return
        # A ban: the address's protection has us blocked; stay away for its time, then resume.
        length = min(self.settings.max_ban_s, retry_after_s or (st.ban_s * 2) or self.settings.ban_s)
        st.ban_s = length
        st.banned_until = max(st.banned_until, now + length)

    # --- the frontier ---------------------------------------------------------------------------

    def admit(self, address: str) -> bool:
        """Whether a subject of ``address`` may start now: not banned, fewer of its subjects in flight
        than :attr:`PolitenessSettings.subject_limit`, and (with a rate) less than :data:`HORIZON_S`
        of the address's rate already queued."""
        st = self._states.get(address)
        if st is None:
            return True
        now = time.monotonic()
        if st.banned_until > now or st.subjects >= self.settings.subject_limit:
            return False
        return st.rate <= 0 or backlog_s(st.next_at - now, st.waiting + st.fresh, st.rate) < HORIZON_S

    def started(self, address: str) -> None:
        st = self._state(address)
        st.subjects += 1
        st.fresh += 1

    def finished(self, address: str) -> None:
        st = self._states.get(address)
        if st is not None:
            st.subjects = max(0, st.subjects - 1)
            st.fresh = min(st.fresh, st.subjects)
            self._forget(address, st)

    def snapshot(self) -> dict[str, dict[str, float]]:
        """The addresses that pushed back or are slowed (for the scan's counters and logs)."""
        return {
            a: {"rate": round(s.rate, 1), "bans": s.bans, "pushbacks": s.pushbacks}
            for a, s in self._states.items()
            if s.bans or s.pushbacks or (s.rate and s.rate < self._ceiling(a))
        }
