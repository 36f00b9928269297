"""Server-rendered pages of the console (Chinese), all behind login and scoped to the reviewer."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from reports.annual import STATE_LABELS, UNDECIDED, derive, disagreements
from review.accounts import ROLE_LABELS, AccountError, create_user, find_active_user, principal_of
from review.audit import decisions_of
from review.charts import bar_chart, trend_chart
from review.console import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    Console,
    Forbidden,
    WebSession,
    check_csrf,
    client_ip,
    console_of,
    db_session,
    login_cookie,
    login_csrf_ok,
    same_origin,
    session_cookie,
    web_session,
)
from review.decisions import DecisionError, can_decide, decide, load_report, reports_in_scope, send_notices
from review.evidence import (
    STATUS_LABELS,
    decoded_body,
    group_by_capture,
    image_type,
    pretty_json,
    reason_message,
    report_findings,
    shot_key,
    shown_record,
)
from review.overview import coverage_tables, office_page, trend, unit_findings, unit_office_code
from review.security import burn_time, verify_password
from storage.evidence import BlobNotFoundError
from storage.models import AnnualReport, Capture, Office, ReportState, Scan, Unit, User, UserRole

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
    if not ws.principal.reviews:
        raise Forbidden("系统管理员只管理账号，不能查看登记信息、巡检结果和年度报告")


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
    ):
        return "/"
    return target


def _login_page(request: Request, message: str = "", status: int = 200, next_url: str = "/") -> Response:
    c = console_of(request)
    token, cookie = login_cookie(c)
    resp = _render(request, "login.html", None, status, login_csrf=token, message=message, next_url=next_url)
    resp.set_cookie(
        LOGIN_COOKIE, cookie, max_age=3600, httponly=True, samesite="strict", secure=c.secure_cookies
    )
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, next_url=_safe_next(next))


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
    wait = c.limiter.blocked(ip, name)
    if wait > 0:
        log.warning("login rate-limited: %s from %s", name, ip)
        resp = _login_page(
            request, f"登录失败次数过多，请 {int(wait // 60) + 1} 分钟后再试", 429, _safe_next(next_url)
        )
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    user = find_active_user(session, name) if name else None
    if user is None:
        burn_time(password)
        ok = False
    else:
        ok = verify_password(user.password_hash, password)
    if not ok or user is None:
        c.limiter.failed(ip, name)
        log.info("login failed: %s from %s", name, ip)
        return _login_page(request, "用户名或密码错误", 401, _safe_next(next_url))
    c.limiter.succeeded(ip, name)
    who = principal_of(session, user)
    resp = RedirectResponse(_safe_next(next_url) if who.reviews else "/admin/users", status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        session_cookie(c, who),
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=c.secure_cookies,
    )
    resp.delete_cookie(LOGIN_COOKIE)
    return resp


@router.post("/logout")
def logout(request: Request, ws: WS, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    check_csrf(request, ws, csrf_token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
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
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    state: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    _reviewer(ws)
    rows = reports_in_scope(session, ws.principal, year, state or None)
    return _render(
        request,
        "reports.html",
        ws,
        reports=rows,
        year=year,
        state=state,
        offices={o.code: o.name for o in session.scalars(sa.select(Office))},
    )


def _report_context(session: Session, console: Console, report: AnnualReport) -> dict[str, Any]:
    if report.state in (ReportState.SUBMITTED.value, ReportState.OFFICE_APPROVED.value):
        # Undecided reports are re-derived from the latest scans, so reviewers judge the current state.
        derive(session, report)
        session.commit()
    findings = report_findings(session, report)
    captures, loose = group_by_capture(session, console.store, findings)
    issues = disagreements(report)
    shown = shown_record(captures, loose, report, issues)
    decided = decisions_of(report)
    return {
        "report": report,
        "captures": captures,
        "loose": loose,
        "issues": issues,
        "field3_differs": any(i.startswith("字段3") for i in issues),
        "field5_differs": any(i.startswith("字段5") for i in issues),
        "undecided_value": UNDECIDED,
        "shown_ids": ",".join(str(i) for i in shown["finding_ids"]),
        "decisions": decided,
        "pretty_json": pretty_json,
    }


@router.get("/reports/{report_id}", response_class=HTMLResponse)
def report_page(request: Request, report_id: int, ws: WS, session: DB, message: str = "") -> Response:
    _reviewer(ws)
    try:
        report = load_report(session, ws.principal, report_id)
    except DecisionError as exc:
        raise Forbidden(exc.message, exc.status) from None
    ctx = _report_context(session, console_of(request), report)
    return _render(
        request, "report.html", ws, can_decide=can_decide(ws.principal, report), message=message[:200], **ctx
    )


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
) -> Response:
    check_csrf(request, ws, csrf_token)
    _reviewer(ws)
    c = console_of(request)
    try:
        report = load_report(session, ws.principal, report_id)
        # Record what the page showed: the ids it listed, kept only where they are this report's evidence.
        ctx = _report_context(session, c, report)
        offered = {int(x) for x in shown.split(",") if x.strip().isdigit()}
        record = shown_record(ctx["captures"], ctx["loose"], report, ctx["issues"])
        record["finding_ids_on_page"] = sorted(offered & set(record["finding_ids"]))
        outcome = decide(
            session,
            ws.principal,
            report_id,
            decision,
            reason,
            shown=record,
            via="console",
            client=client_ip(request),
            cfg=c.cfg,
        )
    except DecisionError as exc:
        if exc.status in (400, 409):
            session.rollback()
            report = load_report(session, ws.principal, report_id)
            ctx = _report_context(session, c, report)
            return _render(
                request,
                "report.html",
                ws,
                exc.status,
                can_decide=can_decide(ws.principal, report),
                message=exc.message,
                **ctx,
            )
        raise Forbidden(exc.message, exc.status) from None
    if outcome.notifications:
        background.add_task(send_notices, c.engine, c.cfg, c.store, outcome.notifications)
    done = {"approve": "已审核通过", "reject": "已退回"}[decision]
    return RedirectResponse(f"/reports/{report_id}?message={quote(done)}", status_code=303)


# --- captured evidence ------------------------------------------------------------------------------


def _capture_in_scope(session: Session, ws: WebSession, capture_id: int) -> Capture:
    _reviewer(ws)
    cap = session.get(Capture, capture_id)
    if cap is None or not ws.principal.sees_office(unit_office_code(session, capture=cap)):
        raise Forbidden(f"证据 {capture_id} 不存在或不在您的管辖范围内", 404)
    return cap


@router.get("/captures/{capture_id}/page")
def capture_page(request: Request, capture_id: int, ws: WS, session: DB, rendered: bool = False) -> Response:
    """The captured page, for a sandboxed frame: CSP sandbox (no scripts, opaque origin) is set by the
    security middleware for this path; the page is sent as UTF-8 text so its own charset cannot mislead."""
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
    return Response(text, media_type="text/html; charset=utf-8")


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


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, ws: WS, session: DB, message: str = "") -> Response:
    _admin(ws)
    users = list(session.scalars(sa.select(User).order_by(User.name)))
    offices = list(session.scalars(sa.select(Office).order_by(Office.code)))
    return _render(
        request,
        "users.html",
        ws,
        users=users,
        offices=offices,
        message=message[:200],
        roles=[r.value for r in UserRole],
    )


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
        create_user(session, name, role, password, office_code or None)
        session.commit()
    except AccountError as exc:
        session.rollback()
        users = list(session.scalars(sa.select(User).order_by(User.name)))
        offices = list(session.scalars(sa.select(Office).order_by(Office.code)))
        return _render(
            request,
            "users.html",
            ws,
            400,
            users=users,
            offices=offices,
            message=str(exc),
            roles=[r.value for r in UserRole],
        )
    return RedirectResponse(f"/admin/users?message={quote('已添加用户 ' + name.strip())}", status_code=303)


# --- API description ----------------------------------------------------------------------------------


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
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
        None,
        spec=spec,
        operations=operations,
        schemas={k: v for k, v in schemas.items() if k in {o["body"] for o in operations}},
    )
