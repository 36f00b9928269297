"""The render tier: headless Chromium (Debian's ``chromium`` through Playwright) for the pages whose
badge only a browser can settle (footers built by jQuery, bundles, iframes).

The browser makes no connection of its own: every request it issues is intercepted (``route``) and
served through the scan's fetcher, i.e. Scrapy's downloader with our resolver, address guard and port
map, so the browser sees exactly what the crawler sees and simnet works with no system change. The
home document is served from the capture already taken (the rendered DOM and the static verdicts rest
on the same bytes). ``--host-resolver-rules`` maps every name to nothing as a second fence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from checks.page import Page
from crawler.context import ScanContext

log = logging.getLogger(__name__)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Nothing may resolve outside our interception (a service worker, a prefetch...).
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
SETTLE_MS = 4000
MAX_PARALLEL = 2
SUB_MAX_BYTES = 4 * 1024 * 1024


class Renderer:
    """One browser per scan, started on first use; at most :data:`MAX_PARALLEL` pages at once."""

    def __init__(self, context: ScanContext, fetcher: Any = None) -> None:
        self.context = context
        self.fetcher = fetcher
        self._pw: Any = None
        self._browser: Any = None
        self._start_lock = asyncio.Lock()
        self._sem = asyncio.Semaphore(MAX_PARALLEL)
        self.rendered = 0

    async def _ensure(self) -> Any:
        async with self._start_lock:
            if self._browser is None:
                # Here: Playwright (large) is loaded only when a page is rendered.
                from playwright.async_api import async_playwright

                self._pw = await async_playwright().start()
                self._browser = await self._pw.chromium.launch(
                    executable_path=self.context.config.chromium_path,
                    args=CHROMIUM_ARGS,
                    headless=True,
                )
            return self._browser

    async def render(self, url: str, page: Page) -> tuple[str, bytes] | None:
        """The DOM (serialised) and a PNG screenshot of ``url`` after scripts ran."""
        if self.fetcher is None:
            raise RuntimeError("renderer has no fetcher")
        async with self._sem:
            browser = await self._ensure()
            ctx = await browser.new_context(
                user_agent=self.context.config.user_agent,
                ignore_https_errors=True,
                java_script_enabled=True,
                service_workers="block",
                viewport={"width": 1280, "height": 900},
            )
            try:
                await ctx.route("**/*", lambda route: self._serve(route, url, page))
                tab = await ctx.new_page()
                try:
                    await tab.goto(url, wait_until="load", timeout=SETTLE_MS * 3)
                except Exception as exc:
                    log.info("render of %s did not finish loading: %s", url, exc)
                # Pages that never go idle (polling, beacons) are rendered as they stand.
                with contextlib.suppress(Exception):
                    await tab.wait_for_load_state("networkidle", timeout=SETTLE_MS)
                html = await tab.content()
                png = await tab.screenshot(type="png")
                self.rendered += 1
                return str(html), bytes(png)
            finally:
                await ctx.close()

    async def _serve(self, route: Any, home_url: str, page: Page) -> None:
        request = route.request
        target = request.url
        try:
            if target == home_url and request.resource_type == "document":
                headers = {k: v for k, v in page.headers.items() if k.lower() in ("content-type",)}
                await route.fulfill(status=page.status or 200, headers=headers, body=page.body)
                return
            if not target.startswith(("http://", "https://")):
                await route.continue_()
                return
            resp = await self.fetcher.get(target, maxsize=SUB_MAX_BYTES, priority=2)
            headers = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() in ("content-type", "location", "cache-control")
            }
            await route.fulfill(status=resp.status, headers=headers, body=resp.body)
        except Exception as exc:
            log.debug("render sub-request %s failed: %s", target, exc)
            with contextlib.suppress(Exception):  # the page may be gone already
                await route.abort("failed")

    async def aclose(self) -> None:
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        if self._pw is not None:
            await self._pw.stop()
            self._pw = None
