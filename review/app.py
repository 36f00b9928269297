"""The console application: FastAPI with server-rendered pages, the JSON API, security middleware.

``create_app`` builds it from a :class:`~storage.config.Config`; ``badgewatch serve`` runs it with
uvicorn. No page runs a script: the console's Content-Security-Policy forbids scripts altogether, and
captured pages are served from their own path under ``Content-Security-Policy: sandbox``.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from review.console import STATIC_DIR, Console, Forbidden, LoginRequired, random_secret
from review.security import Signer
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


class SecurityHeaders:
    """Adds the security headers to every response (the capture frame gets its sandbox policy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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


def create_app(
    cfg: Config,
    engine: Engine | None = None,
    *,
    secure_cookies: bool = False,
    max_body: int = 256 * 1024,
) -> FastAPI:
    """The console for ``cfg`` (its database and evidence store). Without ``cfg.secret_key`` a random
    key is used: sessions then end when the server restarts, and API tokens need a configured key."""
    engine = engine or make_engine(cfg.database_url)
    secret = cfg.secret_key
    if not secret:
        log.warning("secret_key is not configured: using a random key (sessions end on restart)")
        secret = random_secret()
    console = Console(
        cfg, engine, EvidenceStore(cfg.evidence_dir), Signer(secret), secure_cookies, max_body=max_body
    )

    app = FastAPI(
        title="badgewatch 网标巡检 API",
        version="1",
        description=(
            "年度报告提交与查询、巡检发现查询。"
            "使用 `Authorization: Bearer <令牌>`（`badgewatch user token`）。"
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.console = console
    console.templates.env.globals["organisation_name"] = cfg.organisation  # every page's header

    from review import api, web

    app.include_router(web.router)
    app.include_router(api.router)
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
            return JSONResponse({"error": "forbidden", "detail": exc.message}, status_code=exc.status)
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
        problems = []
        for e in errors:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append({"field": where, "message": str(e.get("msg", ""))})
        text = "；".join(f"{p['field']}: {p['message']}" for p in problems)
        if _wants_json(request):
            return JSONResponse(
                {
                    "error": "invalid_input",
                    "detail": f"请求内容无效：{text}，未保存任何内容",
                    "problems": problems,
                },
                status_code=422,
            )
        return HTMLResponse(f"请求无效：{text}", status_code=400)

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

    # Added last = outermost: a 413 from the body limit carries the security headers too.
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(SecurityHeaders)
    return app
