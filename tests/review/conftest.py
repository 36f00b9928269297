"""The console under test: a world built through the storage layer, served by uvicorn on loopback."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from review.accounts import issue_token
from review.app import create_app
from storage.models import User

from .world import PASSWORD, World, build_world


@dataclass
class Served:
    world: World
    base: str
    _cookies: dict[tuple[str, str], str] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30.0, follow_redirects=False)

    def login(self, name: str, password: str = PASSWORD, fresh: bool = False) -> httpx.Client:
        """A client signed in as ``name`` through the real login form.

        The session cookie is reused for later logins of the same user in this module (Argon2 is slow
        on purpose); ``fresh`` always goes through the form.
        """
        c = self.client()
        key = (name, password)
        if not fresh and key in self._cookies:
            c.cookies.set("bw_session", self._cookies[key], domain="127.0.0.1")
            return c
        form = c.get("/login")
        token = csrf_of(form.text)
        r = c.post(
            "/login",
            data={"username": name, "password": password, "csrf_token": token, "next": "/"},
            headers={"Origin": self.base},
        )
        assert r.status_code == 303, r.text
        self._cookies[key] = r.cookies["bw_session"]
        return c

    def token(self, name: str, days: int = 30) -> dict[str, str]:
        """Authorization headers with a new API token of ``name`` (as ``badgewatch user token`` makes it)."""
        with self.world.session() as s:
            user = s.scalars(sa.select(User).where(User.name == name)).one()
            _row, token = issue_token(s, user, days=days, actor="test", client="local")
            s.commit()
        return {"Authorization": f"Bearer {token}"}


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    at = html.index(marker) + len(marker)
    return html[at : html.index('"', at)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("review"))


def serve(world: World, **kwargs: object) -> Iterator[str]:
    yield from serve_app(create_app(world.cfg, world.engine, **kwargs))  # type: ignore[arg-type]


def serve_app(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port until the generator is closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # As `badgewatch serve` runs it: proxy headers are the app's business (forwarded_allow_ips).
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", proxy_headers=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("console did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[Served]:
    for base in serve(world):
        yield Served(world, base)


# --- a real browser (Debian's chromium, headless), shared by the console's browser tests -------------

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (scripts/system-deps.sh installs it)")
    from playwright.sync_api import sync_playwright  # imported here: only browser tests need it

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def browser_login(browser: Any, base: str, name: str, password: str = PASSWORD, width: int = 1280) -> Any:
    """A new browser context signed in as ``name`` through the login form; its page."""
    page = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN").new_page()
    page.goto(base + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("#login-submit")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.inner_text("body")
    return page
