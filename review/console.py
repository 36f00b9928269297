"""The console's shared state and the request plumbing: database sessions, signed-in user, CSRF,
cookies, client address, notices."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from review.accounts import MAX_ID, Principal, live_session, principal_of, token_user
from review.security import LoginThrottle, Signer, new_csrf_token, same_token
from storage.config import Config
from storage.evidence import EvidenceStore

log = logging.getLogger(__name__)

SESSION_COOKIE = "bw_session"
LOGIN_COOKIE = "bw_login"
# With secure cookies (HTTPS) the names carry the __Host- prefix: the browser then accepts the cookie
# only from this exact host over HTTPS, with Path=/ and no Domain (no sibling host can plant one).
HOST_PREFIX = "__Host-"
LOGIN_FORM_MAX_AGE = 3600
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

# A database id in a path: anything outside 1..MAX_ID cannot exist (and would overflow the column).
DbId = Annotated[int, PathParam(ge=1, le=MAX_ID)]

# What a page says after a redirect: ``?message=<code>`` names one of these (free text is never shown).
NOTICES = {
    "approved": "已审核通过",
    "rejected": "已退回",
    "user_added": "已添加账号",
    "password_changed": "已修改密码；该账号的全部会话和令牌已失效",
    "role_changed": "已修改角色；该账号的全部会话和令牌已失效",
    "deactivated": "已停用账号；该账号的全部会话和令牌已失效",
    "activated": "已重新启用账号",
    "tokens_revoked": "已吊销该账号的全部令牌",
    "token_revoked": "已吊销令牌",
    "sessions_ended": "已结束该账号的全部会话和令牌",
    "logged_out": "已退出登录",
    "unlocked": "已解除该账号的登录限制",
    "own_password_changed": "密码已修改；该账号在其他地方的会话和全部 API 令牌已失效",
}


def notice(code: str) -> str:
    """The Chinese text of a ``?message=`` code ("" for anything else)."""
    return NOTICES.get(code, "")


@dataclass
class Console:
    """Everything a request handler needs; one per app (``app.state.console``)."""

    cfg: Config
    engine: Engine
    store: EvidenceStore
    signer: Signer
    secure_cookies: bool = False
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES_DIR)))
    max_body: int = 256 * 1024

    @property
    def session_cookie(self) -> str:
        return HOST_PREFIX + SESSION_COOKIE if self.secure_cookies else SESSION_COOKIE

    @property
    def login_cookie(self) -> str:
        return HOST_PREFIX + LOGIN_COOKIE if self.secure_cookies else LOGIN_COOKIE

    def set_cookie(self, resp: Response, name: str, value: str, max_age: int, samesite: str) -> None:
        resp.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite=samesite,  # type: ignore[arg-type]
            secure=self.secure_cookies,
        )

    def clear_cookie(self, resp: Response, name: str) -> None:
        resp.delete_cookie(name, path="/", httponly=True, secure=self.secure_cookies)


class LoginRequired(Exception):
    """The page needs a signed-in user: answered with a redirect to the login page."""


class Forbidden(Exception):
    """The signed-in user may not do this (a page answers 403 with a message)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def require_reviewer(principal: Principal) -> None:
    """Refuse (403, in words) an account that may not see registry, scans and reports."""
    if principal.is_submitter:
        raise Forbidden("报告报送账号只能通过 API 提交年度报告，不能查看或审核")
    if not principal.reviews:
        raise Forbidden("系统管理员只管理账号，不能查看登记信息、巡检结果和年度报告")


def console_of(request: Request) -> Console:
    c = request.app.state.console
    assert isinstance(c, Console)
    return c


def db_session(request: Request) -> Iterator[Session]:
    with Session(console_of(request).engine, expire_on_commit=False) as session:
        yield session


def client_ip(request: Request) -> str:
    """The client's address: the peer, or behind a trusted proxy (``forwarded_allow_ips``) the address
    the proxy saw (uvicorn's proxy-headers middleware has rewritten the peer by then)."""
    return request.client.host if request.client else "?"


@dataclass(frozen=True, slots=True)
class WebSession:
    principal: Principal
    csrf: str
    session_id: str = ""


def web_session(request: Request, session: Session) -> WebSession:
    """The signed-in user of a page request; :class:`LoginRequired` when there is none."""
    found = live_session(session, request.cookies.get(console_of(request).session_cookie, ""))
    if found is None:
        raise LoginRequired()
    row, user = found
    return WebSession(principal_of(session, user), row.csrf, row.id)


def login_cookie(console: Console) -> tuple[str, str]:
    """A fresh pre-login CSRF token and the signed cookie that carries it."""
    token = new_csrf_token()
    return token, console.signer.sign("login", {"csrf": token, "iat": int(time.time())})


def login_csrf_ok(request: Request, submitted: str) -> bool:
    c = console_of(request)
    raw = request.cookies.get(c.login_cookie, "")
    payload = c.signer.unsign("login", raw, LOGIN_FORM_MAX_AGE) if raw else None
    return payload is not None and same_token(str(payload.get("csrf", "")), submitted)


def same_origin(request: Request) -> bool:
    """A POST whose Origin (or Referer) names another site is refused whatever its token."""
    origin = request.headers.get("origin") or ""
    if not origin or origin == "null":
        referer = request.headers.get("referer") or ""
        if not referer:
            return origin != "null"
        origin = "/".join(referer.split("/", 3)[:3])
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def check_csrf(request: Request, ws: WebSession, submitted: str) -> None:
    if not same_origin(request) or not same_token(ws.csrf, submitted):
        raise Forbidden("表单已失效或来源不正确（CSRF 校验未通过），请刷新页面后重试")


def api_principal(request: Request, session: Session) -> Principal | None:
    """The principal of an API request's bearer token (None when missing, malformed, unknown,
    expired or revoked, or when its user is deactivated)."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    user = token_user(session, token.strip())
    return principal_of(session, user) if user is not None else None


def random_secret() -> str:
    return secrets.token_urlsafe(32)
