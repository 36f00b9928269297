"""The console's shared state and the request plumbing: database sessions, signed-in user, CSRF."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from review.accounts import Principal, principal_of
from review.security import RateLimiter, Signer, fingerprint, new_csrf_token, read_api_token, same_token
from storage.config import Config
from storage.evidence import EvidenceStore
from storage.models import User

log = logging.getLogger(__name__)

SESSION_COOKIE = "bw_session"
LOGIN_COOKIE = "bw_login"
SESSION_MAX_AGE = 8 * 3600
LOGIN_FORM_MAX_AGE = 3600
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


@dataclass
class Console:
    """Everything a request handler needs; one per app (``app.state.console``)."""

    cfg: Config
    engine: Engine
    store: EvidenceStore
    signer: Signer
    secure_cookies: bool = False
    limiter: RateLimiter = field(default_factory=RateLimiter)
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES_DIR)))
    max_body: int = 256 * 1024


class LoginRequired(Exception):
    """The page needs a signed-in user: answered with a redirect to the login page."""


class Forbidden(Exception):
    """The signed-in user may not do this (a page answers 403 with a message)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def console_of(request: Request) -> Console:
    c = request.app.state.console
    assert isinstance(c, Console)
    return c


def db_session(request: Request) -> Iterator[Session]:
    with Session(console_of(request).engine, expire_on_commit=False) as session:
        yield session


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


@dataclass(frozen=True, slots=True)
class WebSession:
    principal: Principal
    csrf: str


def _load_user(session: Session, uid: Any, fp: Any) -> Principal | None:
    if not isinstance(uid, int):
        return None
    user = session.get(User, uid)
    if user is None or not user.active or not same_token(fingerprint(user.password_hash), str(fp)):
        return None
    return principal_of(session, user)


def web_session(request: Request, session: Session) -> WebSession:
    """The signed-in user of a page request; :class:`LoginRequired` when there is none."""
    token = request.cookies.get(SESSION_COOKIE, "")
    payload = console_of(request).signer.unsign("session", token, SESSION_MAX_AGE) if token else None
    if payload is None:
        raise LoginRequired()
    who = _load_user(session, payload.get("uid"), payload.get("fp"))
    if who is None:
        raise LoginRequired()
    return WebSession(who, str(payload.get("csrf", "")))


def session_cookie(console: Console, who: Principal) -> str:
    return console.signer.sign(
        "session",
        {"uid": who.user_id, "fp": who.password_fp, "csrf": new_csrf_token(), "iat": int(time.time())},
    )


def login_cookie(console: Console) -> tuple[str, str]:
    """A fresh pre-login CSRF token and the signed cookie that carries it."""
    token = new_csrf_token()
    return token, console.signer.sign("login", {"csrf": token, "iat": int(time.time())})


def login_csrf_ok(request: Request, submitted: str) -> bool:
    raw = request.cookies.get(LOGIN_COOKIE, "")
    payload = console_of(request).signer.unsign("login", raw, LOGIN_FORM_MAX_AGE) if raw else None
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
    """The principal of an API request's bearer token (None when missing or invalid)."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    payload = read_api_token(console_of(request).signer, token.strip())
    if payload is None:
        return None
    return _load_user(session, payload.get("uid"), payload.get("fp"))


def random_secret() -> str:
    return secrets.token_urlsafe(32)
