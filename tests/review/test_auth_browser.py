"""Accounts in a real browser (Debian's chromium, headless): logout ends the session on the server, an
administrator's deactivation ends a reviewer's open session, tokens issued and revoked on the admin
page, and the reports filter with an empty year."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from review.accounts import create_user
from storage.models import AuthEvent

from .conftest import Served, browser_login
from .world import PASSWORD

pytestmark = pytest.mark.browser

OWN_PASSWORD = "a browser pass phrase 9"


def _login(browser: Any, served: Served, name: str, password: str = PASSWORD) -> Any:
    return browser_login(browser, served.base, name, password)


def _new_account(served: Served) -> str:
    name = "web-" + uuid.uuid4().hex[:6]
    with served.world.session() as s:
        create_user(s, name, "office", OWN_PASSWORD, "130600", actor="test", client="local")
        s.commit()
    return name


def test_logout_in_the_browser_ends_the_session_everywhere(
    browser: Any, served: Served, artifacts_dir: Path
) -> None:
    name = _new_account(served)
    page = _login(browser, served, name, OWN_PASSWORD)
    cookie = next(c for c in page.context.cookies() if c["name"] == "bw_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    page.click("form.logout button")
    page.wait_for_load_state()
    assert page.url.endswith("/login?message=logged_out") and "已退出登录" in page.inner_text("#login-info")
    page.screenshot(path=str(artifacts_dir / "auth-logged-out.png"), full_page=True)
    # The cookie the browser held, replayed elsewhere: the server ended that session.
    r = httpx.get(served.base + "/", cookies={"bw_session": cookie["value"]})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    page.goto(served.base + "/")
    assert "/login" in page.url
    page.context.close()


def test_admin_deactivates_a_reviewer_with_an_open_session(
    browser: Any, served: Served, artifacts_dir: Path
) -> None:
    name = _new_account(served)
    reviewer = _login(browser, served, name, OWN_PASSWORD)
    reviewer.goto(served.base + "/reports")
    assert reviewer.locator("#report-list").count() == 1
    admin = _login(browser, served, "admin")
    assert admin.url.endswith("/admin/users")
    row = admin.locator("#users tr", has_text=name)
    row.locator("summary").click()
    # Issue a token on the page: shown once.
    row.locator("form.user-token input[name=label]").fill("统计平台")
    row.locator("form.user-token button").click()
    admin.wait_for_load_state()
    token = admin.inner_text("#new-token-text")
    assert token.startswith("bw2.")
    me = httpx.get(served.base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["name"] == name
    admin.screenshot(path=str(artifacts_dir / "auth-token-issued.png"), full_page=True)
    admin.goto(served.base + "/admin/users")
    assert token not in admin.content() and "统计平台" in admin.inner_text("#tokens")
    # Deactivate: the reviewer's very next click lands on the login page, the token stops working.
    row = admin.locator("#users tr", has_text=name)
    row.locator("summary").click()
    row.locator("form.user-active button").click()
    admin.wait_for_load_state()
    assert "已停用账号" in admin.inner_text("#message")
    assert "停用" in admin.locator("#users tr", has_text=name).inner_text()
    admin.screenshot(path=str(artifacts_dir / "auth-admin-users.png"), full_page=True)
    reviewer.goto(served.base + "/reports")
    assert "/login" in reviewer.url
    me = httpx.get(served.base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    with served.world.session() as s:
        kinds = list(
            s.scalars(sa.select(AuthEvent.kind).where(AuthEvent.user_name == name).order_by(AuthEvent.id))
        )
        actors = set(
            s.scalars(
                sa.select(AuthEvent.actor).where(
                    AuthEvent.user_name == name, AuthEvent.kind != "login_success"
                )
            )
        )
    assert kinds[:3] == ["user_created", "login_success", "token_issued"]
    assert "user_deactivated" in kinds and "sessions_ended" in kinds
    assert actors == {"test", "admin"}
    reviewer.context.close()
    admin.context.close()


def test_reports_filter_with_an_empty_year(browser: Any, served: Served) -> None:
    page = _login(browser, served, "center")
    page.goto(served.base + "/reports")
    page.select_option("select[name=state]", "submitted")
    page.click("form.filters button")  # the year field is left empty: the form sends year=
    page.wait_for_load_state()
    assert "year=&state=submitted" in page.url
    assert page.locator("#report-list").count() == 1 and "400" not in page.title()
    page.goto(served.base + "/reports?year=1999")  # the form itself stops this (min=2000); a typed URL
    assert "年度应为 2000 至 2100" in page.inner_text("main")
    page.context.close()
