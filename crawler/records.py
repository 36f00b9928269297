"""The records a subject's procedure (:mod:`crawler.flow`) passes around: a fetcher's answer
(:class:`RawResponse`, the :class:`Fetcher` protocol every fetcher implements), a followed request
(:class:`Fetched`, :class:`Visit`), and what a subject leaves for the store (:class:`CaptureRecord`,
:class:`SubjectResult`). Apart from the procedure so that fetchers, the pipeline and ``inspect`` can use
them without it."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from checks.http import FetchError, Hop
from checks.page import Page
from checks.verdict import Verdict
from crawler.errors import is_too_large


@dataclass
class RawResponse:
    """One HTTP response as the fetcher got it."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    certificate: Any = None
    ip: str = ""
    # TLS: the certificates the server sent after its leaf (None: not known) and the protocol version.
    peer_chain: tuple[Any, ...] | None = None
    tls_version: str = ""
    # Set when the body came from the CONAC cache, not from this request (crawler/conac_cache.py):
    # what the evidence records (validated when, revalidated or not).
    cache: dict[str, Any] | None = None


class Fetcher(Protocol):
    async def get(
        self, url: str, *, maxsize: int, priority: int = 0, headers: Mapping[str, str] | None = None
    ) -> RawResponse: ...


# True while a subject's retry runs: its CONAC answers are revalidated with the server even within the
# cache's max age, so a failure is always confirmed with a fresh exchange (crawler/conac_cache.py).
REVALIDATE: ContextVar[bool] = ContextVar("badgewatch_revalidate", default=False)


@dataclass
class Fetched:
    """A URL fetched with its redirects followed."""

    url: str
    chain: list[Hop]
    response: RawResponse | None = None
    error: FetchError | None = None
    error_detail: str = ""
    elapsed: float = 0.0

    @property
    def final_url(self) -> str:
        return self.response.url if self.response else (self.chain[-1].url if self.chain else self.url)

    @property
    def too_large(self) -> bool:
        return self.error is FetchError.OTHER and is_too_large(self.error_detail)


@dataclass
class Visit:
    """The page a visitor ends on: the final fetch (its chain from the first URL, landing hops included),
    its page, and the landing stubs passed on the way (``(url, landing kind, response)``)."""

    fetched: Fetched
    page: Page | None
    stubs: list[tuple[str, str, RawResponse]] = field(default_factory=list)


@dataclass
class CaptureRecord:
    """One visit's evidence as stored: blob keys and JSON records (a ``storage.models.Capture`` row)."""

    url: str
    final_url: str = ""
    status: int | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration: float = 0.0
    error: str = ""
    http_chain: list[dict[str, Any]] = field(default_factory=list)
    dns: dict[str, Any] = field(default_factory=dict)
    body_blob: str = ""
    headers_blob: str = ""
    rendered_blob: str = ""
    screenshot_blob: str = ""
    subresources: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1


@dataclass
class SubjectResult:
    """The outcome of one attempt at a subject: verdicts and the capture they rest on."""

    subject: str
    website_id: int | None
    domain_id: int | None
    verdicts: list[Verdict]
    capture: CaptureRecord  # empty (no URL) for a unit-level result, decided from the registry alone
    requests: int = 0
    unit_id: int | None = None


def headers_to_dict(raw: Any) -> dict[str, str]:
    """Scrapy ``Headers`` (bytes, multi-valued) → plain ``{name: value}``."""
    out: dict[str, str] = {}
    for key, values in raw.items():
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        vals = values if isinstance(values, list) else [values]
        out[name] = ", ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in vals)
    return out


def _header(headers: Mapping[str, str], name: str) -> str:
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), "")
