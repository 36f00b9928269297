"""The console application: FastAPI with server-rendered pages, the JSON API, security middleware.

``create_app`` builds it from a :class:`~storage.config.Config`; ``badgewatch serve`` runs it with
uvicorn. No page runs a script: the console's Content-Security-Policy forbids scripts altogether, and
captured pages are served from their own path under ``Content-Security-Policy: sandbox``. Requests
pass, outermost first: the trusted proxies' headers, the security headers, the Host check, the body
limit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from review.console import STATIC_DIR, Console, Forbidden, LoginRequired, random_secret
from review.security import HASH_GATE, Busy, LoginThrottle, Signer
from storage.config import Config
from storage.db import make_engine
from storage.evidence import EvidenceStore

log = logging.getLogger(__name__)

CONSOLE_CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# A captured page: its own opaque origin (sandbox without allow-scripts), nothing fetched from anywhere.
CAPTURE_CSP = (
    "sandbox; default-src 'none'; script-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
CAPTURE_PATH_PREFIX = "/captures/"


def is_capture_frame(path: str) -> bool:
    return path.startswith(CAPTURE_PATH_PREFIX) and path.endswith("/page")


# Over HTTPS: browsers keep to HTTPS for this host for a year (no first-request downgrade later on).
HSTS = b"max-age=31536000"


class SecurityHeaders:
    """Adds the security headers to every response (the capture frame gets its sandbox policy; over
    HTTPS, Strict-Transport-Security)."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        frame = is_capture_frame(scope.get("path", ""))

        async def wrapped(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"content-security-policy", b"x-frame-options")
                ]
                headers += [
                    (b"content-security-policy", (CAPTURE_CSP if frame else CONSOLE_CSP).encode()),
                    (b"x-frame-options", b"SAMEORIGIN" if frame else b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    (b"cache-control", b"no-store"),
                ]
                if self.hsts:
                    headers.append((b"strict-transport-security", HSTS))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    await _too_large(self.limit)(scope, receive, send)
                    return
        seen = 0

        async def limited() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # FastAPI passes HTTPExceptions raised while reading the body through unchanged.
                    raise StarletteHTTPException(413, _too_large_text(self.limit))
            return message

        await self.app(scope, limited, send)


def _too_large_text(limit: int) -> str:
    return f"请求内容过大（上限 {limit} 字节），未保存任何内容"


def _too_large(limit: int) -> Response:
    return JSONResponse({"error": "body_too_large", "detail": _too_large_text(limit)}, status_code=413)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def _field_label(loc: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path", "form", "header", "cookie"))


def _problem_text(e: Mapping[str, Any]) -> str:
    """A validation problem in Chinese (pydantic's English stays in the JSON ``problems`` list)."""
    kind = str(e.get("type", ""))
    field = _field_label(tuple(e.get("loc", ()))) or "请求"
    if kind == "missing":
        return f"缺少 {field}"
    if "too_long" in kind:
        return f"{field} 太长"
    if "too_short" in kind:
        return f"{field} 太短"
    if kind.startswith(("greater_than", "less_than")):
        return f"{field} 超出允许的范围"
    if kind.startswith(("int_", "float_")):
        return f"{field} 应为数字"
    return f"{field} 的值无效"


def create_app(
    cfg: Config,
    engine: Engine | None = None,
    *,
    secure_cookies: bool = False,
    max_body: int = 256 * 1024,
    allowed_hosts: list[str] | None = None,
    forwarded_allow_ips: list[str] | None = None,
) -> FastAPI:
    """The console for ``cfg`` (its database and evidence store).

    ``secure_cookies``: the console is reached over HTTPS (``__Host-`` Secure cookies and HSTS).
    ``allowed_hosts``: the Host names it answers to (default ``cfg.console_hosts``, else loopback
    names). ``forwarded_allow_ips``: proxies whose X-Forwarded-For/-Proto are believed (default
    ``cfg.forwarded_allow_ips``). Without ``cfg.secret_key`` a random key signs the login forms."""
    engine = engine or make_engine(cfg.database_url)
    secret = cfg.secret_key
    if not secret:
        log.warning("secret_key is not configured: using a random key (open login forms end on restart)")
        secret = random_secret()
    HASH_GATE.resize(cfg.password_checks_max)
    throttle = LoginThrottle(
        per_pair=cfg.login_max_per_account_address,
        per_address=cfg.login_max_per_address,
        per_account=cfg.login_max_per_account,
        window_s=cfg.login_window_s,
    )
    console = Console(
        cfg,
        engine,
        EvidenceStore(cfg.evidence_dir),
        Signer(secret),
        secure_cookies,
        throttle=throttle,
        max_body=max_body,
    )
    hosts = list(allowed_hosts if allowed_hosts is not None else cfg.console_hosts) or list(LOOPBACK_HOSTS)
    proxies = list(forwarded_allow_ips if forwarded_allow_ips is not None else cfg.forwarded_allow_ips)

    app = FastAPI(
        title="badgewatch 网标巡检 API",
        version="1",
        description=(
            "年度报告提交与查询、巡检发现查询。"
            "使用 `Authorization: Bearer <令牌>`（`badgewatch user token`）。"
        ),
        docs_url=None,
        redoc_url=None,
        # Served by review.web behind login (the API's shape is no business of anonymous visitors).
        openapi_url=None,
    )
    app.state.console = console
    console.templates.env.globals["organisation_name"] = cfg.organisation  # every page's header

    from review import api, lists, web

    app.include_router(web.router)
    app.include_router(api.router)
    lists.install(app)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": "unauthorized", "detail": "需要登录"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if _wants_json(request):
            code = {400: "invalid_input", 401: "unauthorized", 404: "not_found"}.get(exc.status, "forbidden")
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return JSONResponse(
                {"error": code, "detail": exc.message}, status_code=exc.status, headers=headers
            )
        return console.templates.TemplateResponse(
            request,
            "error.html",
            {"message": exc.message, "status": exc.status, "who": None},
            status_code=exc.status,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(
                {"error": "malformed_json", "detail": "请求内容不是有效的 JSON，未保存任何内容"},
                status_code=400,
            )
        text = "；".join(dict.fromkeys(_problem_text(e) for e in errors))
        if _wants_json(request):
            problems = [
                {"field": _field_label(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
                for e in errors
            ]
            return JSONResponse(
                {
                    "error": "invalid_input",
                    "detail": f"请求内容无效：{text}，未保存任何内容",
                    "problems": problems,
                },
                status_code=422,
            )
        # A page, escaped by the template like every other (field names can come from the request).
        return console.templates.TemplateResponse(
            request,
            "error.html",
            {"message": f"请求无效：{text}，未保存任何内容", "status": 400, "who": None},
            status_code=400,
        )

    @app.exception_handler(Busy)
    async def _busy(request: Request, _exc: Busy) -> Response:
        message = "服务器正忙，请稍后再试"
        if _wants_json(request):
            return JSONResponse(
                {"error": "busy", "detail": message}, status_code=503, headers={"Retry-After": "10"}
            )
        return console.templates.TemplateResponse(
            request, "error.html", {"message": message, "status": 503, "who": None}, status_code=503
        )

    # The last line of defence against input no column can hold, on routes that did not bound it: a
    # number too large for the database (what it names cannot exist: 404), or a value the database
    # refuses (a NUL character in PostgreSQL text: 400). Never a 500, and nothing is stored.
    @app.exception_handler(OverflowError)
    @app.exception_handler(sa.exc.DataError)
    async def _unstorable(request: Request, exc: Exception) -> Response:
        log.info("unstorable input in %s: %s", request.url.path, type(exc).__name__)
        # SQLSTATE 22003: numeric value out of range (PostgreSQL's word for SQLite's OverflowError).
        if isinstance(exc, OverflowError) or getattr(getattr(exc, "orig", None), "sqlstate", "") == "22003":
            status, code, message = 404, "not_found", "请求的内容不存在"
        else:
            status, code, message = 400, "invalid_input", "请求中有数据库无法保存的字符或数值，未保存任何内容"
        if _wants_json(request):
            return JSONResponse({"error": code, "detail": message}, status_code=status)
        return console.templates.TemplateResponse(
            request, "error.html", {"message": message, "status": status, "who": None}, status_code=status
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if _wants_json(request):
            code = {413: "body_too_large", 404: "not_found", 405: "method_not_allowed"}.get(
                exc.status_code, "http_error"
            )
            return JSONResponse(
                {"error": code, "detail": detail},
                status_code=exc.status_code,
                headers=getattr(exc, "headers", None),
            )
        message = {404: "页面不存在", 405: "不支持该请求方法"}.get(exc.status_code, detail)
        return console.templates.TemplateResponse(
            request,
            "error.html",
            {"message": message, "status": exc.status_code, "who": None},
            status_code=exc.status_code,
        )

    # Added last = outermost. The proxy headers are read first, so every layer (throttling, the audit
    # trail) sees the real client; a 400 for a foreign Host and a 413 carry the security headers.
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.add_middleware(SecurityHeaders, hsts=secure_cookies)
    if proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    return app
