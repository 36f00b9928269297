"""``badgewatch inspect``: every verdict for one page, fetched live or read from a file.

Both run the scan's own procedure (:class:`crawler.flow.Flow`: the home page, then the sub-resources the
checks ask for, looped until nothing new is needed; with ``--render``, the Chromium tier of
:mod:`crawler.render`). A URL is fetched over a small aiohttp fetcher (the configured nameservers, the
address guard), so one page needs no Scrapy process. A FILE is served by
:class:`crawler.saved.LocalFetcher`: the scripts, frames and images it references are read from beside
it (a "网页，全部" save, a mirrored site), and one it could not load is a failed sub-resource, so the
verdict is ``unknown``, never ``missing``.

What the page is judged against: ``--site URL`` picks the registry entry of that site when a database is
configured and holds it (as the scan builds it: :func:`storage.expected.expected_for`); ``--kind`` gives
the unit's kind. Without a kind the badge's kind is reported, not judged (``badge.displayed``), and
without a registry entry the 标识码 requirement is not judged (``site_code.not_judged``).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import sqlalchemy as sa
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy.orm import Session, selectinload

from checks.errors import InputError
from checks.expected import Expected, UnitKind
from checks.page import Page
from checks.registry import parse_site_url
from checks.suite import SuiteResult
from checks.verdict import Verdict
from crawler import checking
from crawler.certs import CertJudge
from crawler.context import ScanContext, build_context
from crawler.errors import AddressRefusedError, DnsFailedError
from crawler.flow import Fetcher, Flow, RawResponse, SubjectResult
from crawler.flow import Renderer as PageRenderer
from crawler.jobs import SiteJob
from crawler.render import Renderer
from crawler.saved import LocalFetcher, SavedPage, SavedPageError, host_like, locate, page_file
from crawler.tls import TlsFallback, legacy_ssl_context, ssl_peer
from storage.config import Config
from storage.db import DatabaseError, make_engine, normalise_url
from storage.expected import expected_for
from storage.models import Website

if TYPE_CHECKING:
    from crawler.render import Renderer

#: Sub-resources read for a saved page. Higher than the scan's budget: reading a local file loads no
#: site, and a saved page whose footer script is the ninth it loads should still be read.
LOCAL_SUBRESOURCES = 64


class _Resolver(AbstractResolver):
    """aiohttp resolution through the scan resolver, with the guard and the port map."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        answer = await self.ctx.resolver.lookup(host)
        if not answer.addresses:
            raise DnsFailedError(answer)
        allowed = [ip for ip in answer.addresses if self.ctx.guard.refusal(ip) is None]
        if not allowed:
            raise AddressRefusedError(
                host, answer.addresses, self.ctx.guard.refusal(answer.addresses[0]) or ""
            )
        mapped = self.ctx.map_port(port)
        return [
            {
                "hostname": host,
                "host": ip,
                "port": mapped,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in allowed
        ]

    async def close(self) -> None:
        return None


class AiohttpFetcher:
    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE  # read the page whatever the certificate; judged separately
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=_Resolver(ctx), ssl=tls, limit=16),
            timeout=aiohttp.ClientTimeout(total=ctx.config.timeout_s),
            headers={"User-Agent": ctx.config.user_agent},
            auto_decompress=True,
        )
        # TLS 1.0-only servers (legacy retry) and 国密-only ones (TLCP probe), as the scan does.
        self.fallback = TlsFallback(ctx)
        self.legacy_tls = legacy_ssl_context()

    async def get(
        self, url: str, *, maxsize: int, priority: int = 0, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        return await self.fallback.run(url, lambda legacy: self._get(url, maxsize, legacy, headers))

    async def _get(
        self, url: str, maxsize: int, legacy: bool, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        extra: dict[str, Any] = {"ssl": self.legacy_tls} if legacy else {}
        if headers:
            extra["headers"] = dict(headers)  # conditional requests
        async with self.session.get(url, allow_redirects=False, **extra) as resp:
            cert, chain, version = None, None, ""
            # A small body is read with the headers and the connection already back in the pool
            # (``resp.connection`` None): its protocol still holds the transport.
            protocol = resp.connection.protocol if resp.connection else getattr(resp, "_protocol", None)
            transport = protocol.transport if protocol is not None else None
            ssl_obj = transport.get_extra_info("ssl_object") if transport is not None else None
            if ssl_obj is not None:
                # Leaf, the certificates sent after it, the protocol (crawler/tls.py: ssl_peer).
                cert, chain, version = ssl_peer(ssl_obj)
            body = await resp.content.read(maxsize + 1)
            if len(body) > maxsize:
                raise aiohttp.ClientPayloadError(f"body larger than max size ({maxsize})")
            headers = {k: v for k, v in resp.headers.items()}
            return RawResponse(str(resp.url), resp.status, headers, body, cert, "", chain, version)

    async def close(self) -> None:
        await self.session.close()


class InspectError(InputError):
    """A target or option ``inspect`` cannot work with (the message is for users, in Chinese)."""


@dataclass
class Inspection:
    """What ``inspect`` produced: the verdicts in the ``--json`` shape and how the page was read."""

    verdicts: dict[str, dict[str, Any]]
    url: str
    saved: SavedPage | None = None
    loaded: dict[str, Path] = field(default_factory=dict)  # sub-resources read from the saved folder
    missing: dict[str, str] = field(default_factory=dict)  # … that could not be, and why
    rendered: bool = False
    render_errors: list[str] = field(default_factory=list)


# --- what the page is judged against --------------------------------------------------------------


def expected_for_inspect(
    kind: str | None, site: str | None, url: str, config: Config
) -> tuple[Expected, list[str]]:
    """The facts to judge against, and notes for the user (Chinese) on where they came from.

    ``--site`` looks the site up in the configured database; without a database or an entry, the
    page is judged with what was given (``--kind``, the site's address). ``--kind`` always wins over
    the registry's kind (with a note when they differ).
    """
    notes: list[str] = []
    unit_kind = UnitKind(kind) if kind else None
    site_url = ""
    if site:
        try:
            site_url = parse_site_url(site).url
        except ValueError as exc:
            raise InspectError(f"--site 网站地址无效：{exc}") from exc
        entry, why = registry_entry(site_url, config)
        if entry is not None:
            notes.append(f"按登记信息判定：{entry.unit_name}（{entry.unit_kind}）的网站 {entry.site_url}")
            if unit_kind is not None and unit_kind != entry.unit_kind:
                notes.append(f"单位类别按 --kind 判定为{unit_kind}（登记为{entry.unit_kind}）")
                entry = replace(entry, unit_kind=unit_kind)
            return entry, notes
        notes.append(why + "；只按" + ("给定的单位类别和" if unit_kind else "") + "网站地址判定")
    # No registry entry: 事业单位 sites need no 标识码; for any other kind nobody said whether the site
    # is a 政府网站 (None: not judged).
    government: bool | None = False if unit_kind is UnitKind.INSTITUTION else None
    return Expected(unit_kind=unit_kind, site_url=site_url or url, is_government_site=government), notes


def registry_entry(site_url: str, config: Config) -> tuple[Expected | None, str]:
    """The registry facts of the site at ``site_url`` (normalised) from the configured database, or None
    and why not (Chinese). Never creates a database."""

    db_url = normalise_url(config.database_url)
    try:
        parsed = sa.make_url(db_url)
    except sa.exc.ArgumentError:
        return None, f"数据库地址无效（{config.database_url}）"
    if parsed.get_backend_name() == "sqlite":
        name = parsed.database or ""
        if name and name != ":memory:" and not Path(name).expanduser().exists():
            return None, f"未找到数据库 {name}（未配置数据库或尚未 badgewatch init），没有登记信息可用"
    try:
        engine = make_engine(db_url)
    except DatabaseError as exc:
        return None, f"无法使用数据库：{exc}"
    key = parse_site_url(site_url).key
    host = key.split("/", 1)[0]
    try:
        if not sa.inspect(engine).has_table(Website.__tablename__):
            return None, "数据库中还没有登记信息（badgewatch init、registry import）"
        with Session(engine) as session:
            rows = session.scalars(
                sa.select(Website)
                .where(Website.url.like(f"%://{host}%"))
                .options(selectinload(Website.unit), selectinload(Website.domains))
            ).all()
            # The registry's identity of a site is its key (scheme-insensitive, trailing "/" ignored).
            site = next((w for w in rows if _site_key(w.url) == key), None)
            if site is None:
                return None, f"登记信息中没有网站 {site_url}"
            return expected_for(site), ""
    except sa.exc.SQLAlchemyError as exc:
        return None, f"无法读取数据库：{type(exc).__name__}"
    finally:
        engine.dispose()


def _site_key(url: str) -> str:

    try:
        return parse_site_url(url).key
    except ValueError:
        return ""


# --- the target -------------------------------------------------------------------------------------

_IPV4_PORT = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?")
_FILE_SUFFIX = re.compile(r"\.(?:s?html?|xhtml|mht(?:ml)?|txt|js)$", re.I)


def resolve_target(target: str) -> Path | str:
    """The page file (a :class:`Path`) or the URL (a str) ``target`` names; :class:`InspectError` for
    a path that is not there (or a folder without a page) and is not written like a URL either."""
    if target.lower().startswith(("http://", "https://")):
        return target
    path = Path(target).expanduser()
    if path.exists():
        try:
            return page_file(path)
        except SavedPageError as exc:
            raise InspectError(str(exc)) from exc
    first = target.split("/", 1)[0]
    url_like = (host_like(first.split(":", 1)[0]) or _IPV4_PORT.fullmatch(first) is not None) and not (
        "/" not in target and _FILE_SUFFIX.search(target)  # "page.html": a file, not a host
    )
    if target.startswith(("/", ".", "~")) or "\\" in target or not url_like:
        raise InspectError(f"文件不存在：{target}（网址请以 http:// 或 https:// 开头）")
    return "http://" + target


# --- running the scan's procedure on one page --------------------------------------------------------


def inspect_url(url: str, expected: Expected, config: Config, *, render: bool = False) -> Inspection:
    """Fetch ``url`` as the scan does and judge it."""

    async def run() -> Inspection:
        ctx = build_context(config)
        fetcher = AiohttpFetcher(ctx)
        try:
            result, rendered, errors = await _judge(
                ctx, fetcher, SiteJob(0, url, expected), config, render, config.max_subresources
            )
        finally:
            await fetcher.close()
        verdicts = _flat(result.verdicts, expected)
        return Inspection(verdicts, url, rendered=rendered, render_errors=errors)

    return asyncio.run(run())


def inspect_file(path: Path, expected: Expected, config: Config, *, render: bool = False) -> Inspection:
    """Judge a saved page, reading what it references from beside it (see :mod:`crawler.saved`)."""
    saved = locate(path, expected.site_url)
    fetcher = LocalFetcher(saved)
    # A local file is read whole: the scan's size limit protects it from sites, not from disk files.
    local = replace(config, max_body_bytes=max(config.max_body_bytes, saved.file.stat().st_size))

    async def run() -> Inspection:
        ctx = build_context(local)
        result, rendered, errors = await _judge(
            ctx, fetcher, SiteJob(0, saved.url, expected), local, render, LOCAL_SUBRESOURCES
        )
        # The http verdict of a file would describe a fetch that did not happen; an unreadable page
        # (a saved challenge page, an empty file) still shows in the page checks' reasons.
        verdicts = _flat([v for v in result.verdicts if v.check != "http"], expected)
        loaded = {u: p for u, p in fetcher.loaded.items() if p != saved.file}
        return Inspection(verdicts, saved.url, saved, loaded, dict(fetcher.missing), rendered, errors)

    return asyncio.run(run())


async def _judge(
    ctx: ScanContext, fetcher: Fetcher, job: SiteJob, config: Config, render: bool, budget: int
) -> tuple[SubjectResult, bool, list[str]]:
    """``Flow.site`` on one job; with ``render``, the page is also rendered in Chromium (every request
    of the browser served by ``fetcher``)."""
    errors: list[str] = []
    renderer: Renderer | None = None
    render_page: PageRenderer | None = None
    if render:
        browser = renderer = Renderer(ctx, fetcher)

        async def render_page(url: str, page: Page) -> tuple[str, bytes] | None:
            try:
                return await browser.render(url, page)
            except Exception as exc:  # Flow records the failure; the user is told why
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                raise

    flow = Flow(
        fetcher,
        ctx.resolver,
        None,
        checking.rules_from_config(config),
        CertJudge(config.ca_file, config.intermediates_file),
        max_body=config.max_body_bytes,
        max_subresources=budget,
        render_mode="always" if render else "never",
        renderer=render_page,
    )
    try:
        result = await flow.site(job)
    finally:
        if renderer is not None:
            await renderer.aclose()
    return result, bool(renderer is not None and renderer.rendered), errors


def _flat(verdicts: list[Verdict], expected: Expected) -> dict[str, dict[str, Any]]:
    """The ``inspect --json`` shape (:meth:`checks.suite.SuiteResult.inspect_json`), the badge's entry
    with the unit kind it was judged against (None: not judged, only reported in ``kind``)."""
    out: dict[str, dict[str, Any]] = SuiteResult(verdicts={v.check: v for v in verdicts}).inspect_json()
    badge = out.get("badge")
    if badge is not None:
        evidence = badge.pop("evidence")
        badge.setdefault("unit_kind", str(expected.unit_kind) if expected.unit_kind else None)
        badge["evidence"] = evidence
    return out
