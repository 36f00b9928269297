"""Console accounts and what each may see: roles, office scopes, sessions, API tokens, revocation.

Roles (``storage.models.UserRole``): *office* sees and acts on its own office and every office below
it; *center* (the domain center) sees everything and decides at the second level; *admin* manages
accounts and nothing else; *submitter* (the portal through which units submit annual reports) may
submit reports for the units of its office subtree (every office without one) and do nothing else.

Sessions (:class:`~storage.models.AuthSession`) and API tokens (:class:`~storage.models.ApiToken`) are
rows: the browser or the calling system holds a random secret, the database its SHA-256. A password
change, a role change or a deactivation ends every session and revokes every token of the user in the
same transaction; every change writes an ``auth_event`` (``review.auth_events``).
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from checks.errors import InputError
from review.auth_events import record_auth_event
from review.security import hash_password, new_csrf_token, new_secret, password_problem, secret_digest
from storage.models import ApiToken, AuthSession, Office, User, UserRole
from storage.types import utcnow

TOKEN_PREFIX = "bw2."
MAX_TOKEN_DAYS = 366
# How long an ended or expired session row is kept (the admin page counts live ones only).
SESSION_KEEP = dt.timedelta(days=30)
# The largest id a database integer column holds (PostgreSQL INTEGER): anything above cannot exist.
MAX_ID = 2**31 - 1


class AccountError(InputError, ValueError):
    """An account cannot be created or used (says which and why)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user as the console needs it: who, which role, which offices."""

    user_id: int
    name: str
    role: UserRole
    office_code: str | None
    # Office codes this user may see; None means every office (the domain center).
    offices: frozenset[str] | None

    @property
    def is_center(self) -> bool:
        return self.role is UserRole.CENTER

    @property
    def is_office(self) -> bool:
        return self.role is UserRole.OFFICE

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN

    @property
    def is_submitter(self) -> bool:
        return self.role is UserRole.SUBMITTER

    def may_submit_for(self, code: str | None) -> bool:
        """Whether this user may submit an annual report for a unit of office ``code``."""
        if self.role not in (UserRole.OFFICE, UserRole.CENTER, UserRole.SUBMITTER) or code is None:
            return False
        return self.offices is None or code in self.offices

    @property
    def reviews(self) -> bool:
        """Whether this user may see registry, scans and reports at all (admins may not)."""
        return self.role in (UserRole.OFFICE, UserRole.CENTER)

    def sees_office(self, code: str | None) -> bool:
        if not self.reviews or code is None:
            return False
        return self.offices is None or code in self.offices

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


ROLE_LABELS = {
    UserRole.OFFICE: "编办审核员",
    UserRole.CENTER: "域名中心审核员",
    UserRole.ADMIN: "系统管理员",
    UserRole.SUBMITTER: "报告报送系统",
}


def office_subtree(session: Session, code: str) -> frozenset[str]:
    """``code`` and every office below it (cycles in bad data cannot loop forever)."""
    children: dict[str, list[str]] = {}
    for c, parent in session.execute(sa.select(Office.code, Office.parent_code)):
        if parent is not None:
            children.setdefault(parent, []).append(c)
    out: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        if c in out:
            continue
        out.add(c)
        stack.extend(children.get(c, ()))
    return frozenset(out)


def principal_of(session: Session, user: User) -> Principal:
    role = UserRole(user.role)
    offices: frozenset[str] | None
    if role is UserRole.CENTER or (role is UserRole.SUBMITTER and not user.office_code):
        offices = None
    elif role in (UserRole.OFFICE, UserRole.SUBMITTER) and user.office_code:
        offices = office_subtree(session, user.office_code)
    else:
        offices = frozenset()
    return Principal(user.id, user.name, role, user.office_code, offices)


def _role_and_office(session: Session, name: str, role: str, office_code: str | None) -> UserRole:
    try:
        r = UserRole(role)
    except ValueError:
        raise AccountError(f"未知的角色: {role}（可选 office、center、admin、submitter）") from None
    if r is UserRole.OFFICE and not office_code:
        raise AccountError(f"编办审核员 {name} 必须指定所属编办（--office 编办代码）")
    if r in (UserRole.OFFICE, UserRole.SUBMITTER) and office_code:
        if session.get(Office, office_code) is None:
            raise AccountError(f"编办代码 {office_code} 不在登记信息中")
    elif office_code:
        raise AccountError(f"{ROLE_LABELS[r]}不属于某个编办，不能指定 --office")
    return r


def _new_hash(name: str, password: str) -> str:
    problem = password_problem(password, name)
    if problem:
        raise AccountError(problem)
    return hash_password(password)


def create_user(
    session: Session,
    name: str,
    role: str,
    password: str,
    office_code: str | None = None,
    email: str = "",
    *,
    actor: str = "",
    client: str = "",
) -> User:
    """Add an account (not committed). An office account needs an existing office code; the password
    must pass :func:`review.security.password_problem`."""
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise AccountError("用户名不能为空，不超过100个字符，且不能含控制字符")
    r = _role_and_office(session, name, role, office_code)
    if find_user(session, name) is not None:
        raise AccountError(f"用户 {name} 已存在")
    user = User(
        name=name,
        role=r.value,
        office_code=office_code if r in (UserRole.OFFICE, UserRole.SUBMITTER) else None,
        password_hash=_new_hash(name, password),
        email=email,
        active=True,
    )
    session.add(user)
    session.flush()
    record_auth_event(
        session, "user_created", name, actor, client, {"role": r.value, "office_code": user.office_code}
    )
    return user


def find_user(session: Session, name: str) -> User | None:
    return session.scalars(sa.select(User).where(User.name == name.strip())).first()


def find_active_user(session: Session, name: str) -> User | None:
    user = find_user(session, name)
    return user if user is not None and user.active else None


def end_everything(session: Session, user: User, reason: str, actor: str, client: str) -> tuple[int, int]:
    """End every live session and revoke every live token of ``user`` (not committed); returns how
    many of each."""
    now = utcnow()
    ended = session.execute(
        sa.update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason[:40])
    )
    revoked = session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=actor[:200])
    )
    sessions, tokens = int(getattr(ended, "rowcount", 0)), int(getattr(revoked, "rowcount", 0))
    if sessions or tokens:
        record_auth_event(
            session,
            "sessions_ended",
            user.name,
            actor,
            client,
            {"reason": reason, "sessions": sessions, "tokens": tokens},
        )
    return sessions, tokens


def change_password(session: Session, user: User, password: str, *, actor: str, client: str) -> None:
    """Set a new password; every session and token of the user ends (not committed)."""
    user.password_hash = _new_hash(user.name, password)
    record_auth_event(session, "password_changed", user.name, actor, client, {})
    end_everything(session, user, "password_changed", actor, client)


def set_active(session: Session, user: User, active: bool, *, actor: str, client: str) -> None:
    """Deactivate (every session and token ends) or reactivate an account (not committed)."""
    if user.active == active:
        return
    user.active = active
    record_auth_event(
        session, "user_activated" if active else "user_deactivated", user.name, actor, client, {}
    )
    if not active:
        end_everything(session, user, "deactivated", actor, client)


def change_role(
    session: Session, user: User, role: str, office_code: str | None, *, actor: str, client: str
) -> None:
    """Give the account another role or office; its sessions and tokens end (not committed)."""
    r = _role_and_office(session, user.name, role, office_code)
    office = office_code if r in (UserRole.OFFICE, UserRole.SUBMITTER) else None
    before = {"role": user.role, "office_code": user.office_code}
    after = {"role": r.value, "office_code": office}
    if before == after:
        return
    user.role, user.office_code = r.value, office
    record_auth_event(session, "role_changed", user.name, actor, client, {"from": before, "to": after})
    end_everything(session, user, "role_changed", actor, client)


# --- sessions ---------------------------------------------------------------------------------------


def start_session(session: Session, user: User, client: str, hours: float) -> tuple[str, str]:
    """A new console session (not committed): the cookie's secret and the session's CSRF token."""
    secret = new_secret()
    csrf = new_csrf_token()
    now = utcnow()
    # Sessions long over say nothing the auth_event trail does not: the user's are pruned on login.
    session.execute(
        sa.delete(AuthSession).where(
            AuthSession.user_id == user.id, AuthSession.expires_at < now - SESSION_KEEP
        )
    )
    session.add(
        AuthSession(
            id=secret_digest(secret),
            user_id=user.id,
            csrf=csrf,
            client=client[:100],
            created_at=now,
            expires_at=now + dt.timedelta(hours=hours),
        )
    )
    return secret, csrf


def live_session(session: Session, secret: str) -> tuple[AuthSession, User] | None:
    """The session a cookie's secret opens, with its user, or None (unknown, ended, expired, or the
    user deactivated)."""
    if not secret or len(secret) > 100 or not secret.isascii():
        return None
    row = session.get(AuthSession, secret_digest(secret))
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return row, user


def end_session(session: Session, row: AuthSession, reason: str) -> None:
    if row.ended_at is None:
        row.ended_at = utcnow()
        row.end_reason = reason[:40]


# --- API tokens -------------------------------------------------------------------------------------


def issue_token(
    session: Session, user: User, *, days: int, label: str = "", actor: str, client: str
) -> tuple[ApiToken, str]:
    """A new API token for ``user`` valid ``days`` days (not committed): the row and the token text,
    shown once and never stored."""
    if not user.active:
        raise AccountError(f"用户 {user.name} 已停用，不能生成令牌")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise AccountError(f"令牌有效期应为 1 至 {MAX_TOKEN_DAYS} 天")
    secret = new_secret()
    now = utcnow()
    row = ApiToken(
        user_id=user.id,
        label=label.strip()[:100],
        secret_hash=secret_digest(secret),
        created_by=actor[:200],
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    record_auth_event(
        session,
        "token_issued",
        user.name,
        actor,
        client,
        {"token_id": row.id, "label": row.label, "expires_at": row.expires_at.isoformat()},
    )
    return row, f"{TOKEN_PREFIX}{row.id}.{secret}"


def token_user(session: Session, token: str) -> User | None:
    """The active user a live token belongs to, or None (malformed, unknown, expired, revoked)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200 or not token.isascii():
        return None
    ident, sep, secret = token[len(TOKEN_PREFIX) :].partition(".")
    if not sep or not ident.isdigit() or not secret or not 1 <= int(ident) <= MAX_ID:
        return None
    row = session.get(ApiToken, int(ident))
    if row is None or not hmac.compare_digest(row.secret_hash, secret_digest(secret)):
        return None
    if row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc()))
    )


def revoke_token(session: Session, user: User, token_id: int, *, actor: str, client: str) -> ApiToken:
    """Revoke one token of ``user`` (not committed)."""
    row = session.get(ApiToken, token_id) if 1 <= token_id <= MAX_ID else None
    if row is None or row.user_id != user.id:
        raise AccountError(f"用户 {user.name} 没有编号为 {token_id} 的令牌")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_by = actor[:200]
        record_auth_event(session, "token_revoked", user.name, actor, client, {"token_id": row.id})
    return row


def revoke_tokens(session: Session, user: User, *, actor: str, client: str) -> int:
    """Revoke every live token of ``user`` (not committed); returns how many."""
    live = [t for t in tokens_of(session, user) if t.revoked_at is None]
    for t in live:
        revoke_token(session, user, t.id, actor=actor, client=client)
    return len(live)


def token_state(token: ApiToken) -> str:
    """有效 / 已过期 / 已吊销, for lists."""
    if token.revoked_at is not None:
        return "已吊销"
    return "已过期" if token.expires_at <= utcnow() else "有效"
