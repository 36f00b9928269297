"""Server-rendered pages of the console (Chinese), all behind login and scoped to the reviewer."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from reports.annual import STATE_LABELS, UNDECIDED
from review.accounts import (
    MAX_TOKEN_DAYS,
    ROLE_LABELS,
    AccountError,
    change_password,
    change_role,
    create_user,
    end_everything,
    end_session,
    find_user,
    issue_token,
    principal_of,
    revoke_token,
    revoke_tokens,
    set_active,
    start_session,
    token_state,
)
from review.audit import decisions_of
from review.auth_events import record_auth_event
from review.charts import bar_chart, trend_chart
from review.console import (
    LOGIN_FORM_MAX_AGE,
    Console,
    DbId,
    Forbidden,
    LoginRequired,
    WebSession,
    api_principal,
    check_csrf,
    client_ip,
    console_of,
    db_session,
    login_cookie,
    login_csrf_ok,
    notice,
    require_reviewer,
    same_origin,
    web_session,
)
from review.decisions import (
    DecisionError,
    ReviewView,
    can_decide,
    decide,
    delivery_of,
    load_report,
    local_time,
    reports_in_scope,
    review_view,
    send_notices,
    submitted_by,
)
from review.evidence import STATUS_LABELS, decoded_body, image_type, pretty_json, reason_message, shot_key
from review.overview import coverage_tables, office_page, trend, unit_findings, unit_office_code
from review.security import burn_time, hash_password, log_safe, needs_rehash, verify_password
from storage.evidence import BlobNotFoundError
from storage.models import (
    AnnualReport,
    ApiToken,
    AuthSession,
    Capture,
    Office,
    ReportState,
    Scan,
    Unit,
    User,
    UserRole,
)
from storage.types import utcnow

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
DB = Annotated[Session, Depends(db_session)]


def _session(request: Request, session: DB) -> WebSession:
    return web_session(request, session)


WS = Annotated[WebSession, Depends(_session)]


def _render(request: Request, name: str, ws: WebSession | None, status: int = 200, **ctx: Any) -> Response:
    c = console_of(request)
    ctx.update(
        who=ws.principal if ws else None,
        csrf=ws.csrf if ws else "",
        state_labels={s.value: label for s, label in STATE_LABELS.items()},
        status_labels=STATUS_LABELS,
        role_labels={r.value: label for r, label in ROLE_LABELS.items()},
    )
    return c.templates.TemplateResponse(request, name, ctx, status_code=status)


def _reviewer(ws: WebSession) -> None:
    require_reviewer(ws.principal)


def _current_year() -> int:
    return dt.date.today().year


# --- login ----------------------------------------------------------------------------------------


def _safe_next(target: str) -> str:
    """Only a local path may follow the login (no open redirect)."""
    parts = urlsplit(target)
    if (
        not target.startswith("/")
        or target.startswith("//")
        or parts.scheme
        or parts.netloc
        or "\\" in target
        or not target.isprintable()
    ):
        return "/"
    return target


def _login_page(
    request: Request, message: str = "", status: int = 200, next_url: str = "/", info: str = ""
) -> Response:
    c = console_of(request)
    token, cookie = login_cookie(c)
    resp = _render(
        request, "login.html", None, status, login_csrf=token, message=message, info=info, next_url=next_url
    )
    c.set_cookie(resp, c.login_cookie, cookie, LOGIN_FORM_MAX_AGE, "strict")
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request,
    next: Annotated[str, Query(max_length=2000)] = "/",
    message: str = "",
) -> Response:
    return _login_page(request, next_url=_safe_next(next), info=notice(message))


@router.post("/login")
def login(
    request: Request,
    session: DB,
    username: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "/",
) -> Response:
    c: Console = console_of(request)
    if not same_origin(request) or not login_csrf_ok(request, csrf_token):
        return _login_page(request, "登录表单已失效，请重新输入", 403, _safe_next(next_url))
    ip, name = client_ip(request), username.strip()
    # Counted before the password is checked: of concurrent guesses at most the limit are checked.
    admission = c.throttle.admit(ip, name)
    if not admission.admitted:
        log.warning("login throttled: %s from %s", log_safe(name), log_safe(ip))
        resp = _login_page(
            request,
            f"登录尝试次数过多，请 {int(admission.wait // 60) + 1} 分钟后再试",
            429,
            _safe_next(next_url),
        )
        resp.headers["Retry-After"] = str(int(admission.wait) + 1)
        return resp
    user = find_user(session, name) if name and name.isprintable() else None
    if user is None or not user.active:
        burn_time(password)
        ok = False
    else:
        ok = verify_password(user.password_hash, password)
    if not ok or user is None:
        why = "unknown_user" if user is None else ("inactive" if not user.active else "wrong_password")
        log.info("login failed (%s): %s from %s", why, log_safe(name), log_safe(ip))
        record_auth_event(session, "login_failure", name, name, ip, {"reason": why})
        session.commit()
        return _login_page(request, "用户名或密码错误", 401, _safe_next(next_url))
    c.throttle.succeeded(admission)
    rehashed = needs_rehash(user.password_hash)
    if rehashed:  # made with weaker parameters than today's: upgraded while the password is at hand
        user.password_hash = hash_password(password)
    secret, _csrf = start_session(session, user, ip, c.cfg.session_hours)
    record_auth_event(session, "login_success", user.name, user.name, ip, {"rehashed": rehashed})
    session.commit()
    log.info("login: %s from %s", log_safe(user.name), log_safe(ip))
    who = principal_of(session, user)
    resp = RedirectResponse(_safe_next(next_url) if who.reviews else "/admin/users", status_code=303)
    c.set_cookie(resp, c.session_cookie, secret, int(c.cfg.session_hours * 3600), "lax")
    c.clear_cookie(resp, c.login_cookie)
    return resp


@router.post("/logout")
def logout(
    request: Request, ws: WS, session: DB, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """End this session on the server (the cookie is worthless from now on, wherever a copy is)."""
    check_csrf(request, ws, csrf_token)
    row = session.get(AuthSession, ws.session_id)
    if row is not None:
        end_session(session, row, "logout")
        record_auth_event(session, "logout", ws.principal.name, ws.principal.name, client_ip(request), {})
        session.commit()
    c = console_of(request)
    resp = RedirectResponse("/login?message=logged_out", status_code=303)
    c.clear_cookie(resp, c.session_cookie)
    return resp


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, ws: WS, message: str = "") -> Response:
    """The signed-in user's own account: change the password."""
    return _render(request, "account.html", ws, message=notice(message), error="")


@router.post("/account/password")
def account_password(
    request: Request,
    ws: WS,
    session: DB,
    current: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    confirm: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Change one's own password: the current one is checked (throttled like a login, so a borrowed
    session cannot guess it), every session and token of the account ends, this browser gets a new one."""
    check_csrf(request, ws, csrf_token)
    c = console_of(request)
    ip, name = client_ip(request), ws.principal.name

    def refuse(error: str, status: int) -> Response:
        return _render(request, "account.html", ws, status, message="", error=error)

    admission = c.throttle.admit(ip, name)
    if not admission.admitted:
        return refuse(f"尝试次数过多，请 {int(admission.wait // 60) + 1} 分钟后再试", 429)
    user = session.get(User, ws.principal.user_id)
    if user is None or not verify_password(user.password_hash, current):
        record_auth_event(
            session, "login_failure", name, name, ip, {"reason": "wrong_password", "where": "account"}
        )
        session.commit()
        return refuse("当前密码不正确", 400)
    c.throttle.succeeded(admission)
    if password != confirm:
        return refuse("两次输入的新密码不一致", 400)
    try:
        change_password(session, user, password, actor=name, client=ip)
    except AccountError as exc:
        session.rollback()
        return refuse(str(exc), 400)
    secret, _csrf = start_session(session, user, ip, c.cfg.session_hours)
    session.commit()
    resp = RedirectResponse("/account?message=own_password_changed", status_code=303)
    c.set_cookie(resp, c.session_cookie, secret, int(c.cfg.session_hours * 3600), "lax")
    return resp


# --- dashboard, offices, units ----------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, ws: WS, session: DB) -> Response:
    if ws.principal.is_admin:
        return RedirectResponse("/admin/users", status_code=303)
    _reviewer(ws)
    today = dt.date.today()
    tables, problems = coverage_tables(session, ws.principal, today)
    points = trend(session, ws.principal)
    last = session.scalars(sa.select(Scan).order_by(Scan.started_at.desc(), Scan.id.desc()).limit(1)).first()
    charts = [bar_chart([(r.name, r.coverage_pct) for r in t.rows]) for t in tables]
    year = _current_year()
    pending_state = ReportState.SUBMITTED if ws.principal.is_office else ReportState.OFFICE_APPROVED
    pending = reports_in_scope(session, ws.principal, state=pending_state.value)
    return _render(
        request,
        "dashboard.html",
        ws,
        tables=list(zip(tables, charts, strict=True)),
        problems=problems,
        trend=points,
        trend_svg=trend_chart(points),
        last_scan=last,
        pending=pending,
        year=year,
    )


@router.get("/offices/{code}", response_class=HTMLResponse)
def office(request: Request, code: str, ws: WS, session: DB, year: int | None = None) -> Response:
    _reviewer(ws)
    if not ws.principal.sees_office(code):
        raise Forbidden(f"编办 {code} 不存在或不在您的管辖范围内", 404)
    try:
        page = office_page(session, code, year or _current_year())
    except LookupError:
        raise Forbidden(f"编办 {code} 不存在或不在您的管辖范围内", 404) from None
    parent = page.parent if page.parent and ws.principal.sees_office(page.parent.code) else None
    return _render(request, "office.html", ws, page=page, parent=parent, year=year or _current_year())


@router.get("/units/{unit_id}", response_class=HTMLResponse)
def unit(request: Request, unit_id: int, ws: WS, session: DB) -> Response:
    _reviewer(ws)
    u = session.get(Unit, unit_id)
    if u is None or not ws.principal.sees_office(u.office_code):
        raise Forbidden(f"单位 {unit_id} 不存在或不在您的管辖范围内", 404)
    history = [(f, s, reason_message(f.reason)) for f, s in unit_findings(session, u)]
    reports = list(
        session.scalars(
            sa.select(AnnualReport).where(AnnualReport.unit_id == u.id).order_by(AnnualReport.year.desc())
        )
    )
    office_row = session.get(Office, u.office_code)
    return _render(request, "unit.html", ws, unit=u, office=office_row, history=history, reports=reports)


# --- annual reports ---------------------------------------------------------------------------------


@router.get("/reports", response_class=HTMLResponse)
def report_list(
    request: Request,
    ws: WS,
    session: DB,
    year: Annotated[str, Query(max_length=10)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    _reviewer(ws)
    # The filter form sends ``year=`` when the field is left empty: that means every year.
    year_value = int(year) if year.isascii() and year.isdigit() else None
    if year.strip() and (year_value is None or not 2000 <= year_value <= 2100):
        raise Forbidden(f"年度应为 2000 至 2100 之间的年份（“{year}”无效），或留空查看全部年度", 400)
    if state and state not in {s.value for s in ReportState}:
        raise Forbidden("未知的报告状态", 400)
    rows = reports_in_scope(session, ws.principal, year_value, state or None)
    return _render(
        request,
        "reports.html",
        ws,
        reports=rows,
        year=year_value,
        state=state,
        offices={o.code: o.name for o in session.scalars(sa.select(Office))},
    )


# What a decision's redirect may say (``?done=`` carries one of these codes, never free text).
DONE_MESSAGES = {
    "office_approved": "已审核通过（编办一级），报告转交域名中心审核。",
    "approved": "已审核通过。",
    "rejected": "已退回。单位是否已收到通知，见下方“通知单位”。",
}


def _report_context(session: Session, console: Console, who: Any, view: ReviewView) -> dict[str, Any]:
    """Everything the report page shows; reads only (a GET never writes)."""
    report = view.report
    issues = view.issues
    return {
        "report": report,
        "view": view,
        "derived_domains": view.derived_domains,
        "derived_badge": view.derived_badge,
        "captures": view.captures,
        "loose": view.loose,
        "issues": issues,
        "suggestions": view.suggestions,
        "field3_differs": any(i.startswith("字段3") for i in issues),
        "field5_differs": any(i.startswith("字段5") for i in issues),
        "undecided_value": UNDECIDED,
        "shown_ids": ",".join(str(i) for i in view.finding_ids),
        "decisions": decisions_of(report),
        "delivery": delivery_of(session, report, console.cfg),
        "can_decide": can_decide(who, report),
        "own_submission": submitted_by(report, who),
        "pretty_json": pretty_json,
        "local": lambda at: local_time(at, console.cfg),
    }


def _ids(parts: list[str]) -> set[int]:
    """The database ids among form values (``str.isdigit`` alone would take "²", which ``int`` refuses)."""
    return {int(p) for x in parts if (p := x.strip()).isascii() and p.isdigit() and len(p) < 10}


@router.get("/reports/{report_id}", response_class=HTMLResponse)
def report_page(
    request: Request,
    report_id: int,
    ws: WS,
    session: DB,
    done: Annotated[str, Query(max_length=20)] = "",
    message: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    _reviewer(ws)
    try:
        report = load_report(session, ws.principal, report_id)
    except DecisionError as exc:
        raise Forbidden(exc.message, exc.status) from None
    c = console_of(request)
    ctx = _report_context(session, c, ws.principal, review_view(session, c.store, report))
    return _render(request, "report.html", ws, message=DONE_MESSAGES.get(done, "") or notice(message), **ctx)


@router.post("/reports/{report_id}/decision")
def report_decision(
    request: Request,
    report_id: int,
    ws: WS,
    session: DB,
    background: BackgroundTasks,
    decision: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    shown: Annotated[str, Form(max_length=20000)] = "",
    version: Annotated[str, Form(max_length=12)] = "",
    basis: Annotated[str, Form(max_length=64)] = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
    suggested: Annotated[list[str] | None, Form(max_length=8)] = None,
) -> Response:
    check_csrf(request, ws, csrf_token)
    _reviewer(ws)
    c = console_of(request)
    picked = sorted(_ids(suggested or []))
    try:
        outcome = decide(
            session,
            ws.principal,
            report_id,
            decision,
            reason,
            version=int(version) if version.isascii() and version.isdigit() and len(version) < 10 else None,
            basis=basis or None,
            confirmed=confirm == "1",
            picked=picked,
            offered=_ids(shown.split(",")),
            via="console",
            store=c.store,
            client=client_ip(request),
            cfg=c.cfg,
        )
    except DecisionError as exc:
        if exc.status in (400, 409, 422):
            session.rollback()
            report = load_report(session, ws.principal, report_id)
            ctx = _report_context(session, c, ws.principal, review_view(session, c.store, report))
            return _render(request, "report.html", ws, exc.status, message=exc.message, error=True, **ctx)
        raise Forbidden(exc.message, exc.status) from None
    if outcome.notifications:
        background.add_task(send_notices, c.engine, c.cfg, c.store, outcome.notifications)
    return RedirectResponse(f"/reports/{report_id}?done={outcome.event.to_state}", status_code=303)


# --- captured evidence ------------------------------------------------------------------------------

# A captured page is shown only inside the review page's sandboxed frame: a browser says where the
# response goes (Sec-Fetch-Dest), and anything but a frame — a top-level navigation above all — is
# refused, so the capture never becomes a page of the console's origin (a browser that ignores the
# CSP sandbox, as IE mode does, would run its scripts with the console's cookies). A browser that
# sends no Sec-Fetch-Dest at all is refused too: it cannot show that the frame is one.
FRAME_DESTINATIONS = frozenset({"iframe", "frame"})


def _capture_in_scope(session: Session, ws: WebSession, capture_id: int) -> Capture:
    _reviewer(ws)
    cap = session.get(Capture, capture_id)
    if cap is None or not ws.principal.sees_office(unit_office_code(session, capture=cap)):
        raise Forbidden(f"证据 {capture_id} 不存在或不在您的管辖范围内", 404)
    return cap


@router.get("/captures/{capture_id}/page")
def capture_page(
    request: Request,
    capture_id: int,
    ws: WS,
    session: DB,
    rendered: bool = False,
) -> Response:
    """The captured page, for a sandboxed frame only: CSP sandbox (no scripts, opaque origin) is set by
    the security middleware for this path; the page is sent as UTF-8 text so its own charset cannot
    mislead; a request that is not for a frame is refused."""
    dest = request.headers.get("sec-fetch-dest", "").lower()
    site = request.headers.get("sec-fetch-site", "").lower()
    if dest not in FRAME_DESTINATIONS or site not in ("same-origin", ""):
        log.info("capture %s refused outside its frame (Sec-Fetch-Dest %r)", capture_id, dest[:20])
        raise Forbidden("抓取的页面只能在年度报告审核页的隔离框内查看，不能单独打开", 403)
    cap = _capture_in_scope(session, ws, capture_id)
    c = console_of(request)
    try:
        if rendered and cap.rendered_blob:
            text = c.store.get(cap.rendered_blob).decode("utf-8", "replace")
        elif cap.body_blob:
            text, _ = decoded_body(c.store, cap)
        else:
            text = "<p>本次访问没有取得页面内容</p>"
    except BlobNotFoundError:
        text = "<p>页面内容已按保存期限清理</p>"
    return Response(
        text,
        media_type="text/html; charset=utf-8",
        headers={"Vary": "Sec-Fetch-Dest, Sec-Fetch-Site", "Cross-Origin-Resource-Policy": "same-origin"},
    )


@router.get("/captures/{capture_id}/screenshot.png")
def capture_screenshot(
    request: Request, capture_id: int, ws: WS, session: DB, part: Annotated[str, Query(max_length=12)] = ""
) -> Response:
    """The render tier's screenshot, or (``part``: full, crop-N, badge) a marked screenshot's piece."""
    cap = _capture_in_scope(session, ws, capture_id)
    key = shot_key(cap, part)
    if not key:
        raise Forbidden("这次访问没有截图", 404)
    try:
        data = console_of(request).store.get(key)
    except BlobNotFoundError:
        raise Forbidden("截图已按保存期限清理", 404) from None
    kind = image_type(data)
    if kind is None or (kind != "image/png" and part != "badge"):
        raise Forbidden("截图不是 PNG 图片", 404)
    return Response(data, media_type=kind)


# --- accounts (admin) -------------------------------------------------------------------------------


def _admin(ws: WebSession) -> None:
    if not ws.principal.is_admin:
        raise Forbidden("只有系统管理员可以管理账号")


def _users_page(
    request: Request, ws: WebSession, session: Session, status: int = 200, message: str = "", **extra: Any
) -> Response:
    users = list(session.scalars(sa.select(User).order_by(User.name)))
    names = {u.id: u.name for u in users}
    tokens = list(session.scalars(sa.select(ApiToken).order_by(ApiToken.id.desc()).limit(500)))
    live = dict(
        session.execute(
            sa.select(AuthSession.user_id, sa.func.count())
            .where(AuthSession.ended_at.is_(None), AuthSession.expires_at > utcnow())
            .group_by(AuthSession.user_id)
        ).all()
    )
    offices = list(session.scalars(sa.select(Office).order_by(Office.code)))
    return _render(
        request,
        "users.html",
        ws,
        status,
        users=users,
        offices=offices,
        tokens=[(t, names.get(t.user_id, "?"), token_state(t)) for t in tokens],
        live_sessions=live,
        message=message,
        roles=[r.value for r in UserRole],
        token_days=console_of(request).cfg.api_token_days,
        max_token_days=MAX_TOKEN_DAYS,
        **extra,
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, ws: WS, session: DB, message: str = "") -> Response:
    _admin(ws)
    return _users_page(request, ws, session, message=notice(message))


def _account_action(
    request: Request, ws: WebSession, session: Session, csrf_token: str, user_id: int
) -> User:
    check_csrf(request, ws, csrf_token)
    _admin(ws)
    user = session.get(User, user_id)
    if user is None:
        raise Forbidden(f"账号 {user_id} 不存在", 404)
    return user


def _done(code: str) -> Response:
    return RedirectResponse(f"/admin/users?message={code}", status_code=303)


def _refused(request: Request, ws: WebSession, session: Session, exc: AccountError) -> Response:
    session.rollback()
    return _users_page(request, ws, session, 400, message=str(exc))


@router.post("/admin/users")
def users_add(
    request: Request,
    ws: WS,
    session: DB,
    name: Annotated[str, Form(max_length=100)] = "",
    role: Annotated[str, Form(max_length=12)] = "",
    office_code: Annotated[str, Form(max_length=12)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_csrf(request, ws, csrf_token)
    _admin(ws)
    try:
        create_user(
            session,
            name,
            role,
            password,
            office_code or None,
            actor=ws.principal.name,
            client=client_ip(request),
        )
        session.commit()
    except AccountError as exc:
        return _refused(request, ws, session, exc)
    return _done("user_added")


@router.post("/admin/users/{user_id}/password")
def users_password(
    request: Request,
    user_id: DbId,
    ws: WS,
    session: DB,
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = _account_action(request, ws, session, csrf_token, user_id)
    try:
        change_password(session, user, password, actor=ws.principal.name, client=client_ip(request))
        session.commit()
    except AccountError as exc:
        return _refused(request, ws, session, exc)
    return _done("password_changed")


@router.post("/admin/users/{user_id}/role")
def users_role(
    request: Request,
    user_id: DbId,
    ws: WS,
    session: DB,
    role: Annotated[str, Form(max_length=12)] = "",
    office_code: Annotated[str, Form(max_length=12)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = _account_action(request, ws, session, csrf_token, user_id)
    try:
        if user.id == ws.principal.user_id:
            raise AccountError("不能修改自己的角色（请另一位系统管理员操作）")
        change_role(
            session, user, role, office_code or None, actor=ws.principal.name, client=client_ip(request)
        )
        session.commit()
    except AccountError as exc:
        return _refused(request, ws, session, exc)
    return _done("role_changed")


@router.post("/admin/users/{user_id}/active")
def users_active(
    request: Request,
    user_id: DbId,
    ws: WS,
    session: DB,
    active: Annotated[str, Form(max_length=1)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = _account_action(request, ws, session, csrf_token, user_id)
    if active not in ("0", "1"):
        raise Forbidden("请求无效", 400)
    try:
        if user.id == ws.principal.user_id and active == "0":
            raise AccountError("不能停用自己的账号（请另一位系统管理员操作）")
        set_active(session, user, active == "1", actor=ws.principal.name, client=client_ip(request))
        session.commit()
    except AccountError as exc:
        return _refused(request, ws, session, exc)
    return _done("activated" if active == "1" else "deactivated")


@router.post("/admin/users/{user_id}/end-sessions")
def users_end_sessions(
    request: Request,
    user_id: DbId,
    ws: WS,
    session: DB,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = _account_action(request, ws, session, csrf_token, user_id)
    end_everything(session, user, "ended_by_admin", ws.principal.name, client_ip(request))
    session.commit()
    return _done("sessions_ended")


@router.post("/admin/users/{user_id}/unlock")
def users_unlock(
    request: Request,
    user_id: DbId,
    ws: WS,
    session: DB,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Lift a login lockout of this account (its failed attempts are forgotten, from every address)."""
    user = _account_action(request, ws, session, csrf_token, user_id)
    cleared = console_of(request).throttle.forget_account(user.name)
    record_auth_event(
        session, "login_unlocked", user.name, ws.principal.name, client_ip(request), {"counters": cleared}
    )
    session.commit()
    return _done("unlocked")


@router.post("/admin/users/{user_id}/tokens")
def users_token_issue(
    request: Request,
    user_id: DbId,
    ws: WS,
    session: DB,
    days: Annotated[str, Form(max_length=4)] = "",
    label: Annotated[str, Form(max_length=100)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Issue a token; the answer is the page showing it once (it is never stored or shown again)."""
    user = _account_action(request, ws, session, csrf_token, user_id)
    try:
        if not (days.isascii() and days.isdigit()):
            raise AccountError(f"令牌有效期应为 1 至 {MAX_TOKEN_DAYS} 天")
        row, text = issue_token(
            session, user, days=int(days), label=label, actor=ws.principal.name, client=client_ip(request)
        )
        session.commit()
    except AccountError as exc:
        return _refused(request, ws, session, exc)
    return _users_page(
        request,
        ws,
        session,
        message=f"已为 {user.name} 生成令牌（只显示这一次，请立即保存）",
        new_token=text,
        new_token_row=row,
    )


@router.post("/admin/users/{user_id}/tokens/{token_id}/revoke")
def users_token_revoke(
    request: Request,
    user_id: DbId,
    token_id: DbId,
    ws: WS,
    session: DB,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = _account_action(request, ws, session, csrf_token, user_id)
    try:
        revoke_token(session, user, token_id, actor=ws.principal.name, client=client_ip(request))
        session.commit()
    except AccountError as exc:
        return _refused(request, ws, session, exc)
    return _done("token_revoked")


@router.post("/admin/users/{user_id}/tokens/revoke-all")
def users_tokens_revoke_all(
    request: Request,
    user_id: DbId,
    ws: WS,
    session: DB,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = _account_action(request, ws, session, csrf_token, user_id)
    revoke_tokens(session, user, actor=ws.principal.name, client=client_ip(request))
    session.commit()
    return _done("tokens_revoked")


# --- API description (signed-in users only) ---------------------------------------------------------


@router.get("/openapi.json")
def openapi_document(request: Request, session: DB) -> Response:
    """The OpenAPI document, for a signed-in user or an API token."""
    try:
        web_session(request, session)
    except LoginRequired:
        if api_principal(request, session) is None:
            return JSONResponse(
                {"error": "unauthorized", "detail": "需要登录或有效的 API 令牌"}, status_code=401
            )
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request, ws: WS) -> Response:
    """The OpenAPI description rendered on the server (Swagger UI would need scripts and a CDN)."""
    spec = request.app.openapi()
    operations = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = str(body.get("$ref", "")).rsplit("/", 1)[-1]
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "params": [
                        (p.get("name"), p.get("in"), p.get("required", False))
                        for p in op.get("parameters", [])
                    ],
                    "body": ref,
                    "responses": sorted(op.get("responses", {}).items()),
                }
            )
    schemas = spec.get("components", {}).get("schemas", {})
    return _render(
        request,
        "docs.html",
        ws,
        spec=spec,
        operations=operations,
        schemas={k: v for k, v in schemas.items() if k in {o["body"] for o in operations}},
    )
