"""Security primitives of the console: password hashing and policy, secrets, CSRF, login throttling.

Passwords are hashed with Argon2id (memory-hard, 64 MiB a check); at most ``password_checks_max``
checks run at once (:data:`HASH_GATE`), so a burst of logins cannot exhaust the server's memory.
Sessions and API tokens are random secrets kept on the server (``review.accounts``); only the login
form's pre-session CSRF token is signed (:class:`Signer`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # Argon2id, 64 MiB, 3 passes: the library's RFC 9106 low-memory profile
MIN_PASSWORD = 8
COMMON_PASSWORDS_FILE = Path(__file__).parent / "common_passwords.txt"


class Busy(RuntimeError):
    """Too many password checks are waiting: the server is overloaded (answered with 503)."""


class HashGate:
    """At most ``limit`` Argon2 computations at once in this process; the others wait (up to
    ``wait_s``, then :class:`Busy`). ``peak`` is the most that ever ran together (for tests and logs)."""

    def __init__(self, limit: int = 2, wait_s: float = 30.0) -> None:
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self.resize(limit)

    def resize(self, limit: int) -> None:
        """Set the limit (when the console starts; nothing may be running through the gate)."""
        with self._lock:
            if getattr(self, "limit", None) == max(1, limit):
                return
            if getattr(self, "active", 0):
                raise RuntimeError("the password gate is resized while checks run")
            self.limit = max(1, limit)
            self._slots = threading.BoundedSemaphore(self.limit)
            self.active = 0
            self.peak = 0

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.active

    def __enter__(self) -> HashGate:
        if not self._slots.acquire(timeout=self.wait_s):
            raise Busy("too many password checks waiting")
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.active -= 1
        self._slots.release()


# One gate per process: the memory it protects is the process's.
HASH_GATE = HashGate()


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (refuses passwords shorter than 8 characters)."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"密码至少需要{MIN_PASSWORD}个字符")
    with HASH_GATE:
        return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the Argon2 hash ``stored`` (False for an empty or broken hash)."""
    if not stored:
        return False
    with HASH_GATE:
        try:
            return _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def needs_rehash(stored: str) -> bool:
    """Whether a (verified) hash was made with weaker parameters than today's: upgraded on login."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    # Made on first use, not at import: every badgewatch command imports this module.
    return _HASHER.hash(secrets.token_urlsafe(16))


def burn_time(password: str) -> None:
    """Verify against a dummy hash: an unknown user name costs as long as a wrong password."""
    verify_password(_dummy_hash(), password)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of passwords guessed first (lower case; ``common_passwords.txt``)."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip().lower() for x in lines if x.strip() and not x.startswith("#"))


def password_problem(password: str, user_name: str = "") -> str | None:
    """Why ``password`` may not be used (Chinese, for the person choosing it), or None."""
    if len(password) < MIN_PASSWORD:
        return f"密码至少需要{MIN_PASSWORD}个字符"
    if len(password) > 1000:
        return "密码太长（最多1000个字符）"
    low = password.lower()
    if low in common_passwords() or len(set(low)) <= 2:
        return "这个密码太常见，很容易被猜中，请换一个"
    name = user_name.strip().lower()
    if len(name) >= 3 and name in low:
        return "密码不能包含用户名"
    return None


def new_secret() -> str:
    """A random secret for a session cookie or an API token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    """What the database keeps of a secret: its SHA-256 (a stolen table yields no usable secret)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


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
        if not token.isascii():  # a cookie is read as latin-1: anything else is not ours
            return None
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


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def same_token(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return hmac.compare_digest(
        str(a).encode("utf-8", "surrogateescape"), str(b).encode("utf-8", "surrogateescape")
    )


def log_safe(text: str, limit: int = 100) -> str:
    """``text`` for a log line or the audit trail: control and separator characters escaped (a user
    name cannot start a forged line, and PostgreSQL gets no NUL), at most ``limit`` characters. Chinese
    stays readable."""
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def address_group(address: str) -> str:
    """The unit of per-address throttling: an IPv4 address, an IPv6 /64 (one subscriber's network;
    an attacker has 2^64 addresses in it), an IPv4-mapped IPv6 address as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of :meth:`LoginThrottle.admit`: ``wait`` > 0 means refused for that many seconds."""

    wait: float
    keys: tuple[tuple[str, ...], ...] = ()
    at: float = 0.0

    @property
    def admitted(self) -> bool:
        return self.wait <= 0


class LoginThrottle:
    """Login attempts within a sliding window, counted *before* the password is checked.

    Three counters: (address group, account) up to ``per_pair``, address group over all accounts up to
    ``per_address``, account over all addresses up to ``per_account``. :meth:`admit` checks and records
    an attempt in one step under a lock, so of any number of concurrent guesses at most the limit are
    ever checked. A refused attempt records nothing and creates no entry; at most ``max_keys``
    counters are kept (the least recently used go first), so memory stays bounded whatever is sent.
    """

    def __init__(
        self,
        per_pair: int = 5,
        per_address: int = 20,
        per_account: int = 30,
        window_s: float = 900.0,
        max_keys: int = 20_000,
    ) -> None:
        self.limits = {"pair": per_pair, "address": per_address, "account": per_account}
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: OrderedDict[tuple[str, ...], list[float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(address: str, name: str) -> tuple[tuple[str, ...], ...]:
        group, account = address_group(address), name.strip().casefold()[:100]
        return (("pair", group, account), ("address", group), ("account", account))

    def _recent(self, key: tuple[str, ...], now: float) -> list[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        cut = now - self.window_s
        while hits and hits[0] <= cut:
            hits.pop(0)
        if not hits:
            del self._hits[key]
            return None
        return hits

    def admit(self, address: str, name: str) -> Admission:
        """Check and count one attempt: admitted (then check the password) or refused with a wait."""
        now = time.monotonic()
        keys = self._keys(address, name)
        with self._lock:
            waits = []
            for key in keys:
                hits = self._recent(key, now)
                if hits is not None and len(hits) >= self.limits[key[0]]:
                    waits.append(self.window_s - (now - hits[0]))
            if waits:
                return Admission(max(max(waits), 0.001))
            for key in keys:
                self._hits.setdefault(key, []).append(now)
                self._hits.move_to_end(key)
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return Admission(0.0, keys, now)

    def succeeded(self, admission: Admission) -> None:
        """The admitted attempt was the right password: it was no guess. The pair's failures are
        forgotten, and the attempt is taken back from the address and account counters (an office's
        shared address may log many people in)."""
        with self._lock:
            for key in admission.keys:
                hits = self._hits.get(key)
                if hits is None:
                    continue
                if key[0] == "pair":
                    del self._hits[key]
                elif admission.at in hits:
                    hits.remove(admission.at)
                    if not hits:
                        del self._hits[key]

    def forget_account(self, name: str) -> int:
        """Drop every counter of this account (an administrator lifts a lockout); returns how many."""
        account = name.strip().casefold()[:100]
        with self._lock:
            keys = [k for k in self._hits if k[-1] == account and k[0] in ("pair", "account")]
            for k in keys:
                del self._hits[k]
            return len(keys)

    def count(self, address: str, name: str) -> int:
        """Attempts of this address group at this account within the window."""
        with self._lock:
            hits = self._recent(self._keys(address, name)[0], time.monotonic())
            return len(hits) if hits else 0

    def __len__(self) -> int:
        return len(self._hits)
