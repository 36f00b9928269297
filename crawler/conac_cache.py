"""Be kind to CONAC: its answers kept across scans, shared by the workers of a distributed scan.

Every site's badge script and badge image come from ``dcs.conac.cn`` and its verification page from
``bszs.conac.cn`` (``Rules.conac_script_hosts`` / ``conac_verify_hosts``), every night. The scan's
fetcher is wrapped (:func:`wrap`) by :class:`ConacCachingFetcher`, which for GETs to those hosts:

* within ``conac_cache_max_age_h`` of CONAC's last confirmation, answers from the cache: **no
  request**;
* after it, asks with ``If-None-Match`` / ``If-Modified-Since`` (the validators CONAC sent): a 304
  refreshes the entry's validation time and the kept body is used, a 200 replaces it;
* keeps only answers that are the resource: 2xx, a non-empty body, and a script that names a badge
  image, a verification page that names a unit type (and that :func:`checks.content.assess` finds no
  challenge, block or notice in), an image with an image signature. An error, a WAF page or anything
  else is passed on as it came and never kept, so one bad night does not poison the next ones;
* during a subject's retry (:data:`crawler.flow.REVALIDATE`, set by ``Flow.run`` for attempts after the
  first, i.e. when a failure is being confirmed) asks CONAC even within the max age: a failure is
  never confirmed on a kept copy alone.

An answer from the cache is the same :class:`RawResponse` (status, headers, body) as the one kept, so
the checks reach the same verdict; it carries ``cache`` (``state`` ``fresh`` or ``revalidated``,
``fetched_at``, ``validated_at``, the validators), which ``Flow._fetch_need`` writes into the capture's
sub-resource record: the evidence says where the body came from and when CONAC last confirmed it, and
its ``blob`` is the kept body, so ``recheck`` rebuilds the same verdict.

Storage: rows in ``conac_cache`` (:mod:`storage.conac_cache`; upserts, so workers writing one URL at
once never fail), bodies in the evidence store. Look-ups and writes run in a small thread pool of
their own, never on the event loop; a bounded in-memory memo (recent entries with their bodies)
answers repeated URLs (the badge images every site shows, retries) without the database, and
concurrent requests for one URL share one fetch. The database being unavailable only costs the cache:
the request goes to CONAC as without it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from checks.content import assess, is_html
from checks.page import Document
from checks.rules import DEFAULT_RULES, Rules
from crawler.records import REVALIDATE, Fetcher, RawResponse
from storage.conac_cache import CachedResource, ConacCacheStore
from storage.config import Config
from storage.db import make_engine
from storage.evidence import BlobNotFoundError, EvidenceStore

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A badge script names the image it shows (red/blue, *_error when CONAC's own check failed).
_SCRIPT_IMAGE = re.compile(r"(?:red|blue)(?:_error)?\.(?:png|gif|jpg)", re.I)
#: A verification page names the unit's type.
_UNIT_TYPE = re.compile(r"党政机关|事业单位")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"\xff\xd8\xff")
#: Headers not kept with a body (about the connection or the client, not the resource).
_NOT_KEPT = frozenset(
    {"set-cookie", "date", "connection", "keep-alive", "transfer-encoding", "content-length", "age"}
)
#: Recent entries (with their bodies) kept in memory per process: a few MB.
MEMO_SIZE = 2048


def _header(headers: Mapping[str, str], name: str) -> str:
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), "")


def refusal(url: str, resp: RawResponse, rules: Rules = DEFAULT_RULES) -> str:
    """Why ``resp`` (the answer to a GET of ``url`` on a CONAC host) must not be kept; "" when it may.

    Only the resource itself is kept: a 2xx with a body that reads as a badge script (it names a badge
    image), a verification page (it names a unit type, and it is no challenge, block or notice page)
    or an image (an image signature)."""
    if not 200 <= resp.status < 300 or resp.status in (204, 206):
        return f"status {resp.status}"
    body = resp.body
    if not body.strip():
        return "empty"
    if body.startswith(_IMAGE_MAGIC):
        return ""
    host = (urlsplit(url).hostname or "").lower()
    ctype = _header(resp.headers, "content-type")
    doc = Document.from_bytes(url, body, ctype)
    if host in rules.conac_verify_hosts:
        if not is_html(ctype, body[:1024]):
            return "not a page"
        signal = assess(doc, resp.status, resp.headers, len(body))
        if signal is not None:
            return signal.reason
        return "" if _UNIT_TYPE.search(doc.text) else "no unit type"
    if is_html(ctype, body[:1024]):
        return "a page where a script or image was asked for"
    return "" if _SCRIPT_IMAGE.search(doc.text) else "no badge image named"


class ConacCachingFetcher:
    """A :class:`crawler.flow.Fetcher` that answers CONAC's resources from the cache (see the module)."""

    def __init__(
        self,
        inner: Fetcher,
        store: ConacCacheStore,
        blobs: EvidenceStore,
        *,
        max_age: timedelta,
        rules: Rules = DEFAULT_RULES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        threads: int = 4,
    ) -> None:
        self.inner = inner
        self.store = store
        self.blobs = blobs
        self.max_age = max_age
        self.rules = rules
        self.hosts = frozenset(h.lower() for h in (*rules.conac_script_hosts, *rules.conac_verify_hosts))
        self.clock = clock
        self.memo: OrderedDict[str, tuple[CachedResource, bytes]] = OrderedDict()
        self.inflight: dict[tuple[str, int, bool], asyncio.Future[RawResponse]] = {}
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="conac-cache")
        self.stats: Counter[str] = Counter()

    # --- the Fetcher protocol -------------------------------------------------------------------

    async def get(
        self, url: str, *, maxsize: int, priority: int = 0, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            host = ""
        if headers or host not in self.hosts:
            return await self.inner.get(url, maxsize=maxsize, priority=priority, headers=headers)
        revalidate = REVALIDATE.get()
        key = (url, maxsize, revalidate)
        shared = self.inflight.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._get(url, maxsize, priority, revalidate))
            self.inflight[key] = shared
            shared.add_done_callback(lambda fut: self._settled(key, fut))
        else:
            self.stats["shared"] += 1
        return await asyncio.shield(shared)

    def report(self, ip: str, host: str, reason: str, status: int, body: bytes) -> None:
        """Passed on: what a page said of its server (the politeness layer's push-back)."""
        report = getattr(self.inner, "report", None)
        if report is not None:
            report(ip, host, reason, status, body)

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # --- the cache ------------------------------------------------------------------------------

    def _settled(self, key: tuple[str, int, bool], fut: asyncio.Future[RawResponse]) -> None:
        if self.inflight.get(key) is fut:
            del self.inflight[key]
        if not fut.cancelled():
            fut.exception()  # retrieved: every waiter may have gone

    async def _get(self, url: str, maxsize: int, priority: int, revalidate: bool) -> RawResponse:
        kept = await self._lookup(url)
        now = self.clock()
        conditional: dict[str, str] = {}
        if kept is not None:
            entry, body = kept
            if len(body) > maxsize:
                kept = None
            elif not revalidate and now - entry.validated_at < self.max_age:
                self.stats["fresh"] += 1
                return self._answer(entry, body, "fresh")
            else:
                conditional = entry.conditional_headers()
        resp = await self.inner.get(url, maxsize=maxsize, priority=priority, headers=conditional or None)
        if resp.status == 304 and kept is not None and conditional:
            entry, body = kept
            entry = replace(
                entry,
                validated_at=now,
                etag=_header(resp.headers, "etag") or entry.etag,
                last_modified=_header(resp.headers, "last-modified") or entry.last_modified,
            )
            self._remember(entry, body)
            await self._run(self.store.revalidated, entry)
            self.stats["revalidated"] += 1
            return self._answer(entry, body, "revalidated")
        self.stats["fetched"] += 1
        why = refusal(url, resp, self.rules)
        if why:
            self.stats["refused"] += 1
            log.info("CONAC answer for %s not kept: %s", url, why)
            return resp
        entry = CachedResource(
            url=url,
            status=resp.status,
            headers={k: v for k, v in resp.headers.items() if k.lower() not in _NOT_KEPT},
            body_blob=self.blobs.put(resp.body),
            body_size=len(resp.body),
            fetched_at=now,
            validated_at=now,
            etag=_header(resp.headers, "etag"),
            last_modified=_header(resp.headers, "last-modified"),
        )
        self._remember(entry, resp.body)
        await self._run(self.store.put, entry)
        self.stats["stored"] += 1
        return resp

    def _answer(self, entry: CachedResource, body: bytes, state: str) -> RawResponse:
        record = {
            "state": state,  # fresh: no request; revalidated: CONAC answered 304 just now
            "fetched_at": entry.fetched_at.isoformat(),
            "validated_at": entry.validated_at.isoformat(),
            "max_age_h": round(self.max_age.total_seconds() / 3600, 3),
        }
        if entry.etag:
            record["etag"] = entry.etag
        if entry.last_modified:
            record["last_modified"] = entry.last_modified
        return RawResponse(entry.url, entry.status, dict(entry.headers), body, cache=record)

    def _remember(self, entry: CachedResource, body: bytes) -> None:
        self.memo[entry.url] = (entry, body)
        self.memo.move_to_end(entry.url)
        while len(self.memo) > MEMO_SIZE:
            self.memo.popitem(last=False)

    async def _lookup(self, url: str) -> tuple[CachedResource, bytes] | None:
        kept = self.memo.get(url)
        if kept is not None:
            self.memo.move_to_end(url)
            return kept
        found = await self._run(self._load, url)
        if found is not None:
            self._remember(*found)
        return found

    def _load(self, url: str) -> tuple[CachedResource, bytes] | None:
        """The row and its body (in the pool's thread); None when either is missing."""
        entry = self.store.get(url)
        if entry is None:
            return None
        try:
            return entry, self.blobs.get(entry.body_blob)
        except (BlobNotFoundError, ValueError, OSError):
            return None  # the body is gone (another evidence directory, retention): ask CONAC

    async def _run(self, fn: Callable[[Any], T], arg: Any) -> T | None:
        """``fn(arg)`` in the cache's threads; a database error costs the cache, never the subject."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, arg)
        except Exception as exc:
            self.stats["errors"] += 1
            if self.stats["errors"] <= 3:
                log.warning("CONAC cache unavailable (%s: %s); asking CONAC", type(exc).__name__, exc)
            return None


def wrap(fetcher: Fetcher, config: Config, rules: Rules = DEFAULT_RULES) -> Fetcher:
    """``fetcher`` behind the CONAC cache of ``config``'s database and evidence store (as it is when
    ``conac_cache`` is off)."""
    if not config.conac_cache:
        return fetcher

    return ConacCachingFetcher(
        fetcher,
        ConacCacheStore(make_engine(config.database_url)),
        EvidenceStore(config.evidence_dir),
        max_age=timedelta(hours=max(0.0, config.conac_cache_max_age_h)),
        rules=rules,
    )
