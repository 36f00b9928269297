"""Politeness per address (crawler.politeness) and the frontier that starts subjects of ready addresses
(crawler.frontier): the rules themselves, on the event loop. The scans that keep a platform's CC limit
are in tests/crawler/test_politeness_scan.py."""

from __future__ import annotations

import asyncio
import itertools
import time

from crawler.fetcher import signal_of
from crawler.frontier import AddressFrontier
from crawler.jobs import SiteJob
from crawler.politeness import (
    HORIZON_S,
    MAX_BANS,
    RECOVER_AFTER,
    Politeness,
    PolitenessSettings,
    Signal,
    page_mark,
)


async def _starts(pol: Politeness, address: str, n: int) -> list[float]:
    """The start times of ``n`` requests to ``address`` (each released at once)."""
    starts = []
    for _ in range(n):
        token = await pol.acquire(address)
        starts.append(time.monotonic())
        await pol.release(address, token)
    return starts


def test_rate_spaces_requests_per_address() -> None:
    pol = Politeness(PolitenessSettings(concurrency=8, rate_per_min=600))  # one every 0.1 s

    async def go() -> tuple[list[float], list[float]]:
        return await asyncio.gather(_starts(pol, "10.0.0.1", 6), _starts(pol, "10.0.0.2", 6))

    one, two = asyncio.run(go())
    for starts in (one, two):
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert min(gaps) >= 0.1 - 0.01, gaps
    # The two addresses are paced apart: the second did not wait behind the first.
    assert abs(one[-1] - two[-1]) < 0.1


def test_rate_zero_is_concurrency_only() -> None:
    pol = Politeness(PolitenessSettings(concurrency=2, rate_per_min=0))

    async def go() -> int:
        held = [await pol.acquire("a"), await pol.acquire("a")]
        third = asyncio.ensure_future(pol.acquire("a"))
        await asyncio.sleep(0.05)
        blocked = not third.done()
        await pol.release("a", held[0])
        await asyncio.wait_for(third, 1)
        return int(blocked)

    assert asyncio.run(go()) == 1


def test_pushback_halves_and_calm_recovers() -> None:
    s = PolitenessSettings(rate_per_min=120, min_rate_per_min=20)
    pol = Politeness(s)
    pol.feedback("a", Signal.PUSHBACK)
    assert pol._state("a").rate == 60
    for _ in range(5):
        pol.feedback("a", Signal.PUSHBACK)
    assert pol._state("a").rate == 20  # never below the minimum
    assert not pol.snapshot()["a"]["bans"]
    for _ in range(RECOVER_AFTER - 1):
        pol.feedback("a", Signal.OK)
    assert pol._state("a").rate == 20  # recovers slowly: a tenth after RECOVER_AFTER calm answers
    pol.feedback("a", Signal.OK)
    assert pol._state("a").rate == 32
    for _ in range(RECOVER_AFTER * 20):
        pol.feedback("a", Signal.OK)
    assert pol._state("a").rate == 120  # back to the configured rate, not above


def test_ban_holds_the_address_then_resumes() -> None:
    pol = Politeness(PolitenessSettings(rate_per_min=0, ban_s=0.3))

    async def go() -> float:
        pol.feedback("a", Signal.BAN)
        assert not pol.admit("a")
        assert pol.admit("b")
        started = time.monotonic()
        await pol.release("a", await pol.acquire("a"))
        return time.monotonic() - started

    waited = asyncio.run(go())
    assert waited >= 0.3 - 0.02
    assert pol.admit("a")


def test_retry_after_sets_the_ban_and_repeated_bans_double_until_given_up() -> None:
    pol = Politeness(PolitenessSettings(rate_per_min=60, ban_s=10, max_ban_s=25))
    pol.feedback("a", Signal.BAN, retry_after_s=3)
    st = pol._state("a")
    assert 2.5 < st.banned_until - time.monotonic() <= 3
    st.banned_until = 0
    pol.feedback("a", Signal.BAN)
    assert st.ban_s == 6  # doubles the last
    st.banned_until = 0
    pol.feedback("a", Signal.BAN)
    assert st.ban_s == 12
    st.banned_until = 0
    assert st.bans == MAX_BANS
    pol.feedback("a", Signal.BAN)  # past MAX_BANS: no more waiting, the slowest rate
    assert st.banned_until == 0
    assert st.rate == pol.settings.min_rate_per_min
    other = Politeness(PolitenessSettings(ban_s=10, max_ban_s=25))
    other.feedback("b", Signal.BAN, retry_after_s=3600)  # a Retry-After longer than the longest wait
    assert 24 < other._state("b").banned_until - time.monotonic() <= 25


def test_signal_of_statuses() -> None:
    assert signal_of(200, {}) == (Signal.OK, None)
    assert signal_of(503, {}) == (Signal.PUSHBACK, None)
    assert signal_of(429, {}) == (Signal.BAN, None)
    assert signal_of(503, {b"Retry-After": b" 120 "}) == (Signal.BAN, 120.0)
    assert signal_of(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == (Signal.BAN, None)
    assert signal_of(429, {b"Retry-After": b"999999"})[1] == 4 * 3600.0


def test_admit_keeps_a_horizon_of_the_rate_queued() -> None:
    rate = 60.0  # one a second: HORIZON_S of it is HORIZON_S requests
    pol = Politeness(PolitenessSettings(rate_per_min=rate, concurrency=8, subjects_per_address=100))
    admitted = 0
    while pol.admit("a"):
        pol.started("a")
        admitted += 1
        assert admitted < 100
    assert admitted == int(HORIZON_S * rate / 60)
    pol.finished("a")
    assert pol.admit("a")


def _jobs(hosts: list[str]) -> list[SiteJob]:
    return [
        SiteJob(website_id=i, url=f"http://{h}/", expected=None)  # type: ignore[arg-type]
        for i, h in enumerate(hosts)
    ]


def test_frontier_does_not_block_on_a_busy_address() -> None:
    """Ten subjects of a platform come first in the registry; the platform takes two at a time. The
    subjects of other addresses start at once, not behind the platform's."""
    hosts = [f"s{i}.platform.example" for i in range(10)] + [f"own{i}.example" for i in range(5)]
    addresses = {h: ("10.0.0.1" if "platform" in h else f"10.0.1.{i}") for i, h in enumerate(hosts)}
    pol = Politeness(PolitenessSettings(rate_per_min=0, subjects_per_address=2))

    async def address_of(host: str) -> str:
        return addresses[host]

    async def go() -> list[str]:
        order: list[str] = []
        frontier = AddressFrontier(_jobs(hosts), pol, address_of)
        running: list[asyncio.Task[None]] = []

        async def subject(address: str) -> None:
            await asyncio.sleep(0.05)
            pol.finished(address)

        async for _job, address in frontier:
            order.append(address)
            running.append(asyncio.ensure_future(subject(address)))
        await asyncio.gather(*running)
        assert frontier.deferrals >= 8
        return order

    order = asyncio.run(go())
    assert len(order) == 15
    # The five own addresses all start among the first seven (after the platform's first two).
    assert all(a != "10.0.0.1" for a in order[2:7]), order
    assert order.count("10.0.0.1") == 10


def test_frontier_keeps_unresolvable_subjects() -> None:
    pol = Politeness(PolitenessSettings())

    async def address_of(host: str) -> str:
        raise OSError("no such name")

    async def go() -> list[tuple[str, str]]:
        frontier = AddressFrontier(_jobs(["x.example", "y.example"]), pol, address_of)
        return [(job.subject, a) async for job, a in frontier]

    assert asyncio.run(go()) == [("site:0", ""), ("site:1", "")]


def test_one_sites_own_block_page_is_not_the_platforms() -> None:
    """On a platform, one site's WAF page (however often) leaves the address alone; a second site
    answering the same within a minute is the address's CC rule."""
    pol = Politeness(PolitenessSettings(rate_per_min=120, ban_s=60))
    for _ in range(5):
        pol.feedback("10.0.0.1", Signal.PUSHBACK, host="waf.example")
        pol.feedback("10.0.0.1", Signal.BAN, host="waf.example")
    st = pol._state("10.0.0.1")
    assert st.rate == 120 and st.banned_until == 0 and pol.bans == 0
    pol.feedback("10.0.0.1", Signal.BAN, host="other.example")
    assert st.rate == 60 and st.banned_until > time.monotonic() + 59 and pol.bans == 1


def test_two_sites_in_maintenance_on_a_shared_host_are_not_a_ban() -> None:
    """Two of a shared host's sites answer 503 + Retry-After (their own maintenance) among many normal
    answers: the address is not banned; when most of its answers push back, it is."""
    pol = Politeness(PolitenessSettings(rate_per_min=120, ban_s=60))
    pol.feedback("10.0.0.2", Signal.BAN, retry_after_s=3600, host="m1.example")
    for i in range(9):
        pol.feedback("10.0.0.2", Signal.OK, host=f"ok{i}.example")
    pol.feedback("10.0.0.2", Signal.BAN, retry_after_s=3600, host="m2.example")
    assert pol.bans == 0 and pol._state("10.0.0.2").banned_until == 0
    for i in range(12):
        pol.feedback("10.0.0.2", Signal.BAN, host=f"cc{i}.example")  # the CC rule answers every site
    assert pol.bans >= 1 and pol._state("10.0.0.2").banned_until > time.monotonic()


def test_different_wafs_on_a_shared_host_do_not_agree_one_cc_page_does() -> None:
    """A shared host's sites behind their own WAFs answer with different pages: not the address's push-back.
    A platform's CC rule answers every site with one template (its request ids and times aside)."""
    pol = Politeness(PolitenessSettings(rate_per_min=120))
    for i, vendor in enumerate(("jiasule", "360", "baota", "tencent", "safedog")):
        page = f"<html><title>{vendor}</title>blocked by {vendor} WAF</html>".encode()
        pol.feedback("10.0.0.3", Signal.PUSHBACK, host=f"s{i}.example", mark=page_mark(page))
    assert pol._state("10.0.0.3").rate == 120 and pol.pushbacks == 0
    for i in range(2):
        page = f"访问过于频繁 请求编号 {i * 7919:x}a3f9c2d1 时间 2026-12-04 01:0{i}:00 IP 10.1.2.{i}".encode()
        pol.feedback("10.0.0.4", Signal.BAN, host=f"p{i}.example", mark=page_mark(page))
    assert pol.bans == 1 and pol._state("10.0.0.4").banned_until > time.monotonic()
