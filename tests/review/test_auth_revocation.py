"""Revocation: logout, ``user passwd|deactivate|revoke-tokens`` and the admin pages end live sessions
and tokens at once; tokens expire, are listed and revocable one by one; every change is an
``auth_event`` that cannot be changed or deleted (SQLite and PostgreSQL triggers)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from review.accounts import create_user, issue_token
from review.security import Signer
from storage.db import make_engine, upgrade
from storage.models import ApiToken, AuthEvent, AuthSession, User

from .conftest import Served, csrf_of
from .world import SECRET

NEW_PASSWORD = "a fresh pass phrase 7"


def cli(served: Served, *args: str, stdin: str = "") -> tuple[int, str]:
    """``badgewatch ARGS`` against the served console's database, as an operator runs it."""
    from badgewatch import cli as main

    env = {"BADGEWATCH_DATABASE_URL": served.world.cfg.database_url}
    result = CliRunner().invoke(main, list(args), input=stdin, env=env, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def account(served: Served) -> Iterator[str]:
    """A new office account of its own (its password is changed, it is deactivated, ...)."""
    name = "rev-" + uuid.uuid4().hex[:6]
    with served.world.session() as s:
        create_user(s, name, "office", "original pass phrase 1", "130600", actor="test", client="local")
        s.commit()
    yield name


def signed_in(served: Served, name: str, password: str = "original pass phrase 1") -> httpx.Client:
    return served.login(name, password, fresh=True)


def api(served: Served, headers: dict[str, str]) -> int:
    with served.client() as c:
        return c.get("/api/v1/me", headers=headers).status_code


def page(client: httpx.Client) -> int:
    return client.get("/").status_code


def auth_events(served: Served, name: str) -> list[AuthEvent]:
    with served.world.session() as s:
        return list(s.scalars(sa.select(AuthEvent).where(AuthEvent.user_name == name).order_by(AuthEvent.id)))


def test_logout_ends_the_session_on_the_server(served: Served, account: str) -> None:
    c = signed_in(served, account)
    stolen = c.cookies["bw_session"]
    r = c.post("/logout", data={"csrf_token": csrf_of(c.get("/").text)}, headers={"Origin": served.base})
    assert r.status_code == 303 and r.headers["location"] == "/login?message=logged_out"
    # A copy of the cookie (another tab, a proxy's log, a stolen laptop) is worthless now.
    with served.client() as other:
        other.cookies.set("bw_session", stolen, domain="127.0.0.1")
        assert page(other) == 303
    assert [e.kind for e in auth_events(served, account)][-2:] == ["login_success", "logout"]
    assert "已退出登录" in c.get("/login?message=logged_out").text
    c.close()


def test_user_passwd_ends_every_session_and_token(served: Served, account: str) -> None:
    a, b = signed_in(served, account), signed_in(served, account)
    token = served.token(account)
    assert page(a) == page(b) == 200 and api(served, token) == 200
    code, out = cli(served, "user", "passwd", account, "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert code == 0 and "已修改" in out and "数据库：" in out
    assert page(a) == page(b) == 303 and api(served, token) == 401
    assert page(signed_in(served, account, NEW_PASSWORD)) == 200
    ended = [e for e in auth_events(served, account) if e.kind == "sessions_ended"][-1]
    assert ended.detail == {"reason": "password_changed", "sessions": 2, "tokens": 1}
    assert ended.actor.startswith("cli:") and ended.client == "local"
    # A common password is refused and nothing changes.
    code, out = cli(served, "user", "passwd", account, "--password-stdin", stdin="password123\n")
    assert code != 0 and "太常见" in out


def test_user_deactivate_and_activate(served: Served, account: str) -> None:
    c = signed_in(served, account)
    token = served.token(account)
    code, out = cli(served, "user", "deactivate", account)
    assert code == 0, out
    assert page(c) == 303 and api(served, token) == 401
    with served.client() as anon:
        form = anon.get("/login")
        r = anon.post(
            "/login",
            data={
                "username": account,
                "password": "original pass phrase 1",
                "csrf_token": csrf_of(form.text),
            },
            headers={"Origin": served.base},
        )
        assert r.status_code == 401
    assert auth_events(served, account)[-1].detail == {"reason": "inactive"}
    code, _ = cli(served, "user", "activate", account)
    assert code == 0
    assert page(signed_in(served, account)) == 200
    assert api(served, token) == 401  # what was revoked stays revoked
    kinds = [e.kind for e in auth_events(served, account)]
    assert "user_deactivated" in kinds and "user_activated" in kinds


def test_revoke_tokens_one_or_all_and_list_them(served: Served, account: str) -> None:
    c = signed_in(served, account)
    first, second = served.token(account), served.token(account)
    code, out = cli(served, "user", "tokens", account)
    assert code == 0 and [line.rsplit("\t", 1)[-1] for line in out.splitlines()[1:]] == ["有效", "有效"]
    with served.world.session() as s:
        user = s.scalars(sa.select(User).where(User.name == account)).one()
        ids = sorted(s.scalars(sa.select(ApiToken.id).where(ApiToken.user_id == user.id)))
    code, out = cli(served, "user", "revoke-tokens", account, "--token", str(ids[0]))
    assert code == 0, out
    assert api(served, first) == 401 and api(served, second) == 200
    code, out = cli(served, "user", "tokens", account)
    states = {int(line.split("\t")[0]): line.rsplit("\t", 1)[-1] for line in out.splitlines()[1:]}
    assert states == {ids[0]: "已吊销", ids[1]: "有效"}
    code, out = cli(served, "user", "revoke-tokens", account)
    assert code == 0 and api(served, second) == 401
    assert page(c) == 200  # tokens only: the console session goes on...
    code, out = cli(served, "user", "revoke-tokens", account, "--sessions")
    assert code == 0 and page(c) == 303  # ...unless asked
    revoked = [e.detail["token_id"] for e in auth_events(served, account) if e.kind == "token_revoked"]
    assert sorted(revoked) == ids


def test_tokens_expire_and_old_signed_tokens_are_refused(served: Served, account: str) -> None:
    with served.world.session() as s:
        user = s.scalars(sa.select(User).where(User.name == account)).one()
        row, text = issue_token(s, user, days=1, actor="test", client="local")
        s.commit()
        assert row.expires_at - row.created_at == dt.timedelta(days=1)
    headers = {"Authorization": f"Bearer {text}"}
    assert api(served, headers) == 200
    with served.world.session() as s:  # a day and a second later
        t = s.get(ApiToken, row.id)
        assert t is not None
        t.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        s.commit()
    with served.client() as c:
        r = c.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized" and "已过期" in r.json()["detail"]
    # The old format, signed with the console's key in 1970 and accepted until now, is refused.
    old = "bw1." + Signer(SECRET).sign("api-token", {"uid": user.id, "fp": "x", "iat": 0, "n": "00"})
    assert api(served, {"Authorization": f"Bearer {old}"}) == 401
    # A token's secret cannot be guessed from its id.
    assert api(served, {"Authorization": f"Bearer bw2.{row.id}.{'A' * 43}"}) == 401
    with served.world.session() as s:
        user = s.scalars(sa.select(User).where(User.name == account)).one()
        with pytest.raises(ValueError, match="1 至 366"):
            issue_token(s, user, days=400, actor="test", client="local")


def test_admin_pages_revoke_sessions_and_tokens(served: Served, account: str) -> None:
    victim = signed_in(served, account)
    token = served.token(account)
    admin = served.login("admin")
    users = admin.get("/admin/users")
    assert users.status_code == 200 and account in users.text
    with served.world.session() as s:
        uid = s.scalars(sa.select(User.id).where(User.name == account)).one()
    origin = {"Origin": served.base}
    csrf = csrf_of(users.text)
    # Issue a token from the page: shown once, works, listed.
    r = admin.post(
        f"/admin/users/{uid}/tokens",
        data={"days": "30", "label": "对接系统", "csrf_token": csrf},
        headers=origin,
    )
    assert r.status_code == 200 and 'id="new-token-text"' in r.text
    shown = r.text.split('id="new-token-text">', 1)[1].split("<", 1)[0]
    assert shown.startswith("bw2.") and api(served, {"Authorization": f"Bearer {shown}"}) == 200
    listing = admin.get("/admin/users").text
    assert "对接系统" in listing and shown not in listing
    # Revoke that one token from the list.
    tid = int(shown.split(".")[1])
    r = admin.post(f"/admin/users/{uid}/tokens/{tid}/revoke", data={"csrf_token": csrf}, headers=origin)
    assert r.status_code == 303 and r.headers["location"] == "/admin/users?message=token_revoked"
    assert api(served, {"Authorization": f"Bearer {shown}"}) == 401 and api(served, token) == 200
    # Deactivate: the live session and the other token end at once.
    r = admin.post(f"/admin/users/{uid}/active", data={"active": "0", "csrf_token": csrf}, headers=origin)
    assert r.status_code == 303
    assert page(victim) == 303 and api(served, token) == 401
    assert "已停用账号" in admin.get("/admin/users?message=deactivated").text
    # Reactivate, sign in again, then a password change from the page ends that session too.
    admin.post(f"/admin/users/{uid}/active", data={"active": "1", "csrf_token": csrf}, headers=origin)
    again = signed_in(served, account)
    r = admin.post(
        f"/admin/users/{uid}/password", data={"password": NEW_PASSWORD, "csrf_token": csrf}, headers=origin
    )
    assert r.status_code == 303 and page(again) == 303
    # A role change ends sessions as well; a bad one is refused with the reason and changes nothing.
    third = signed_in(served, account, NEW_PASSWORD)
    bad = admin.post(
        f"/admin/users/{uid}/role",
        data={"role": "office", "office_code": "", "csrf_token": csrf},
        headers=origin,
    )
    assert bad.status_code == 400 and "必须指定所属编办" in bad.text and page(third) == 200
    r = admin.post(f"/admin/users/{uid}/role", data={"role": "center", "csrf_token": csrf}, headers=origin)
    assert r.status_code == 303 and page(third) == 303
    kinds = [e.kind for e in auth_events(served, account)]
    for kind in ("token_issued", "token_revoked", "user_deactivated", "password_changed", "role_changed"):
        assert kind in kinds, kind
    assert all(e.actor == "admin" for e in auth_events(served, account) if e.kind == "role_changed")
    # The admin cannot lock themselves out.
    with served.world.session() as s:
        me = s.scalars(sa.select(User.id).where(User.name == "admin")).one()
    r = admin.post(f"/admin/users/{me}/active", data={"active": "0", "csrf_token": csrf}, headers=origin)
    assert r.status_code == 400 and "不能停用自己的账号" in r.text
    admin.close()


def test_auth_events_are_append_only_on_sqlite(served: Served) -> None:
    with served.world.engine.begin() as conn:
        n = conn.scalar(sa.select(sa.func.count(AuthEvent.id)))
        assert n
    for statement in ("UPDATE auth_event SET kind = 'x'", "DELETE FROM auth_event"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), served.world.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with served.world.engine.begin() as conn:
        assert conn.scalar(sa.select(sa.func.count(AuthEvent.id))) == n


@pytest.mark.postgres
def test_auth_events_are_append_only_on_postgres(postgres_url: str) -> None:
    name = "bw_auth_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(postgres_url.rsplit("/", 1)[0] + "/" + name)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.insert(AuthEvent).values(
                    kind="login_failure", user_name="x", actor="x", client="192.0.2.1", detail={}
                )
            )
        for statement in ("UPDATE auth_event SET kind = 'x'", "DELETE FROM auth_event"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
                conn.exec_driver_sql(statement)
        with engine.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count(AuthEvent.id))) == 1
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_own_password_change_ends_the_other_sessions_and_tokens(served: Served, account: str) -> None:
    here, elsewhere = signed_in(served, account), signed_in(served, account)
    token = served.token(account)
    form = here.get("/account")
    assert form.status_code == 200 and "修改密码" in form.text
    csrf = csrf_of(form.text)

    def change(current: str, new: str, confirm: str | None = None) -> httpx.Response:
        data = {"current": current, "password": new, "confirm": new if confirm is None else confirm}
        return here.post(
            "/account/password", data={**data, "csrf_token": csrf}, headers={"Origin": served.base}
        )

    assert change("not my password", NEW_PASSWORD).status_code == 400
    assert change("original pass phrase 1", NEW_PASSWORD, "something else").status_code == 400
    r = change("original pass phrase 1", "qwerty123")
    assert r.status_code == 400 and "太常见" in r.text
    assert page(elsewhere) == 200 and api(served, token) == 200  # nothing changed so far
    r = change("original pass phrase 1", NEW_PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/account?message=own_password_changed"
    assert page(here) == 200  # this browser got a new session
    assert page(elsewhere) == 303 and api(served, token) == 401
    assert page(signed_in(served, account, NEW_PASSWORD)) == 200
    kinds = [e.kind for e in auth_events(served, account)]
    assert kinds.count("password_changed") == 1 and "login_failure" in kinds


def test_sessions_long_over_are_pruned_on_login(served: Served, account: str) -> None:
    with served.world.session() as s:
        uid = s.scalars(sa.select(User.id).where(User.name == account)).one()
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
        s.add(AuthSession(id="0" * 64, user_id=uid, csrf="x", created_at=old, expires_at=old))
        s.commit()
    signed_in(served, account).close()
    with served.world.session() as s:
        assert s.get(AuthSession, "0" * 64) is None
        assert s.scalar(sa.select(sa.func.count()).where(AuthSession.user_id == uid)) == 1
