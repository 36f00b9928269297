"""Behind a reverse proxy: the real client address in throttling and the audit trail (only from trusted
proxies), the Host check, and HTTPS defaults (``__Host-`` Secure cookies, HSTS) beyond loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from review.app import create_app
from review.cli import listens_beyond_loopback, secure_by_default
from storage.db import make_engine
from storage.models import AuthEvent

from .conftest import csrf_of, serve_app
from .world import PASSWORD, World

WRONG = "not the password at all"


@contextmanager
def console(world: World, **kwargs: object) -> Iterator[str]:
    gen = serve_app(create_app(world.cfg, world.engine, **kwargs))  # type: ignore[arg-type]
    base = next(gen)
    try:
        yield base
    finally:
        gen.close()


def login(base: str, name: str, password: str, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as c:
        form = c.get("/login", headers=headers or {})
        return c.post(
            "/login",
            data={"username": name, "password": password, "csrf_token": csrf_of(form.text)},
            headers={"Origin": base, **(headers or {})},
        )


def last_event(world: World, user: str) -> AuthEvent:
    with world.session() as s:
        event = s.scalars(
            sa.select(AuthEvent).where(AuthEvent.user_name == user).order_by(AuthEvent.id.desc()).limit(1)
        ).first()
    assert event is not None
    return event


def test_behind_a_trusted_proxy_each_client_is_itself(world: World) -> None:
    """Five bad guesses from one client behind the proxy lock out that client, not the proxy's other
    users; the audit trail names the real address."""
    with console(world, forwarded_allow_ips=["127.0.0.1"]) as base:
        for _ in range(5):
            r = login(base, "baoding", WRONG, {"X-Forwarded-For": "203.0.113.50"})
            assert r.status_code == 401
        assert last_event(world, "baoding").client == "203.0.113.50"
        assert login(base, "baoding", PASSWORD, {"X-Forwarded-For": "203.0.113.50"}).status_code == 429
        assert login(base, "baoding", PASSWORD, {"X-Forwarded-For": "203.0.113.51"}).status_code == 303
        ok = last_event(world, "baoding")
        assert (ok.kind, ok.client) == ("login_success", "203.0.113.51")
        # A chain through a second trusted hop: the first untrusted address is the client.
    with console(world, forwarded_allow_ips=["127.0.0.1", "10.0.0.0/8"]) as base:
        r = login(base, "center", PASSWORD, {"X-Forwarded-For": "198.51.100.9, 10.1.2.3"})
        assert r.status_code == 303 and last_event(world, "center").client == "198.51.100.9"


def test_forwarded_headers_from_anyone_else_are_ignored(world: World) -> None:
    """Without trusted proxies a client cannot pick its own address to dodge the limit or the trail."""
    with console(world, forwarded_allow_ips=[]) as base:
        statuses = [
            login(base, "lianchi", WRONG, {"X-Forwarded-For": f"192.0.2.{i}"}).status_code for i in range(6)
        ]
        assert statuses == [401] * 5 + [429]
        assert last_event(world, "lianchi").client == "127.0.0.1"


def test_only_the_configured_host_names_are_answered(world: World) -> None:
    with console(world, allowed_hosts=["review.example.gov.cn"]) as base:
        assert httpx.get(base + "/login").status_code == 400  # Host: 127.0.0.1:port
        r = httpx.get(base + "/login", headers={"Host": "review.example.gov.cn"})
        assert r.status_code == 200 and "登录" in r.text
    with console(world) as base:  # nothing configured: loopback names only
        assert httpx.get(base + "/login").status_code == 200
        assert httpx.get(base + "/login", headers={"Host": "attacker.example"}).status_code == 400


def _set_cookies(r: httpx.Response) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for k, v in r.headers.multi_items() if k == "set-cookie"}


def test_https_console_uses_host_prefixed_secure_cookies_and_hsts(world: World) -> None:
    with console(world, secure_cookies=True) as base:
        form = httpx.get(base + "/login")
        assert form.headers["strict-transport-security"] == "max-age=31536000"
        pre = _set_cookies(form)["__Host-bw_login"].lower()
        assert "secure" in pre and "path=/" in pre and "domain" not in pre and "httponly" in pre
        login_cookie = form.headers["set-cookie"].split(";", 1)[0]
        # httpx keeps Secure cookies off plain http, as a browser would: send them by hand.
        r = httpx.post(
            base + "/login",
            data={"username": "center", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
            headers={"Origin": base, "Cookie": login_cookie},
        )
        assert r.status_code == 303
        session = _set_cookies(r)["__Host-bw_session"]
        low = session.lower()
        assert "secure" in low and "httponly" in low and "samesite=lax" in low and "path=/" in low
        assert "domain" not in low
        value = session.split(";", 1)[0].split("=", 1)[1]
        assert httpx.get(base + "/", headers={"Cookie": f"__Host-bw_session={value}"}).status_code == 200
        # The same secret under the plain name (which any sibling host could plant) is not read.
        assert httpx.get(base + "/", headers={"Cookie": f"bw_session={value}"}).status_code == 303
    with console(world) as base:  # loopback HTTP: plain names, no HSTS
        form = httpx.get(base + "/login")
        assert "strict-transport-security" not in form.headers and "bw_login" in _set_cookies(form)


@pytest.mark.parametrize(
    ("host", "beyond"),
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("localhost", False),
        ("::1", False),
        ("[::1]", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.0.2.10", True),
        ("review.example.gov.cn", True),
    ],
)
def test_beyond_loopback_means_https_defaults(host: str, beyond: bool) -> None:
    assert listens_beyond_loopback(host) is beyond
    assert secure_by_default(host) is beyond


def test_serve_beyond_loopback_needs_the_host_name() -> None:
    """Refused before anything is opened or bound: no database is named, no port listens."""
    from badgewatch import cli

    result = CliRunner().invoke(
        cli,
        ["serve", "--host", "0.0.0.0", "--port", "1"],
        env={"BADGEWATCH_DATABASE_URL": "sqlite:////nonexistent/dir/x.db", "BADGEWATCH_CONSOLE_HOSTS": ""},
    )
    assert result.exit_code != 0
    assert (
        "console_hosts" in result.output and "--allowed-host" in result.output and "未启动" in result.output
    )


def test_serve_takes_the_proxy_and_host_name_from_its_options(tmp_path: Path) -> None:
    """``badgewatch serve --forwarded-allow-ips --allowed-host`` as an operator starts it behind a proxy."""
    url = f"sqlite:///{tmp_path / 'console.db'}"
    env = {**os.environ, "BADGEWATCH_DATABASE_URL": url, "BADGEWATCH_EVIDENCE_DIR": str(tmp_path / "ev")}
    from badgewatch import cli

    made = CliRunner().invoke(
        cli,
        ["user", "add", "center", "--role", "center", "--password-stdin", "--create-db"],
        input=PASSWORD + "\n",
        env={"BADGEWATCH_DATABASE_URL": url},
    )
    assert made.exit_code == 0, made.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [
        "--port",
        str(port),
        "--forwarded-allow-ips",
        "127.0.0.1",
        "--allowed-host",
        "review.example.gov.cn",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "badgewatch", "serve", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    host = {"Host": "review.example.gov.cn"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                first = httpx.get(base + "/login", headers=host, timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert first.status_code == 200
        assert httpx.get(base + "/login", timeout=5).status_code == 400  # Host 127.0.0.1: not its name
        with httpx.Client(base_url=base, headers=host, timeout=30) as c:
            form = c.get("/login")
            r = c.post(
                "/login",
                data={"username": "center", "password": WRONG, "csrf_token": csrf_of(form.text)},
                headers={"Origin": "http://review.example.gov.cn", "X-Forwarded-For": "203.0.113.77"},
            )
            assert r.status_code == 401
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode("utf-8", "replace")
    assert f"数据库：SQLite 文件 {tmp_path / 'console.db'}" in out and "可信代理 127.0.0.1" in out
    engine = make_engine(url)
    with engine.connect() as conn:
        event = conn.execute(
            sa.select(AuthEvent.kind, AuthEvent.client).order_by(AuthEvent.id.desc()).limit(1)
        ).one()
    engine.dispose()
    assert tuple(event) == ("login_failure", "203.0.113.77")
