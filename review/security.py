"""Security primitives of the console: password hashing, signed tokens, CSRF, login rate limit.

Passwords are hashed with Argon2id (memory-hard). Session cookies and API tokens are HMAC-SHA256
signed with the console's secret key; both carry a fingerprint of the user's password hash, so
changing a password (or deactivating the account) ends every session and token at once, without a
table of sessions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # Argon2id, 64 MiB, 3 passes: the library's RFC 9106 low-memory profile


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (refuses passwords shorter than 8 characters)."""
    if len(password) < 8:
        raise ValueError("密码至少需要8个字符")
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the Argon2 hash ``stored`` (False for an empty or broken hash)."""
    if not stored:
        return False
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A dummy hash verified when the user does not exist, so the answer takes as long either way.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def burn_time(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def fingerprint(password_hash: str) -> str:
    """A short digest of a password hash: changes whenever the password does."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 signing of small JSON payloads, one key per purpose (salt)."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("secret_key 太短（至少16个字符）")
        self._secret = secret.encode("utf-8")

    def _mac(self, salt: str, body: str) -> str:
        key = hmac.new(self._secret, salt.encode("utf-8"), hashlib.sha256).digest()
        return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())

    def sign(self, salt: str, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        return f"{body}.{self._mac(salt, body)}"

    def unsign(self, salt: str, token: str, max_age: float | None = None) -> dict[str, Any] | None:
        """The payload of a token signed for ``salt``, or None when forged, malformed or too old."""
        body, sep, mac = token.rpartition(".")
        if not sep or not body or not hmac.compare_digest(mac, self._mac(salt, body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(payload, dict):
            return None
        if max_age is not None:
            issued = payload.get("iat")
            if not isinstance(issued, (int, float)) or time.time() - issued > max_age:
                return None
        return payload


API_TOKEN_PREFIX = "bw1."


def make_api_token(signer: Signer, user_id: int, password_hash: str) -> str:
    """A bearer token for systems acting as this user (revoked by a password change)."""
    payload = {
        "uid": user_id,
        "fp": fingerprint(password_hash),
        "iat": int(time.time()),
        "n": secrets.token_hex(4),
    }
    return API_TOKEN_PREFIX + signer.sign("api-token", payload)


def read_api_token(signer: Signer, token: str) -> dict[str, Any] | None:
    if not token.startswith(API_TOKEN_PREFIX):
        return None
    return signer.unsign("api-token", token[len(API_TOKEN_PREFIX) :])


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass
class RateLimiter:
    """Failed logins per key within a sliding window (thread-safe, in memory).

    Keys are ``ip|name`` and ``ip``: one address guessing one account is stopped after
    ``per_user`` failures, and one address guessing many accounts after ``per_ip``.
    """

    per_user: int = 5
    per_ip: int = 20
    window_s: float = 900.0

    def __post_init__(self) -> None:
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def blocked(self, ip: str, name: str) -> float:
        """Seconds until this address may try this account again (0 when it may now)."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in ((f"{ip}|{name}", self.per_user), (ip, self.per_ip)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(self.window_s - (now - q[0]))
            return max(waits, default=0.0)

    def failed(self, ip: str, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"{ip}|{name}", ip):
                self._recent(key, now).append(now)

    def succeeded(self, ip: str, name: str) -> None:
        with self._lock:
            self._fails.pop(f"{ip}|{name}", None)
