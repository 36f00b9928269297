"""``badgewatch user add|token`` and ``badgewatch serve`` as operators run them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

from storage.db import make_engine, upgrade
from storage.models import Office, User

SECRET = "cli-secret-0123456789abcdefghij"


def _db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as s:
        s.add(Office(code="130600", name="保定市", level="city", roster_count=1))
        s.commit()
    engine.dispose()
    return url


def _run(args: list[str], env: dict[str, str], stdin: str = "") -> tuple[int, str]:
    from badgewatch import cli

    result = CliRunner().invoke(cli, args, input=stdin, env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_user_add_and_token(tmp_path: Path) -> None:
    url = _db(tmp_path)
    env = {"BADGEWATCH_DATABASE_URL": url, "BADGEWATCH_SECRET_KEY": ""}
    code, out = _run(
        ["user", "add", "bd", "--role", "office", "--office", "130600", "--password-stdin"],
        env,
        "a very long secret\n",
    )
    assert code == 0, out
    assert "已添加用户 bd" in out
    code, out = _run(
        ["user", "add", "bd", "--role", "office", "--office", "130600", "--password-stdin"],
        env,
        "a very long secret\n",
    )
    assert code != 0 and "已存在" in out
    code, out = _run(
        ["user", "add", "x", "--role", "office", "--password-stdin"], env, "a very long secret\n"
    )
    assert code != 0 and "--office" in out
    code, out = _run(
        ["user", "add", "y", "--role", "office", "--office", "999999", "--password-stdin"],
        env,
        "a very long secret\n",
    )
    assert code != 0 and "999999" in out
    code, out = _run(["user", "add", "z", "--role", "center", "--password-stdin"], env, "short\n")
    assert code != 0 and "至少需要8个字符" in out
    engine = make_engine(url)
    with Session(engine) as s:
        users = {u.name: u for u in s.scalars(sa.select(User))}
    engine.dispose()
    assert set(users) == {"bd"}
    assert users["bd"].password_hash.startswith("$argon2id$") and users["bd"].office_code == "130600"
    # Tokens are kept (hashed) in the database: no secret_key needed, printed once, last line.
    code, out = _run(["user", "token", "bd"], env)
    assert code == 0 and out.strip().splitlines()[-1].startswith("bw2.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_the_console(tmp_path: Path) -> None:
    url = _db(tmp_path)
    env = {
        **os.environ,
        "BADGEWATCH_DATABASE_URL": url,
        "BADGEWATCH_SECRET_KEY": SECRET,
        "BADGEWATCH_EVIDENCE_DIR": str(tmp_path / "evidence"),
    }
    small = {k: env[k] for k in ("BADGEWATCH_DATABASE_URL", "BADGEWATCH_SECRET_KEY")}
    code, out = _run(
        ["user", "add", "center", "--role", "center", "--password-stdin"], small, "a very long secret\n"
    )
    assert code == 0, out
    code, token = _run(["user", "token", "center"], small)
    token = token.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "badgewatch", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and "登录网标巡检审核台" in r.text
        me = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert me.status_code == 200 and me.json()["role"] == "center"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
