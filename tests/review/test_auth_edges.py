"""Clean edges: malformed input is a 4xx (in the API's error format), never a 500, and changes nothing;
escaped error pages; ``?message=`` codes; log lines that cannot be forged; hashes upgraded on login;
common passwords refused; the reports filter's empty year."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import Query
from pydantic import AfterValidator

from review.accounts import AccountError, create_user
from review.app import create_app
from review.security import password_problem
from storage.models import AnnualReport, AnnualReportEvent, AuthEvent, User

from .conftest import Served, csrf_of, serve, serve_app
from .world import PASSWORD, YEAR, World, build_world

HUGE = "99999999999999999999999"


def _snapshot(world: World) -> tuple[Any, ...]:
    with world.session() as s:
        return (
            tuple(s.execute(sa.select(AnnualReport.id, AnnualReport.state, AnnualReport.organizer)).all()),
            s.scalar(sa.select(sa.func.count(AnnualReportEvent.id))),
            s.scalar(sa.select(sa.func.count(User.id))),
        )


def _report_body(world: World, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "unit_id": world.ids["unit:water"],
        "year": YEAR - 1,
        "organizer": "莲池区水利局",
        "domains_status": "有效",
        "functions_reviewed": "是",
        "badge_displayed": "是",
    }
    body.update(over)
    return body


# (method, path, JSON body or raw bytes, extra headers, whether to send the center's token)
API_CASES: list[tuple[str, str, Any, dict[str, Any], bool]] = [
    ("GET", f"/api/v1/annual-reports/{HUGE}", None, {}, True),
    ("GET", "/api/v1/annual-reports/2147483648", None, {}, True),
    ("GET", "/api/v1/annual-reports/0", None, {}, True),
    ("GET", "/api/v1/annual-reports/-5", None, {}, True),
    ("GET", "/api/v1/annual-reports/abc", None, {}, True),
    ("GET", "/api/v1/annual-reports/%C2%B2", None, {}, True),  # "²" is a digit to str.isdigit()
    ("GET", "/api/v1/annual-reports?year=%C2%B2", None, {}, True),
    ("GET", f"/api/v1/annual-reports?year={HUGE}", None, {}, True),
    ("GET", "/api/v1/annual-reports?state=%3Cscript%3E", None, {}, True),
    ("GET", f"/api/v1/websites/{HUGE}/findings", None, {}, True),
    ("GET", f"/api/v1/websites/1/findings?scan_id={HUGE}", None, {}, True),
    ("GET", "/api/v1/websites/1/findings?limit=%C2%B2", None, {}, True),
    ("POST", "/api/v1/annual-reports", {"unit_id": int(HUGE)}, {}, True),
    ("POST", "/api/v1/annual-reports", {"unit_id": "²"}, {}, True),
    ("POST", "/api/v1/annual-reports", {"year": int(HUGE)}, {}, True),
    ("POST", "/api/v1/annual-reports", {"year": "²"}, {}, True),
    ("POST", "/api/v1/annual-reports", b"\xff\xfe{", {"Content-Type": "application/json"}, True),
    ("POST", "/api/v1/annual-reports", b"[]", {"Content-Type": "application/json"}, True),
    ("POST", "/api/v1/annual-reports", b'{"unit_id": 1e999}', {"Content-Type": "application/json"}, True),
    ("POST", f"/api/v1/annual-reports/{HUGE}/decision", {"decision": "approve"}, {}, True),
    ("POST", "/api/v1/annual-reports/1/decision", {"decision": "²"}, {}, True),
    ("POST", "/api/v1/annual-reports/1/decision", {"decision": "approve", "reason": 5}, {}, True),
    ("GET", "/api/v1/me", None, {"Authorization": b"Bearer \xb2"}, False),
    ("GET", "/api/v1/me", None, {"Authorization": b"Bearer bw2.1.\xc2\xb2\xc2\xb2"}, False),
    ("GET", "/api/v1/me", None, {"Authorization": b"Bearer bw2.\xb2.x"}, False),
    ("GET", "/api/v1/me", None, {"Authorization": f"Bearer bw2.{HUGE}.secret"}, False),
    ("GET", "/api/v1/me", None, {"Authorization": "Bearer bw2.-1.secret"}, False),
    ("GET", "/api/v1/me", None, {"Authorization": "Bearer bw2.1"}, False),
    ("GET", "/api/v1/me", None, {"Authorization": "Bearer " + "A" * 5000}, False),
    ("GET", "/api/v1/me", None, {"Authorization": "Basic Zm9vOmJhcg=="}, False),
    ("GET", "/api/v1/me", None, {"Cookie": b"bw_session=\xb2"}, False),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "with_token"), API_CASES)
def test_malformed_api_input_is_a_4xx_in_the_error_format(
    served: Served, method: str, path: str, body: Any, headers: dict[str, Any], with_token: bool
) -> None:
    before = _snapshot(served.world)
    sent = dict(headers)
    if with_token:
        sent.update(served.token("center"))
    kwargs: dict[str, Any] = {"headers": sent}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["content"] = json.dumps(_report_body(served.world, **body) if "decision" not in body else body)
        sent.setdefault("Content-Type", "application/json")
    with served.client() as c:
        r = c.request(method, path, **kwargs)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    doc = r.json()
    assert set(doc) >= {"error", "detail"} and doc["error"] and doc["detail"], doc
    assert _snapshot(served.world) == before


def _signed_in(served: Served, name: str = "center") -> httpx.Client:
    return served.login(name)


# (path, expected status) for a signed-in reviewer: pages answer 4xx, never 500.
PAGE_CASES = [
    (f"/reports/{HUGE}", 404),
    (f"/units/{HUGE}", 404),
    # Not a frame of the console: refused before the id is even looked up (the sandbox rule).
    (f"/captures/{HUGE}/page", 403),
    (f"/captures/{HUGE}/screenshot.png", 404),
    ("/offices/%C2%B2", 404),
    ("/reports?year=%C2%B2", 400),
    (f"/reports?year={HUGE}", 400),
    ("/reports?year=1999", 400),
    ("/reports?year=", 200),  # the filter form with the year left empty
    ("/reports?year=&state=", 200),
    (f"/reports?year={YEAR}", 200),
    ("/login?next=%C2%B2", 200),
]


@pytest.mark.parametrize(("path", "status"), PAGE_CASES)
def test_malformed_page_input_is_a_4xx(served: Served, path: str, status: int) -> None:
    c = _signed_in(served)
    r = c.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    c.close()


def test_decision_form_with_a_non_ascii_digit_is_refused_and_changes_nothing(served: Served) -> None:
    rid = served.world.ids["report:health"]
    c = _signed_in(served, "zhuozhou")
    token = csrf_of(c.get(f"/reports/{rid}").text)
    before = _snapshot(served.world)
    r = c.post(
        f"/reports/{rid}/decision",
        data={"decision": "bogus", "shown": "²,1", "csrf_token": token},
        headers={"Origin": served.base},
    )
    assert 400 <= r.status_code < 500
    assert _snapshot(served.world) == before
    c.close()


def test_non_ascii_cookies_are_no_session(served: Served) -> None:
    with served.client() as c:
        r = c.get("/", headers={"Cookie": b"bw_session=\xc2\xb2\xff"})  # type: ignore[dict-item]
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        form = c.get("/login")
        r = c.post(
            "/login",
            data={"username": "center", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
            headers={"Origin": served.base, "Cookie": b"bw_login=\xb2\xb2"},  # type: ignore[dict-item]
        )
        assert r.status_code == 403


def test_messages_are_codes_never_free_text(served: Served) -> None:
    rid = served.world.ids["report:edu"]
    c = _signed_in(served)
    forged = "审核已通过，请向 6222 0000 转账<b>x</b>"
    page = c.get(f"/reports/{rid}", params={"message": forged})
    assert page.status_code == 200 and "6222" not in page.text
    admin = served.login("admin")
    assert "6222" not in admin.get("/admin/users", params={"message": forged}).text
    assert "已吊销令牌" in admin.get("/admin/users?message=token_revoked").text
    c.close()
    admin.close()


def _refuse(value: str) -> str:
    raise ValueError(f"bad {value}")


Echoed = Annotated[str, Query(), AfterValidator(_refuse)]


def test_validation_error_page_is_escaped(world: World) -> None:
    """A validation error whose text carries the input (here a route that echoes it, as a future route
    might) is shown on the error page escaped, in Chinese, never as raw markup."""
    app = create_app(world.cfg, world.engine)

    @app.get("/echo")
    def echo(q: Echoed = "") -> str:
        return q

    gen = serve_app(app)
    base = next(gen)
    try:
        r = httpx.get(base + "/echo", params={"q": "<script>alert(1)</script>"})
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
        assert "<script>alert(1)</script>" not in r.text
        assert "请求无效" in r.text and 'id="error-message"' in r.text
        # The login form with an over-long user name: the same page.
        form = httpx.get(base + "/login")
        r = httpx.post(
            base + "/login",
            data={"username": "<b>" * 50, "password": "x", "csrf_token": csrf_of(form.text)},
            cookies=form.cookies,
            headers={"Origin": base},
        )
        assert r.status_code == 400 and "<b>" not in r.text and "username 太长" in r.text
    finally:
        gen.close()


def test_user_names_cannot_forge_log_lines(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    forged = "mallory\n2026-12-04 09:00:00 INFO review.web: login: admin from 10.0.0.1"
    with caplog.at_level(logging.INFO, logger="review.web"), served.client() as c:
        form = c.get("/login")
        r = c.post(
            "/login",
            data={"username": forged, "password": "whatever it is", "csrf_token": csrf_of(form.text)},
            headers={"Origin": served.base},
        )
        assert r.status_code == 401
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "review.web"]
    failed = [m for m in lines if m.startswith("login failed")]
    assert failed and all("\n" not in m for m in lines)
    assert "mallory\\n2026-12-04" in failed[-1]


def test_old_password_hashes_are_upgraded_on_login(served: Served) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    password = "an old style pass phrase"
    with served.world.session() as s:
        s.add(User(name="old-hash", role="center", password_hash=weak.hash(password)))
        s.commit()
    served.login("old-hash", password, fresh=True).close()
    with served.world.session() as s:
        stored = s.scalars(sa.select(User.password_hash).where(User.name == "old-hash")).one()
        event = s.scalars(
            sa.select(AuthEvent).where(AuthEvent.user_name == "old-hash").order_by(AuthEvent.id.desc())
        ).first()
    assert "m=65536" in stored and "m=8192" not in stored
    assert event is not None and event.kind == "login_success" and event.detail == {"rehashed": True}
    served.login("old-hash", password, fresh=True).close()  # the new hash verifies the same password
    with served.world.session() as s:
        again = s.scalars(
            sa.select(AuthEvent).where(AuthEvent.user_name == "old-hash").order_by(AuthEvent.id.desc())
        ).first()
    assert again is not None and again.detail == {"rehashed": False}


@pytest.mark.parametrize(
    ("password", "name", "problem"),
    [
        ("short", "x", "至少需要8个字符"),
        ("password123", "x", "太常见"),
        ("Password123", "x", "太常见"),
        ("1qaz2wsx", "x", "太常见"),
        ("woaini1314", "x", "太常见"),
        ("11111111", "x", "太常见"),
        ("abababab", "x", "太常见"),
        ("zhangsan-2024-bd", "zhangsan", "包含用户名"),
        ("correct horse battery", "zhangsan", None),
    ],
)
def test_common_passwords_are_refused(password: str, name: str, problem: str | None) -> None:
    found = password_problem(password, name)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_common_password_refused_when_an_account_is_made(served: Served) -> None:
    with served.world.session() as s, pytest.raises(AccountError, match="太常见"):
        create_user(s, "weak-one", "center", "qwertyuiop", actor="test", client="local")
    admin = served.login("admin")
    page = admin.get("/admin/users")
    r = admin.post(
        "/admin/users",
        data={
            "name": "weak-two",
            "role": "center",
            "password": "admin12345",
            "csrf_token": csrf_of(page.text),
        },
        headers={"Origin": served.base},
    )
    assert r.status_code == 400 and "太常见" in r.text
    with served.world.session() as s:
        assert not s.scalars(sa.select(User).where(User.name.in_(["weak-one", "weak-two"]))).first()
    admin.close()


@pytest.fixture(scope="module")
def pg_served(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    name = "bw_edges_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    world = build_world(tmp_path_factory.mktemp("edges-pg"), postgres_url.rsplit("/", 1)[0] + "/" + name)
    try:
        for base in serve(world):
            yield Served(world, base)
    finally:
        world.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_malformed_input_on_postgres(pg_served: Served) -> None:
    """PostgreSQL refuses what SQLite takes (a NUL in text) and sizes integers differently: still 4xx."""
    w = pg_served.world
    before = _snapshot(w)
    token = pg_served.token("center")
    with pg_served.client() as c:
        for path in (f"/api/v1/annual-reports/{HUGE}", "/api/v1/annual-reports/2147483648"):
            r = c.get(path, headers=token)
            assert 400 <= r.status_code < 500 and r.json()["error"], path
        r = c.post(
            "/api/v1/annual-reports", json=_report_body(w, organizer="莲池区\x00水利局"), headers=token
        )
        assert 400 <= r.status_code < 500 and r.json()["error"], r.text
        form = c.get("/login")
        r = c.post(
            "/login",
            data={"username": "center\x00", "password": "whatever it is", "csrf_token": csrf_of(form.text)},
            headers={"Origin": pg_served.base},
        )
        assert r.status_code == 401
    assert _snapshot(w) == before
    page = pg_served.login("center")
    shot = f"/captures/{HUGE}/screenshot.png"
    for path in (f"/reports/{HUGE}", f"/units/{HUGE}", "/units/2147483648", shot):
        assert page.get(path).status_code == 404, path
    page.close()
    with w.session() as s:
        typed = s.scalars(
            sa.select(AuthEvent.user_name)
            .where(AuthEvent.kind == "login_failure")
            .order_by(AuthEvent.id.desc())
        ).first()
    assert typed == "center\\x00"  # recorded, escaped
