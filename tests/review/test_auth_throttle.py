"""Login throttling that holds: counted before the password check, per address group and account, per
address, per account across addresses, IPv6 by /64, bounded memory, bounded concurrent Argon2 checks.

The HTTP tests run the real console (uvicorn on loopback) and count what the server actually checked
in its ``auth_event`` trail: every checked attempt writes ``login_success`` or ``login_failure``, a
throttled one writes nothing.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from review.app import create_app
from review.console import Console
from review.security import HASH_GATE, HashGate, LoginThrottle, address_group
from storage.models import AuthEvent, User

from .conftest import csrf_of, serve_app
from .world import PASSWORD, World

WRONG = "not the password at all"


@contextmanager
def console(world: World, **settings: Any) -> Iterator[tuple[str, FastAPI]]:
    """A fresh console (its own throttle) on ``world``'s database, with ``settings`` changed."""
    proxies = settings.pop("forwarded_allow_ips", None)
    app = create_app(dataclasses.replace(world.cfg, **settings), world.engine, forwarded_allow_ips=proxies)
    gen = serve_app(app)
    base = next(gen)
    try:
        yield base, app
    finally:
        gen.close()


def throttle_of(app: FastAPI) -> LoginThrottle:
    c = app.state.console
    assert isinstance(c, Console)
    return c.throttle


def login_form(base: str) -> tuple[dict[str, str], str]:
    """The login form's cookie and token, as a browser gets them."""
    r = httpx.get(base + "/login", timeout=30)
    return dict(r.cookies), csrf_of(r.text)


def attempt(
    base: str, name: str, password: str, form: tuple[dict[str, str], str], forwarded: str | None = None
) -> int:
    cookies, token = form
    headers = {"Origin": base}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    with httpx.Client(base_url=base, cookies=cookies, timeout=60) as c:
        r = c.post(
            "/login", data={"username": name, "password": password, "csrf_token": token}, headers=headers
        )
    return r.status_code


def events(world: World, kind: str, user: str, since: int) -> list[AuthEvent]:
    with world.session() as s:
        return list(
            s.scalars(
                sa.select(AuthEvent).where(
                    AuthEvent.kind == kind, AuthEvent.user_name == user, AuthEvent.id > since
                )
            )
        )


def last_event_id(world: World) -> int:
    with world.session() as s:
        return int(s.scalar(sa.select(sa.func.max(AuthEvent.id))) or 0)


def fire(calls: list[Any]) -> list[int]:
    """Run the calls at once (released together by a barrier); their results in order."""
    results: list[int] = [0] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


# --- over HTTP --------------------------------------------------------------------------------------


def test_fifteen_concurrent_guesses_check_at_most_the_limit(world: World) -> None:
    """The issue's reproduction: 15 guesses at once from one address, the right password among them.
    Only 5 are ever checked (the attempt is counted before the slow Argon2 check); the rest are 429."""
    since = last_event_id(world)
    with console(world) as (base, _app):
        forms = [login_form(base) for _ in range(15)]
        passwords = [WRONG] * 14 + [PASSWORD]
        codes = fire(
            [lambda f=f, p=p: attempt(base, "baoding", p, f) for f, p in zip(forms, passwords, strict=True)]
        )
    checked = [c for c in codes if c in (401, 303)]
    assert len(checked) == 5 and codes.count(429) == 10, codes
    failures = events(world, "login_failure", "baoding", since)
    successes = events(world, "login_success", "baoding", since)
    assert len(failures) + len(successes) == 5  # exactly what the server checked


def test_right_password_refused_once_the_limit_is_reached(world: World) -> None:
    """14 wrong guesses in flight; the right password arrives as soon as the limit is taken (the wrong
    ones are still being hashed) and is refused: the check never happens."""
    since = last_event_id(world)
    with console(world) as (base, app):
        forms = [login_form(base) for _ in range(15)]
        throttle = throttle_of(app)
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda f=f: results.append(attempt(base, "zhuozhou", WRONG, f)))
            for f in forms[:14]
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while throttle.count("127.0.0.1", "zhuozhou") < 5:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        right = attempt(base, "zhuozhou", PASSWORD, forms[14])
        for t in threads:
            t.join(120)
    assert right == 429
    assert sorted(results) == [401] * 5 + [429] * 9
    assert len(events(world, "login_failure", "zhuozhou", since)) == 5
    assert events(world, "login_success", "zhuozhou", since) == []


def test_per_account_limit_holds_across_addresses_and_ipv6_is_grouped_by_64(world: World) -> None:
    """Behind a trusted proxy every guess comes from another address: the account limit stops them all
    the same. IPv6 addresses of one /64 are one address; another /64 is not."""
    since = last_event_id(world)
    with console(
        world, forwarded_allow_ips=["127.0.0.1"], login_max_per_account=8, login_max_per_address=50
    ) as (base, _app):
        # 8 guesses at 'lianchi', each from its own IPv4 address: the account limit is then reached.
        for i in range(8):
            assert attempt(base, "lianchi", WRONG, login_form(base), f"198.51.100.{i + 1}") == 401
        assert attempt(base, "lianchi", PASSWORD, login_form(base), "198.51.100.200") == 429
        failures = events(world, "login_failure", "lianchi", since)
        assert sorted(e.client for e in failures) == sorted(f"198.51.100.{i + 1}" for i in range(8))
        # IPv6: five guesses at 'center' from addresses all over one /64 use up that /64's allowance...
        for host in [
            "2001:db8:12:34::1",
            "2001:db8:12:34:ffff::9",
            "2001:db8:12:34:1:2:3:4",
            "2001:db8:12:34::abcd",
            "2001:db8:12:34:8000::1",
        ]:
            assert attempt(base, "center", WRONG, login_form(base), host) == 401, host
        assert attempt(base, "center", PASSWORD, login_form(base), "2001:db8:12:34:dead:beef:0:1") == 429
        # ...while the neighbouring /64 is another subscriber: its (right) password is checked.
        assert attempt(base, "center", PASSWORD, login_form(base), "2001:db8:12:35::1") == 303
    assert (
        address_group("2001:db8:12:34:ffff::9") == address_group("2001:db8:12:34::1") == "2001:db8:12:34::/64"
    )
    assert address_group("::ffff:192.0.2.1") == "192.0.2.1"


def test_many_user_names_from_one_address_stay_bounded(world: World) -> None:
    """An address trying ever new names is stopped by the per-address limit; refused attempts create
    no entries (the old limiter made one per name: 100,001 entries, 91 MiB for 100,000 names)."""
    with console(world, login_max_per_address=10) as (base, app):
        codes = [attempt(base, f"nobody-{i}", WRONG, login_form(base)) for i in range(40)]
        entries = len(throttle_of(app))
    assert codes == [401] * 10 + [429] * 30
    assert entries == 10 + 1 + 10  # 10 (address, name) pairs, the address, 10 account counters


def test_concurrent_password_checks_are_bounded(world: World) -> None:
    """Twelve logins at once (several accounts and unknown names): never more than
    ``password_checks_max`` Argon2 checks (64 MiB each) run together, and all are answered."""
    with console(world, password_checks_max=2, login_max_per_address=100) as (base, _app):
        HASH_GATE.reset_peak()
        forms = [login_form(base) for _ in range(12)]
        names = ["baoding", "center", "nobody-a", "nobody-b", "lianchi", "nobody-c"] * 2
        codes = fire([lambda f=f, n=n: attempt(base, n, WRONG, f) for f, n in zip(forms, names, strict=True)])
    assert codes == [401] * 12
    assert HASH_GATE.limit == 2 and HASH_GATE.peak == 2  # reached, never exceeded


# --- the limiter and the gate themselves -------------------------------------------------------------


def test_throttle_counts_before_the_check_and_forgives_the_right_password() -> None:
    t = LoginThrottle(per_pair=3, per_address=5, per_account=4, window_s=60)
    admitted = [t.admit("192.0.2.1", "a") for _ in range(3)]
    assert all(a.admitted for a in admitted)
    assert not t.admit("192.0.2.1", "a").admitted  # the fourth: refused before any check
    assert t.admit("192.0.2.2", "a").admitted  # another address may still try 'a' (account: 4)
    assert not t.admit("192.0.2.3", "a").admitted  # account limit over all addresses reached
    # A success forgets the pair and gives the attempt back to the address and the account.
    ok = t.admit("192.0.2.9", "b")
    before = len(t)
    t.succeeded(ok)
    assert len(t) == before - 3  # pair, address and account counters of that one attempt are gone
    quick = LoginThrottle(per_pair=1, per_address=10, per_account=10, window_s=0.05)
    assert quick.admit("ip", "u").admitted and not quick.admit("ip", "u").admitted
    time.sleep(0.08)
    assert quick.admit("ip", "u").admitted


def test_throttle_memory_is_bounded_for_100000_names() -> None:
    """100,000 user names from one address: a few dozen entries. 100,000 names from 100,000
    addresses: at most ``max_keys`` entries, a few MiB."""
    t = LoginThrottle()
    tracemalloc.start()
    try:
        for i in range(100_000):
            t.admit("203.0.113.7", f"user{i:06d}")
        one_address = len(t), tracemalloc.get_traced_memory()[1]
        spread = LoginThrottle(max_keys=20_000)
        tracemalloc.reset_peak()
        for i in range(100_000):
            spread.admit(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", f"user{i:06d}")
        many = len(spread), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert one_address[0] == 20 * 2 + 1  # 20 pairs, 20 accounts, the address
    assert one_address[1] < 1 << 20
    assert many[0] == 20_000
    assert many[1] < 16 << 20


def test_hash_gate_lets_only_its_limit_through() -> None:
    gate = HashGate(limit=2, wait_s=5)
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate:
            inside.set()
            release.wait(5)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for h in holders:
        h.start()
    inside.wait(5)
    while gate.active < 2:
        time.sleep(0.001)
    third = threading.Thread(target=hold)
    third.start()
    time.sleep(0.1)
    assert gate.active == 2  # the third waits its turn
    release.set()
    for h in [*holders, third]:
        h.join(5)
    assert gate.peak == 2 and gate.active == 0


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("192.0.2.10", "192.0.2.10"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8:0:0:ffff:ffff:ffff:ffff", "2001:db8::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_address_groups(address: str, group: str) -> None:
    assert address_group(address) == group


def test_an_administrator_lifts_a_lockout(world: World) -> None:
    """Guessing from many addresses locks 'lianchi' for everyone (the per-account limit); the
    administrator's 解除登录限制 lets the holder in at once, and says so in the trail."""
    with console(world, forwarded_allow_ips=["127.0.0.1"], login_max_per_account=3) as (base, _app):
        for i in range(3):
            assert attempt(base, "lianchi", WRONG, login_form(base), f"198.51.100.{i + 1}") == 401
        assert attempt(base, "lianchi", PASSWORD, login_form(base), "192.0.2.44") == 429
        with httpx.Client(base_url=base, timeout=30) as admin:
            cookies, token = login_form(base)
            admin.cookies.update(cookies)
            r = admin.post(
                "/login",
                data={"username": "admin", "password": PASSWORD, "csrf_token": token},
                headers={"Origin": base},
            )
            assert r.status_code == 303
            with world.session() as s:
                uid = s.scalars(sa.select(User.id).where(User.name == "lianchi")).one()
            page = admin.get("/admin/users")
            r = admin.post(
                f"/admin/users/{uid}/unlock",
                data={"csrf_token": csrf_of(page.text)},
                headers={"Origin": base},
            )
            assert r.status_code == 303 and "已解除" in admin.get(r.headers["location"]).text
        assert attempt(base, "lianchi", PASSWORD, login_form(base), "192.0.2.44") == 303
    with world.session() as s:
        kinds = list(
            s.scalars(
                sa.select(AuthEvent.kind).where(AuthEvent.user_name == "lianchi").order_by(AuthEvent.id)
            )
        )
    assert kinds[-2:] == ["login_unlocked", "login_success"]
