"""What the crawler does for one subject: fetch, follow, collect what the checks ask for, judge.

Independent of Scrapy: a :class:`Fetcher` does the network I/O (the spider's is Scrapy's engine, so
every request goes through the downloader, its middlewares and its per-IP slots). Redirects are
followed here, one hop at a time, so every hop is recorded and passes the address guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import urljoin

from checks.http import CertProblem, FetchError, FetchOutcome, Hop, classify_http, page_readable
from checks.page import Document, Need, NeedKind, Page
from checks.rules import Rules
from checks.verdict import Verdict
from crawler import checking
from crawler.certs import CertJudge, cert_summary, tls_summary
from crawler.errors import classify_exception, is_too_large
from crawler.jobs import DomainJob, Job, SiteJob, UnitJob
from crawler.resolver import DnsAnswer, ScanResolver
from storage.evidence import EvidenceStore

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_HOPS = 10
SUB_MAX_BYTES = 2 * 1024 * 1024


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


class Fetcher(Protocol):
    async def get(self, url: str, *, maxsize: int, priority: int = 0) -> RawResponse: ...


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


Renderer = Callable[[str, Page], Awaitable[tuple[str, bytes] | None]]


class Flow:
    """Fetch-and-judge procedures shared by the scan, ``inspect`` and the benchmarks."""

    def __init__(
        self,
        fetcher: Fetcher,
        resolver: ScanResolver,
        store: EvidenceStore | None,
        rules: Rules,
        certs: CertJudge,
        *,
        max_body: int,
        max_subresources: int,
        render_mode: str = "auto",
        renderer: Renderer | None = None,
        today: date | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.resolver = resolver
        self.store = store
        self.rules = rules
        self.certs = certs
        self.max_body = max_body
        self.max_subresources = max_subresources
        self.render_mode = render_mode
        self.renderer = renderer
        self.today = today or date.today()
        self.requests = 0
        self.renders = 0

    # --- fetching -------------------------------------------------------------------------------

    async def fetch(self, url: str, *, maxsize: int, max_hops: int = MAX_HOPS, priority: int = 0) -> Fetched:
        """GET ``url`` following redirects (each hop recorded, loops detected)."""
        t0 = time.perf_counter()
        chain: list[Hop] = []
        seen: set[str] = set()
        current = url
        for _ in range(max_hops + 1):
            seen.add(current)
            self.requests += 1
            try:
                resp = await self.fetcher.get(current, maxsize=maxsize, priority=priority)
            except Exception as exc:
                kind, detail = classify_exception(exc)
                chain.append(Hop(current, None, "", str(kind)))
                return Fetched(url, chain, None, kind, detail, time.perf_counter() - t0)
            location = _header(resp.headers, "location").strip()
            if resp.status in REDIRECT_STATUSES and location:
                nxt = urljoin(current, location)
                chain.append(Hop(current, resp.status, nxt))
                if nxt in seen:
                    return Fetched(
                        url,
                        chain,
                        None,
                        FetchError.REDIRECT_LOOP,
                        f"loop back to {nxt}",
                        time.perf_counter() - t0,
                    )
                current = nxt
                continue
            chain.append(Hop(current, resp.status))
            return Fetched(url, chain, resp, None, "", time.perf_counter() - t0)
        return Fetched(
            url,
            chain,
            None,
            FetchError.REDIRECT_LOOP,
            f"more than {max_hops} redirects",
            time.perf_counter() - t0,
        )

    def outcome_of(self, fetched: Fetched) -> FetchOutcome:
        resp = fetched.response
        if fetched.too_large:
            return FetchOutcome(
                url=fetched.url,
                final_url=fetched.final_url,
                status=None,
                chain=tuple(fetched.chain),
                truncated=True,
                body_size=self.max_body,
            )
        if resp is None:
            return FetchOutcome(
                url=fetched.url,
                final_url=fetched.final_url,
                error=fetched.error,
                error_detail=fetched.error_detail,
                chain=tuple(fetched.chain),
            )
        head = resp.body[:32768].decode("utf-8", "replace")
        problems: tuple[CertProblem, ...] = ()
        if resp.certificate is not None:
            problems = self.certs.problems(
                resp.certificate, checking.host_of(resp.url), resp.peer_chain, resp.tls_version
            )
        return FetchOutcome(
            url=fetched.url,
            final_url=resp.url,
            status=resp.status,
            chain=tuple(fetched.chain),
            headers=resp.headers,
            text_head=head,
            body_size=len(resp.body),
            cert_problems=problems,
        )

    # --- evidence -------------------------------------------------------------------------------

    def _put(self, data: bytes) -> str:
        return self.store.put(data) if self.store is not None else hashlib.sha256(data).hexdigest()

    def _capture(
        self, fetched: Fetched, started: datetime, dns: dict[str, Any], outcome: FetchOutcome | None = None
    ) -> CaptureRecord:
        resp = fetched.response
        rec = CaptureRecord(
            url=fetched.url,
            final_url=fetched.final_url,
            status=resp.status if resp else None,
            started=started,
            duration=round(fetched.elapsed, 4),
            error=(fetched.error_detail or str(fetched.error or ""))[:2000],
            http_chain=[h.to_dict() for h in fetched.chain],
            dns=dns,
        )
        if resp is not None:
            rec.body_blob = self._put(resp.body)
            meta = {"url": resp.url, "status": resp.status, "headers": resp.headers, "ip": resp.ip}
            if resp.certificate is not None:
                meta["certificate"] = cert_summary(resp.certificate)
                meta["tls"] = tls_summary(resp.peer_chain, resp.tls_version)
            if outcome is not None:
                meta["cert_problems"] = [str(p) for p in outcome.cert_problems]
            rec.headers_blob = self._put(json.dumps(meta, ensure_ascii=False, sort_keys=True).encode())
        return rec

    # --- a website ------------------------------------------------------------------------------

    async def site(self, job: SiteJob) -> SubjectResult:
        started = datetime.now(UTC)
        fetched = await self.fetch(job.url, maxsize=self.max_body)
        if fetched.response is not None:  # a chain missing its intermediate: fetch it (AIA) first
            resp = fetched.response
            await self.certs.fetch_issuers(resp.certificate, resp.peer_chain, self.fetcher)
        outcome = self.outcome_of(fetched)
        http = classify_http(outcome)
        host = checking.host_of(job.url)
        answer = self.resolver.cached(host) if host else None
        dns = {"answers": [answer.to_dict()] if answer else []}
        capture = self._capture(fetched, started, dns, outcome)
        capture.attempt = job.attempt
        verdicts: list[Verdict] = [http]
        if fetched.response is not None and page_readable(http):
            page_verdicts = await self._judge_page(job, fetched.response, capture)
            verdicts.extend(page_verdicts)
        else:
            verdicts.extend(checking.unreadable_verdicts(http, job.expected, self.rules))
        capture.duration = round((datetime.now(UTC) - started).total_seconds(), 4)
        requests = len(capture.http_chain) + sum(
            len(r.get("chain", ())) for r in capture.subresources.values() if isinstance(r, dict)
        )
        return SubjectResult(job.subject, job.website_id, None, verdicts, capture, requests)

    def make_page(self, resp: RawResponse) -> Page:
        return Page(url=resp.url, body=resp.body, headers=resp.headers, status=resp.status)

    async def _judge_page(self, job: SiteJob, resp: RawResponse, capture: CaptureRecord) -> list[Verdict]:
        page = self.make_page(resp)
        budget = self.max_subresources
        verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
        while True:
            todo = [n for n in needs if n.kind is not NeedKind.RENDER and not page.settled(n)]
            if not todo:
                break
            if budget <= 0:
                page.exhausted = True
                verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
                break
            todo = todo[:budget]
            budget -= len(todo)
            await asyncio.gather(*(self._fetch_need(page, n, capture) for n in todo))
            verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
        want_render = self.render_mode == "always" or (
            self.render_mode == "auto" and checking.render_needed(needs)
        )
        if want_render and self.renderer is not None:
            rendered = await self._render(page, capture)
            if rendered:
                verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
                # The rendered DOM may reference the badge script / verification page: fetch those too.
                todo = [n for n in needs if n.kind is not NeedKind.RENDER and not page.settled(n)][
                    : max(budget, 2)
                ]
                if todo:
                    await asyncio.gather(*(self._fetch_need(page, n, capture) for n in todo))
                    verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
        return verdicts

    async def _render(self, page: Page, capture: CaptureRecord) -> bool:
        assert self.renderer is not None
        self.renders += 1
        try:
            result = await self.renderer(page.url, page)
        except Exception as exc:
            log.warning("render of %s failed: %s", page.url, exc)
            page.mark_failed(Need(NeedKind.RENDER, page.url), f"render failed: {type(exc).__name__}")
            return False
        if result is None:
            page.mark_failed(Need(NeedKind.RENDER, page.url), "render failed")
            return False
        html, png = result
        page.rendered = Document(page.url, html)
        capture.rendered_blob = self._put(html.encode("utf-8"))
        if png:
            capture.screenshot_blob = self._put(png)
        return True

    async def _fetch_need(self, page: Page, need: Need, capture: CaptureRecord) -> None:
        fetched = await self.fetch(need.url, maxsize=SUB_MAX_BYTES, max_hops=3, priority=1)
        resp = fetched.response
        record: dict[str, Any] = {"kind": str(need.kind), "chain": [h.to_dict() for h in fetched.chain]}
        capture.subresources[need.url] = record
        if resp is None or not (200 <= resp.status < 300):
            reason = fetched.error_detail or (f"HTTP {resp.status}" if resp else "no response")
            record["error"] = reason[:300]
            page.mark_failed(need, reason)
            return
        record["blob"] = self._put(resp.body)
        record["status"] = resp.status
        record["content_type"] = _header(resp.headers, "content-type")
        attach_subresource(page, need, resp.url, resp.body, record["content_type"])

    # --- a domain -------------------------------------------------------------------------------

    async def domain(self, job: DomainJob) -> SubjectResult:
        started = datetime.now(UTC)
        answer = await self.resolver.lookup(job.ascii)
        verdicts = [checking.dns_verdict(answer)]
        verdicts.append(checking.domain_verdict(job.name, job.unit_kind, job.expiry, self.today, self.rules))
        dns = {"answers": [answer.to_dict()]}
        url = f"http://{job.ascii}/"
        capture = CaptureRecord(url=url, started=started, dns=dns, attempt=job.attempt)
        requests = 0
        fetched: Fetched | None = None
        if answer.addresses:
            fetched = await self.fetch(url, maxsize=self.max_body)
            requests += len(fetched.chain)
            capture = self._capture(fetched, started, dns)
            capture.attempt = job.attempt
        observation = usage_observation(job, answer, fetched)
        expected = domain_expected(job)
        usage = checking.usage_verdict(observation, answer, expected, self.rules)
        resp = fetched.response if fetched is not None else None
        if resp is not None and usage.reason not in ("usage.own_site", "usage.red_page"):
            # Title and text matter only when the redirect chain did not already decide: parse lazily.
            observation["title"], observation["text"] = _title_and_text(
                resp.body, _header(resp.headers, "content-type")
            )
            usage = checking.usage_verdict(observation, answer, expected, self.rules)
        own: list[str] = []
        if observation.get("status") == 200 and checking.host_of(expected.site_url) == job.ascii:
            # The domain is the site's registered address: what it serves is the unit's own site.
            own.append(str(observation["body_sha256"]))
            usage = checking.usage_verdict(observation, answer, expected, self.rules, own)
        elif (
            usage.reason not in ("usage.own_site", "usage.red_page")
            and observation.get("status") == 200
            and expected.site_url
        ):
            # The domain serves a page itself: is it the unit's own site under another name? Compare
            # with the site's home page (fetched here so the verdict never depends on scan order).
            site = await self.fetch(expected.site_url, maxsize=self.max_body)
            requests += len(site.chain)
            if site.response is not None and site.response.status == 200:
                own.append(hashlib.sha256(site.response.body).hexdigest())
                usage = checking.usage_verdict(observation, answer, expected, self.rules, own)
        observation["own_sha256"] = own
        capture.subresources["usage"] = observation
        verdicts.append(usage)
        capture.duration = round((datetime.now(UTC) - started).total_seconds(), 4)
        return SubjectResult(job.subject, None, job.domain_id, verdicts, capture, requests)

    async def unit(self, job: UnitJob) -> SubjectResult:
        """Whether the unit holds a Chinese domain of its kind (the registry's domains; no network)."""
        verdict = checking.unit_domains_verdict(job.domains, job.unit_kind)
        # What it rests on, kept with the finding (there is no capture): `recheck` re-derives from it.
        verdict = replace(verdict, data={**verdict.data, "registered": list(job.domains)})
        return SubjectResult(
            job.subject, None, None, [verdict], CaptureRecord(url=""), 0, unit_id=job.unit_id
        )

    async def run(self, job: Job) -> SubjectResult:
        """One attempt at any subject."""
        if isinstance(job, SiteJob):
            return await self.site(job)
        if isinstance(job, DomainJob):
            return await self.domain(job)
        return await self.unit(job)


def attach_subresource(page: Page, need: Need, url: str, body: bytes, content_type: str) -> None:
    """Put a fetched sub-resource where the checks look for it (keyed by the URL the need named)."""
    key = need.url
    if need.kind is NeedKind.IMAGE:
        page.images[key] = body
    elif need.kind is NeedKind.BADGE_SCRIPT:
        page.badge_scripts[key] = Document.from_bytes(url, body, content_type).text
    elif need.kind is NeedKind.SCRIPT:
        page.scripts[key] = Document.from_bytes(url, body, content_type).text
    elif need.kind is NeedKind.BSZS:
        page.bszs[key] = Document.from_bytes(url, body, content_type)
    elif need.kind is NeedKind.FRAME:
        page.frames[key] = Document.from_bytes(url, body, content_type)


def domain_expected(job: DomainJob) -> Any:
    """The registry facts a domain's use is judged against (built by the job loader)."""
    from checks.expected import Expected, UnitKind

    if job.expected is not None:
        return job.expected
    return Expected(
        unit_kind=UnitKind(job.unit_kind),
        site_url=job.site_urls[0] if job.site_urls else "",
        cn_domains=(job.name,) if job.chinese else (),
    )


def usage_observation(job: DomainJob, answer: DnsAnswer, fetched: Fetched | None) -> dict[str, Any]:
    """What fetching a domain showed, as the usage classification reads it (JSON-friendly)."""
    obs: dict[str, Any] = {
        "domain": job.ascii,
        "final_url": "",
        "status": None,
        "error": None,
        "title": "",
        "text": "",
        "body_sha256": "",
        "body_length": None,
        "redirects": [],
    }
    if fetched is None:
        obs["error"] = "dns"
        return obs
    resp = fetched.response
    obs["redirects"] = [h.location for h in fetched.chain if h.location]
    obs["final_url"] = fetched.final_url
    if resp is None:
        obs["error"] = str(fetched.error or "error")
        return obs
    obs["status"] = resp.status
    obs["body_sha256"] = hashlib.sha256(resp.body).hexdigest()
    obs["body_length"] = len(resp.body)
    return obs


def _title_and_text(body: bytes, content_type: str) -> tuple[str, str]:
    """The page title and the start of its visible text (for parked/default-page recognition)."""
    doc = Document.from_bytes("", body[:65536], content_type)
    tree = doc.tree
    title = " ".join(" ".join(tree.xpath("//title//text()")).split())[:300]
    parts = tree.xpath(
        "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)]"
    )
    text = " ".join(" ".join(str(p) for p in parts).split())[:600]
    return title, text
