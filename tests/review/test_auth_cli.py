"""The ``user`` and ``serve`` commands say which database they open and never quietly create an empty
one: a missing file or an uninitialised database is refused, naming it, unless ``--create-db``."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from storage.db import make_engine
from storage.models import AuthEvent, User

PASSWORD = "a long and unusual pass phrase"


def run(args: list[str], url: str, stdin: str = "") -> tuple[int, str]:
    from badgewatch import cli

    result = CliRunner().invoke(
        cli, args, input=stdin, env={"BADGEWATCH_DATABASE_URL": url}, catch_exceptions=False
    )
    return result.exit_code, result.output


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ["user", "add", "center", "--role", "center", "--password-stdin"],
        ["user", "list"],
        ["user", "passwd", "center", "--password-stdin"],
        ["user", "role", "center", "--role", "admin"],
        ["user", "deactivate", "center"],
        ["user", "activate", "center"],
        ["user", "token", "center"],
        ["user", "tokens", "center"],
        ["user", "revoke-tokens", "center"],
        ["serve", "--port", "1"],
    ],
)
def test_a_missing_database_is_refused_and_not_created(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "typo.db"
    code, out = run(args, f"sqlite:///{path}", PASSWORD + "\n")
    assert code != 0
    assert f"数据库：SQLite 文件 {path}" in out  # says which
    assert f"数据库文件 {path} 不存在" in out and "--create-db" in out and "badgewatch init" in out
    assert files(tmp_path) == []  # nothing created, not even an empty file


def test_create_db_asks_for_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    url = f"sqlite:///{path}"
    code, out = run(
        ["user", "add", "center", "--role", "center", "--password-stdin", "--create-db"], url, PASSWORD + "\n"
    )
    assert code == 0 and f"数据库：SQLite 文件 {path}" in out and "已添加用户 center" in out
    code, out = run(["user", "list"], url)
    assert code == 0 and "center\t域名中心审核员" in out
    engine = make_engine(url)
    with engine.connect() as conn:
        created = conn.execute(sa.select(AuthEvent.kind, AuthEvent.user_name, AuthEvent.client)).all()
        assert conn.scalar(sa.select(sa.func.count(User.id))) == 1
    engine.dispose()
    assert [(k, u, c) for k, u, c in created] == [("user_created", "center", "local")]


def test_an_uninitialised_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # exists, but badgewatch init never ran on it
    code, out = run(
        ["user", "add", "x1", "--role", "center", "--password-stdin"], f"sqlite:///{path}", PASSWORD + "\n"
    )
    assert code != 0 and "是空库" in out and str(path) in out
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


@pytest.mark.postgres
def test_an_uninitialised_postgres_database_is_refused(postgres_url: str) -> None:
    name = "bw_cli_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    try:
        code, out = run(["user", "add", "c", "--role", "center", "--password-stdin"], url, PASSWORD + "\n")
        assert code != 0 and "是空库" in out and name in out
        engine = make_engine(url)
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
        engine.dispose()
        code, out = run(
            ["user", "add", "c", "--role", "center", "--password-stdin", "--create-db"], url, PASSWORD + "\n"
        )
        assert code == 0 and "已添加用户 c" in out
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
