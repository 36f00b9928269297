"""What the crawler does for one subject: fetch, follow, collect what the checks ask for, judge.

Independent of Scrapy: a :class:`Fetcher` does the network I/O (the spider's is Scrapy's engine, so
every request goes through the downloader, its middlewares and its per-IP slots). Redirects are
followed here, one hop at a time, so every hop is recorded and passes the address guard.

Near 600 lines because the procedures of the three subject kinds share one object's state (fetcher,
resolver, evidence store, rules, the sub-resource budget, the render switch); the records they pass
around are in :mod:`crawler.records`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from w3lib.url import safe_url_string

from checks.expected import Expected, UnitKind
from checks.http import CertProblem, FetchError, FetchOutcome, Hop, page_readable
from checks.landing import find_landing
from checks.page import Document, Need, NeedKind, Page
from checks.rules import Rules
from checks.verdict import Verdict
from crawler import checking
from crawler.certs import CertJudge, cert_summary, tls_summary
from crawler.errors import classify_exception
from crawler.jobs import DomainJob, Job, SiteJob, UnitJob
from crawler.records import REVALIDATE as REVALIDATE
from crawler.records import CaptureRecord as CaptureRecord
from crawler.records import Fetched, _header
from crawler.records import Fetcher as Fetcher
from crawler.records import RawResponse as RawResponse
from crawler.records import SubjectResult as SubjectResult
from crawler.records import Visit as Visit
from crawler.resolver import DnsAnswer, ScanResolver
from storage.evidence import EvidenceStore

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_HOPS = 10
MAX_LANDINGS = 3  # landing stubs followed in a row (a registrar's frame, then a CMS entry page, ...)
SUB_MAX_BYTES = 2 * 1024 * 1024


def invalid_url(url: str) -> str:
    """Why ``url`` cannot be visited ("" when it can): not http(s), no host, a malformed host or port,
    spaces or control characters."""
    if any(ord(c) < 33 or c == "\x7f" for c in url):
        return "contains spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError as exc:
        return f"malformed ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"not a web address (scheme {parts.scheme or 'missing'})"
    if not host:
        return "no host"
    return ""


def redirect_target(current: str, location: str) -> str | None:
    """The absolute URL a ``Location`` leads to, as a browser would take it (raw UTF-8 bytes in the
    header percent-encoded); None when it cannot be one."""
    try:
        raw = location.encode("latin-1").decode("utf-8")  # headers arrive as latin-1 text
    except (UnicodeEncodeError, UnicodeDecodeError):
        raw = location
    try:
        return safe_url_string(urljoin(current, raw.strip()), encoding="utf-8")
    except (ValueError, UnicodeError):
        return None


Renderer = Callable[[str, Page], Awaitable[tuple[str, bytes] | None]]
# Errors that mean "no web server for this name on port 80" (a browser then tries https://).
_NOTHING_ON_PORT_80 = frozenset({FetchError.REFUSED, FetchError.RESET, FetchError.PROTOCOL})


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
        """GET ``url`` following redirects (each hop recorded, loops detected).

        Whatever a server sends ends as a :class:`Fetched`, never an exception: an address that is not
        a web address (the registry's, or a ``Location``: malformed, ``ftp:``, ``javascript:``) is a
        ``bad_url``/``bad_redirect`` error of this fetch.
        """
        t0 = time.perf_counter()
        chain: list[Hop] = []
        seen: set[str] = set()
        current = url
        for hop in range(max_hops + 1):
            why = invalid_url(current)
            if why:
                kind = FetchError.BAD_URL if hop == 0 else FetchError.BAD_REDIRECT
                if hop == 0:
                    chain.append(Hop(current, None, "", str(kind)))
                return Fetched(url, chain, None, kind, f"{why}: {current[:300]}", time.perf_counter() - t0)
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
                nxt = redirect_target(current, location)
                if nxt is None or invalid_url(nxt):
                    # The hop carries the error so a recheck from the record reaches the same verdict.
                    chain.append(Hop(current, resp.status, location[:500], str(FetchError.BAD_REDIRECT)))
                    return Fetched(
                        url,
                        chain,
                        None,
                        FetchError.BAD_REDIRECT,
                        f"HTTP {resp.status} Location: {location[:300]!r}",
                        time.perf_counter() - t0,
                    )
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

    async def visit(self, url: str) -> Visit:
        """The page a visitor ends on from ``url``: redirects, then landing stubs (meta refresh,
        ``Refresh``, script ``location``, framesets and full-window iframes) followed statically up to
        :data:`MAX_LANDINGS` times. The chain holds every hop; the stubs are kept as evidence."""
        fetched = await self.fetch(url, maxsize=self.max_body)
        chain = list(fetched.chain)
        stubs: list[tuple[str, str, RawResponse]] = []
        visited = {h.url for h in chain}
        page = self.make_page(fetched.response) if fetched.response is not None else None
        for _ in range(MAX_LANDINGS):
            resp = fetched.response
            if resp is None or page is None or not 200 <= resp.status < 300:
                break
            landing = find_landing(page.home, resp.headers)
            # The target as a browser takes it (spaces and raw bytes percent-encoded, like a Location);
            # one that is still no web address is not followed by a browser either: the visitor stays.
            target = redirect_target(resp.url, landing.target) if landing and landing.target else None
            if landing is None or target is None or target in visited or invalid_url(target):
                break  # content, a stub only a browser can follow, or a loop: judged as it stands
            stubs.append((resp.url, landing.kind, resp))
            chain[-1] = replace(chain[-1], location=target, via=landing.kind)
            nxt = await self.fetch(target, maxsize=self.max_body)
            chain.extend(nxt.chain)
            visited.update(h.url for h in nxt.chain)
            fetched = replace(nxt, url=url, chain=list(chain), elapsed=fetched.elapsed + nxt.elapsed)
            page = self.make_page(fetched.response) if fetched.response is not None else None
        return Visit(fetched, page, stubs)

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
            body_size=len(resp.body),
            cert_problems=problems,
            body_head=resp.body[:1024],
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
        visit = await self.visit(job.url)
        fetched, page = visit.fetched, visit.page
        if fetched.response is not None:  # a chain missing its intermediate: fetch it (AIA) first
            resp = fetched.response
            await self.certs.fetch_issuers(resp.certificate, resp.peer_chain, self.fetcher)
        outcome = self.outcome_of(fetched)
        http = checking.site_http(outcome, page)
        if fetched.response is not None:
            self._report(fetched.response, http.reason)
        host = checking.host_of(job.url)
        answer = self.resolver.cached(host) if host else None
        dns = {"answers": [answer.to_dict()] if answer else []}
        capture = self._capture(fetched, started, dns, outcome)
        capture.attempt = job.attempt
        for n, (stub_url, kind, resp) in enumerate(visit.stubs, start=1):
            capture.subresources[f"landing:{n}"] = {
                "kind": "landing",
                "via": kind,
                "url": stub_url,
                "status": resp.status,
                "blob": self._put(resp.body),
            }
        verdicts: list[Verdict] = [http]
        # A stub whose target only a browser can compute is rendered (the browser follows it).
        unresolved = http.reason == "http.landing_unresolved"
        can_render = self.renderer is not None and self.render_mode != "never"
        if page is not None and (page_readable(http) or (unresolved and can_render)):
            page_verdicts = await self._judge_page(job, page, capture, force_render=unresolved)
            if unresolved:
                http = checking.site_http(outcome, page)
                verdicts = [http]
            if page_readable(http):
                settled = checking.settle_site(job.url, outcome.final_url, http, page_verdicts, job.expected)
                http, page_verdicts = settled
                verdicts = [http, *page_verdicts]
            else:
                verdicts.extend(checking.unreadable_verdicts(http, job.expected, self.rules))
        else:
            verdicts.extend(checking.unreadable_verdicts(http, job.expected, self.rules))
        capture.duration = round((datetime.now(UTC) - started).total_seconds(), 4)
        requests = len(capture.http_chain) + sum(
            len(r.get("chain", ())) for r in capture.subresources.values() if isinstance(r, dict)
        )
        return SubjectResult(job.subject, job.website_id, None, verdicts, capture, requests)

    def _report(self, resp: RawResponse, reason: str) -> None:
        """Tell the fetcher what a server's page was (a block or rate-limit page is push-back that the
        politeness layer slows the address down for); fetchers without politeness have no ``report``."""
        report = getattr(self.fetcher, "report", None)
        if report is not None:
            report(resp.ip, checking.host_of(resp.url), reason, resp.status, resp.body)

    def make_page(self, resp: RawResponse) -> Page:
        return Page(url=resp.url, body=resp.body, headers=resp.headers, status=resp.status)

    async def _judge_page(
        self, job: SiteJob, page: Page, capture: CaptureRecord, *, force_render: bool = False
    ) -> list[Verdict]:
        budget = self.max_subresources
        verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
        # Run the checks, fetch what they still need, run them again, until they need nothing more or the
        # page's sub-resource budget is spent (then they decide with what they have: page.exhausted).
        while todo := _open_needs(page, needs):
            if budget <= 0:
                page.exhausted = True
                verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
                break
            todo = todo[:budget]
            budget -= len(todo)
            await self._fetch_needs(page, todo, capture)
            verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
        want_render = self.render_mode == "always" or (
            self.render_mode == "auto" and (force_render or checking.render_needed(needs))
        )
        if want_render and self.renderer is not None:
            rendered = await self._render(page, capture)
            if rendered:
                verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
                # The rendered DOM may reference the badge script / verification page: fetch those too.
                if todo := _open_needs(page, needs)[: max(budget, 2)]:
                    await self._fetch_needs(page, todo, capture)
                    verdicts, needs = checking.run_page_checks(page, job.expected, self.rules)
        return verdicts

    async def _fetch_needs(self, page: Page, needs: list[Need], capture: CaptureRecord) -> None:
        await asyncio.gather(*(self._fetch_need(page, n, capture) for n in needs))

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
        if resp.cache is not None:
            record["cache"] = resp.cache  # served by the CONAC cache: from when, validated when
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
        visit: Visit | None = None
        if answer.addresses:
            visit = await self.visit(url)
            requests += len(visit.fetched.chain)
            if visit.fetched.response is None and visit.fetched.error in _NOTHING_ON_PORT_80:
                # HTTPS-only hosts: a browser told the bare name tries https:// too.
                secure = await self.visit(f"https://{job.ascii}/")
                requests += len(secure.fetched.chain)
                if secure.fetched.response is not None:
                    secure.fetched.chain[:0] = visit.fetched.chain
                    visit = secure
            capture = self._capture(visit.fetched, started, dns)
            capture.attempt = job.attempt
        fetched = visit.fetched if visit is not None else None
        observation = usage_observation(job, answer, fetched)
        if visit is not None and visit.page is not None:
            # A challenge or a notice is not what the domain serves: its use stays open.
            http = checking.site_http(self.outcome_of(visit.fetched), visit.page)
            observation["page_state"] = "" if page_readable(http) else http.reason
            if visit.fetched.response is not None:
                self._report(visit.fetched.response, http.reason)
        expected = domain_expected(job)
        usage = checking.usage_verdict(observation, answer, expected, self.rules)
        page = visit.page if visit is not None else None
        if page is not None and usage.reason not in ("usage.own_site", "usage.red_page"):
            # Title, text and links matter only when where the visitor ended did not already decide.
            observation.update(page_summary(page.home))
            usage = checking.usage_verdict(observation, answer, expected, self.rules)
        own: list[str] = []
        own_pages: list[dict[str, Any]] = []
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
            # with the page a visitor of the site sees (fetched here so the verdict never depends on
            # scan order): the same bytes, or, for pages that change on every visit, the same title and
            # links.
            site = await self.visit(expected.site_url)
            requests += len(site.fetched.chain)
            if site.page is not None and site.fetched.response is not None and site.page.status == 200:
                own.append(hashlib.sha256(site.fetched.response.body).hexdigest())
                own_pages.append(page_summary(site.page.home))
                usage = checking.usage_verdict(observation, answer, expected, self.rules, own, own_pages)
        observation["own_sha256"] = own
        observation["own_pages"] = own_pages
        capture.subresources["usage"] = observation
        for n, (stub_url, kind, resp) in enumerate(visit.stubs if visit is not None else (), start=1):
            capture.subresources[f"landing:{n}"] = {
                "kind": "landing",
                "via": kind,
                "url": stub_url,
                "status": resp.status,
                "blob": self._put(resp.body),
            }
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
        """One attempt at any subject. Never raises (but for cancellation): whatever goes wrong with
        one subject is that subject's ``unknown/internal_error``, recorded with the exception, and the
        scan goes on."""
        token = REVALIDATE.set(job.attempt > 1)
        try:
            if isinstance(job, SiteJob):
                return await self.site(job)
            if isinstance(job, DomainJob):
                return await self.domain(job)
            return await self.unit(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("subject %s failed", job.subject)
            return internal_error_result(job, exc)
        finally:
            REVALIDATE.reset(token)


def internal_error_result(job: Job, exc: BaseException) -> SubjectResult:
    """The result of a subject whose procedure raised: every check of it ``unknown/internal_error``."""
    detail = f"{type(exc).__name__}: {exc}"[:500]
    verdicts = checking.internal_error_verdicts(job.subject, detail)
    url = job.url if isinstance(job, SiteJob) else ""
    if isinstance(job, DomainJob):
        url = f"http://{job.ascii}/"
    capture = CaptureRecord(url=url, error=f"internal_error: {detail}", attempt=job.attempt)
    if isinstance(job, SiteJob):
        return SubjectResult(job.subject, job.website_id, None, verdicts, capture)
    if isinstance(job, DomainJob):
        return SubjectResult(job.subject, None, job.domain_id, verdicts, capture)
    return SubjectResult(job.subject, None, None, verdicts, CaptureRecord(url=""), unit_id=job.unit_id)


def _open_needs(page: Page, needs: list[Need]) -> list[Need]:
    """The sub-resources the checks still ask for that the page has not got (rendering aside)."""
    return [n for n in needs if n.kind is not NeedKind.RENDER and not page.settled(n)]


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


def page_summary(doc: Document) -> dict[str, Any]:
    """What the use of a domain is judged on besides where it leads: the title, the start of the
    visible text (parked and default pages) and the page's own links (the same site under another name
    has the same ones, whatever changes from visit to visit)."""
    tree = doc.tree
    title = " ".join(" ".join(tree.xpath("//title//text()")).split())[:300]
    parts = tree.xpath(
        "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)]"
    )
    text = " ".join(" ".join(str(p) for p in parts).split())[:600]
    return {"title": title, "text": text, "links": checking.link_paths(tree)}
