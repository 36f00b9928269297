"""Console pages over HTTP: login, sessions, CSRF, scope by URL, security headers, rate limit."""

from __future__ import annotations

import sqlalchemy as sa

from storage.models import AnnualReport, AnnualReportEvent, Capture, User

from .conftest import Served, csrf_of
from .world import PASSWORD


def _state(served: Served, rid: int) -> tuple[str, int]:
    with served.world.session() as s:
        r = s.get(AnnualReport, rid)
        assert r is not None
        n = s.scalar(sa.select(sa.func.count(AnnualReportEvent.id)).where(AnnualReportEvent.report_id == rid))
        return r.state, int(n or 0)


def test_pages_need_login_and_cookies_are_protected(served: Served) -> None:
    with served.client() as c:
        r = c.get(f"/reports/{served.world.ids['report:edu']}")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    c = served.login("zhuozhou", fresh=True)
    cookie = next(h for h in c.cookies.jar if h.name == "bw_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    raw = [v for k, v in c.get("/login").headers.multi_items() if k == "set-cookie"]
    assert raw and all("httponly" in v.lower() for v in raw)
    page = c.get("/")
    assert page.status_code == 200 and "涿州市" in page.text
    c.close()


def test_session_cookie_flags_on_login(served: Served) -> None:
    with served.client() as c:
        token = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={"username": "zhuozhou", "password": PASSWORD, "csrf_token": token},
            headers={"Origin": served.base},
        )
        assert r.status_code == 303
        set_cookie = next(
            v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("bw_session=")
        )
        low = set_cookie.lower()
        assert "httponly" in low and "samesite=lax" in low


def test_security_headers(served: Served) -> None:
    c = served.login("zhuozhou")
    page = c.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    with served.world.session() as s:
        cap = s.scalar(sa.select(Capture.id).where(Capture.website_id == served.world.ids["site:edu"]))
    frame = c.get(
        f"/captures/{cap}/page", headers={"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "same-origin"}
    )
    assert frame.status_code == 200
    fcsp = frame.headers["content-security-policy"]
    assert fcsp.startswith("sandbox;") and "allow-scripts" not in fcsp and "script-src 'none'" in fcsp
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    assert frame.headers["content-type"] == "text/html; charset=utf-8"
    assert "<script>" in frame.text  # shown as captured: the policy, not rewriting, keeps it inert
    c.close()


def test_forms_without_a_valid_csrf_token_are_refused(served: Served) -> None:
    w = served.world
    rid = w.ids["report:health"]
    before = _state(served, rid)
    a = served.login("zhuozhou")
    b = served.login("baoding")
    own = csrf_of(a.get(f"/reports/{rid}").text)
    other = csrf_of(b.get(f"/reports/{rid}").text)
    url = f"/reports/{rid}/decision"
    origin = {"Origin": served.base}
    for data, headers in [
        ({"decision": "approve"}, origin),  # no token
        ({"decision": "approve", "csrf_token": "x" * 32}, origin),  # made up
        ({"decision": "approve", "csrf_token": other}, origin),  # another session's token
        (
            {"decision": "approve", "csrf_token": own},
            {"Origin": "http://evil.example"},
        ),  # right token, foreign page
    ]:
        r = a.post(url, data=data, headers=headers)
        assert r.status_code == 403, r.text
        assert "CSRF" in r.text
    assert _state(served, rid) == before
    # Logging in without the login form's token is refused as well.
    with served.client() as c:
        r = c.post(
            "/login",
            data={"username": "zhuozhou", "password": PASSWORD, "csrf_token": "nope"},
            headers=origin,
        )
        assert r.status_code == 403 and "bw_session" not in r.headers.get("set-cookie", "")
    # And with the right token the same form goes through.
    r = a.post(
        url,
        data={"decision": "approve", "csrf_token": own, "shown": "1,2,3", "version": "1", "confirm": "1"},
        headers=origin,
    )
    assert r.status_code == 303
    assert _state(served, rid) == ("office_approved", before[1] + 1)
    a.close()
    b.close()


def test_office_cannot_read_or_decide_another_office_by_url(served: Served) -> None:
    w = served.world
    rid = w.ids["report:water"]  # 莲池区
    before = _state(served, rid)
    c = served.login("zhuozhou")  # 涿州市
    with w.session() as s:
        cap = s.scalar(sa.select(Capture.id).where(Capture.website_id == w.ids["site:water"]))
    for path in (
        f"/reports/{rid}",
        f"/units/{w.ids['unit:water']}",
        "/offices/130606",
        "/offices/130600",
        f"/captures/{cap}/page",
        f"/captures/{cap}/screenshot.png",
        "/admin/users",
    ):
        r = c.get(path)
        assert r.status_code in (403, 404), path
        assert "莲池区水利局" not in r.text, path
    token = csrf_of(c.get("/").text)
    r = c.post(
        f"/reports/{rid}/decision",
        data={"decision": "reject", "reason": "越权", "csrf_token": token},
        headers={"Origin": served.base},
    )
    assert r.status_code == 404
    assert _state(served, rid) == before
    # The list shows only 涿州市's reports; the city office above sees 莲池区 too.
    assert "莲池区" not in c.get("/reports").text
    city = served.login("baoding")
    assert "莲池区水利局" in city.get("/reports").text
    assert city.get(f"/reports/{rid}").status_code == 200
    c.close()
    city.close()


def test_admin_manages_accounts_only(served: Served) -> None:
    c = served.login("admin")
    assert c.get(f"/reports/{served.world.ids['report:edu']}").status_code == 403
    page = c.get("/admin/users")
    assert page.status_code == 200
    token = csrf_of(page.text)
    r = c.post(
        "/admin/users",
        data={
            "name": "new-office",
            "role": "office",
            "office_code": "130606",
            "password": "another long secret",
            "csrf_token": token,
        },
        headers={"Origin": served.base},
    )
    assert r.status_code == 303
    bad = c.post(
        "/admin/users",
        data={
            "name": "nobody",
            "role": "office",
            "office_code": "",
            "password": "another long secret",
            "csrf_token": token,
        },
        headers={"Origin": served.base},
    )
    assert bad.status_code == 400 and "必须指定所属编办" in bad.text
    with served.world.session() as s:
        names = set(s.scalars(sa.select(User.name)))
    assert "new-office" in names and "nobody" not in names
    newbie = served.login("new-office", "another long secret")
    assert "莲池区" in newbie.get("/").text
    c.close()
    newbie.close()


def test_open_redirect_after_login_is_refused(served: Served) -> None:
    with served.client() as c:
        token = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={"username": "center", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"},
            headers={"Origin": served.base},
        )
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_login_is_rate_limited(served: Served) -> None:
    with served.client() as c:
        statuses = []
        for _ in range(6):
            token = csrf_of(c.get("/login").text)
            r = c.post(
                "/login",
                data={"username": "baoding", "password": "wrong password", "csrf_token": token},
                headers={"Origin": served.base},
            )
            statuses.append(r.status_code)
        assert statuses == [401] * 5 + [429]
        # Even the right password is refused while the limit holds.
        token = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={"username": "baoding", "password": PASSWORD, "csrf_token": token},
            headers={"Origin": served.base},
        )
        assert r.status_code == 429 and "Retry-After" in r.headers
        # Another account from the same address is not locked out by it.
        token = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={"username": "center", "password": PASSWORD, "csrf_token": token},
            headers={"Origin": served.base},
        )
        assert r.status_code == 303
