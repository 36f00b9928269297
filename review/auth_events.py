"""The authentication audit trail: one append-only ``auth_event`` row per login, account or token event.

Kinds (:data:`KINDS`): ``login_success``, ``login_failure``, ``logout``, ``user_created``,
``role_changed``, ``password_changed``, ``user_deactivated``, ``user_activated``, ``token_issued``,
``token_revoked``, ``sessions_ended``, ``login_unlocked`` (an administrator lifted a login lockout).
``user`` is the account the event is about (for a failed login the name as typed), ``actor`` who caused
it (a user name, or ``cli:<os user>`` for the command line), ``client`` the client address (the real one
behind a trusted proxy; ``local`` for the command line); control characters in them are escaped
(``review.security.log_safe``).
The table refuses UPDATE and DELETE (migration 0007); ``badgewatch audit`` reads it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from review.security import log_safe
from storage.models import AuthEvent

KINDS = frozenset(
    {
        "login_success",
        "login_failure",
        "logout",
        "user_created",
        "role_changed",
        "password_changed",
        "user_deactivated",
        "user_activated",
        "token_issued",
        "token_revoked",
        "sessions_ended",
        "login_unlocked",
    }
)


def record_auth_event(
    session: Session,
    kind: str,
    user: str,
    actor: str,
    client: str,
    detail: dict[str, Any] | None = None,
) -> AuthEvent:
    """Add one event to ``session`` (committed with the change it records, or by the caller)."""
    if kind not in KINDS:
        raise ValueError(f"unknown auth event kind {kind!r}")
    event = AuthEvent(
        kind=kind,
        user_name=log_safe(user, 100),
        actor=log_safe(actor, 200),
        client=log_safe(client, 100),
        detail=dict(detail or {}),
    )
    session.add(event)
    return event
