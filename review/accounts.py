"""Console accounts and what each may see: roles, office scopes, authentication.

Roles (``storage.models.UserRole``): *office* sees and acts on its own office and every office below
it; *center* (the domain center) sees everything and decides at the second level; *admin* manages
accounts and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from checks.errors import InputError
from review.security import fingerprint, hash_password
from storage.models import Office, User, UserRole


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
    password_fp: str = ""

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


ROLE_LABELS = {UserRole.OFFICE: "编办审核员", UserRole.CENTER: "域名中心审核员", UserRole.ADMIN: "系统管理员"}


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
    if role is UserRole.CENTER:
        offices = None
    elif role is UserRole.OFFICE and user.office_code:
        offices = office_subtree(session, user.office_code)
    else:
        offices = frozenset()
    return Principal(user.id, user.name, role, user.office_code, offices, fingerprint(user.password_hash))


def create_user(
    session: Session, name: str, role: str, password: str, office_code: str | None = None, email: str = ""
) -> User:
    """Add an account (not committed). An office account needs an existing office code."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("用户名不能为空，且不超过100个字符")
    try:
        r = UserRole(role)
    except ValueError:
        raise AccountError(f"未知的角色: {role}（可选 office、center、admin）") from None
    if r is UserRole.OFFICE:
        if not office_code:
            raise AccountError(f"编办审核员 {name} 必须指定所属编办（--office 编办代码）")
        if session.get(Office, office_code) is None:
            raise AccountError(f"编办代码 {office_code} 不在登记信息中")
    elif office_code:
        raise AccountError(f"{ROLE_LABELS[r]}不属于某个编办，不能指定 --office")
    if session.scalars(sa.select(User).where(User.name == name)).first() is not None:
        raise AccountError(f"用户 {name} 已存在")
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    user = User(
        name=name,
        role=r.value,
        office_code=office_code if r is UserRole.OFFICE else None,
        password_hash=hashed,
        email=email,
        active=True,
    )
    session.add(user)
    session.flush()
    return user


def find_active_user(session: Session, name: str) -> User | None:
    user = session.scalars(sa.select(User).where(User.name == name)).first()
    return user if user is not None and user.active else None
