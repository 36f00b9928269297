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
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
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

    @contextlib.asynccontextmanager
    async def _loaded(
        self,
        url: str,
        page: Page,
        width: int,
        *,
        locale: str | None = None,
        kept: Mapping[str, tuple[str, bytes]] | None = None,
        seen: dict[str, tuple[str, bytes]] | None = None,
    ) -> AsyncIterator[Any]:
        """A browser tab with ``url`` loaded and settled, every request answered by :meth:`_serve`."""
        if self.fetcher is None:
            raise RuntimeError("renderer has no fetcher")
        async with self._sem:
            browser = await self._ensure()
            ctx = await browser.new_context(
                user_agent=self.context.config.user_agent,
                ignore_https_errors=True,
                java_script_enabled=True,
                service_workers="block",
                viewport={"width": width, "height": 900},
                locale=locale,
            )
            try:
                await ctx.route("**/*", lambda route: self._serve(route, url, page, kept, seen))
                tab = await ctx.new_page()
                try:
                    await tab.goto(url, wait_until="load", timeout=SETTLE_MS * 3)
                except Exception as exc:
                    log.info("render of %s did not finish loading: %s", url, exc)
                # Pages that never go idle (polling, beacons) are rendered as they stand.
                with contextlib.suppress(Exception):
                    await tab.wait_for_load_state("networkidle", timeout=SETTLE_MS)
                yield tab
            finally:
                await ctx.close()

    async def render(self, url: str, page: Page) -> tuple[str, bytes] | None:
        """The DOM (serialised) and a PNG screenshot of ``url`` after scripts ran."""
        async with self._loaded(url, page, 1280) as tab:
            html = await tab.content()
            png = await tab.screenshot(type="png")
            self.rendered += 1
            return str(html), bytes(png)

    async def _serve(
        self,
        route: Any,
        home_url: str,
        page: Page,
        kept: Mapping[str, tuple[str, bytes]] | None = None,
        seen: dict[str, tuple[str, bytes]] | None = None,
    ) -> None:
        """Answer one browser request: the home document from the capture, a sub-resource the capture
        kept (``kept``: url -> (content type, body)) from the store, anything else through the fetcher.
        ``seen`` collects the images served (the badge image the script inserted is among them)."""
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
            key = _kept_key(target, kept) if kept is not None else None
            if kept is not None and key is not None:
                ctype, body = kept[key]
                await route.fulfill(status=200, headers={"content-type": ctype}, body=body)
                return
            resp = await self.fetcher.get(target, maxsize=SUB_MAX_BYTES, priority=2)
            headers = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() in ("content-type", "location", "cache-control")
            }
            if seen is not None and request.resource_type == "image" and 200 <= resp.status < 300:
                ctype = next((v for k, v in resp.headers.items() if k.lower() == "content-type"), "")
                if len(resp.body) <= SHOT_IMAGE_MAX:
                    seen[target] = (ctype, resp.body)
            await route.fulfill(status=resp.status, headers=headers, body=resp.body)
        except Exception as exc:
            log.debug("render sub-request %s failed: %s", target, exc)
            with contextlib.suppress(Exception):  # the page may be gone already
                await route.abort("failed")

    async def shoot(
        self,
        url: str,
        page: Page,
        targets: list[MarkTarget],
        kept: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> Shot:
        """The page rendered as a visitor sees it, each target's element (or the footer where it should
        be) outlined in red with a caption; a full-page PNG and one cropped PNG per mark.

        The boxes are computed in the page (``MARK_JS``) and drawn as an overlay layer the page cannot
        style: the page's own pixels are untouched. Requests go as in :meth:`render`, except that the
        sub-resources the capture kept are served from ``kept``, so the badge script is the one the
        verdict read.
        """
        seen: dict[str, tuple[str, bytes]] = {}
        async with self._loaded(url, page, SHOT_WIDTH, locale="zh-CN", kept=kept, seen=seen) as tab:
            found = await tab.evaluate(MARK_JS, [t.to_js() for t in targets])
            marks = merge_marks([Mark.from_js(t, raw) for t, raw in zip(targets, found, strict=True)])
            await tab.evaluate(OVERLAY_JS, [m.to_overlay() for m in marks])
            full = bytes(await tab.screenshot(type="png", full_page=True, clip=full_clip(marks)))
            crops: list[bytes] = []
            for m in marks:
                crops.append(bytes(await tab.screenshot(type="png", full_page=True, clip=m.crop)))
            image = None
            badge_src = next((m.image_url for m in marks if m.image_url), "")
            kept_src = _kept_key(badge_src, kept) if badge_src and kept is not None else None
            if badge_src in seen:
                image = (badge_src, *seen[badge_src])
            elif kept is not None and kept_src is not None:
                image = (badge_src, *kept[kept_src])
            self.rendered += 1
            return Shot(full, list(zip(marks, crops, strict=True)), image)

    async def aclose(self) -> None:
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        if self._pw is not None:
            await self._pw.stop()
            self._pw = None


# --- marked screenshots (crawler/screenshots.py) ----------------------------------------------------

SHOT_WIDTH = 1280
SHOT_IMAGE_MAX = 512 * 1024
CROP_MARGIN = 160  # pixels of context around a marked element
CROP_MIN_W, CROP_MIN_H = 640, 280
SHOT_MAX_HEIGHT = 10_000  # pixels of a full-page screenshot, unless a mark lies lower


def _kept_key(target: str, kept: Mapping[str, tuple[str, bytes]]) -> str | None:
    """The key of ``kept`` that ``target`` asks for (a protocol-relative script is kept under the
    scheme the page used; the browser may ask for either)."""
    if target in kept:
        return target
    for scheme in ("http:", "https:"):
        other = (scheme + target.split(":", 1)[1]) if ":" in target else target
        if other in kept:
            return other
    return None


@dataclass(frozen=True, slots=True)
class MarkTarget:
    """What to outline for one failing check: CSS ``selectors`` of the element it is about, or
    ``texts`` (the element whose text holds one of them); else the footer; ``label`` captions the mark
    when the element was found, ``absent`` when only the footer (where it should be) is marked."""

    key: str
    label: str
    absent: str
    selectors: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()

    def to_js(self) -> dict[str, Any]:
        return {"selectors": list(self.selectors), "texts": [t for t in self.texts if t]}


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a target was found: ``found`` is ``element``, ``footer`` or ``page`` (the page's bottom
    band, when it has no footer either); ``box`` is x, y, width, height in page pixels."""

    key: str
    found: str
    box: tuple[int, int, int, int]
    caption: str
    image_url: str = ""
    page_size: tuple[int, int] = (SHOT_WIDTH, 900)

    @classmethod
    def from_js(cls, target: MarkTarget, raw: Mapping[str, Any]) -> Mark:
        box = raw.get("box") or [0, 0, SHOT_WIDTH, 240]
        x, y, w, h = (max(0, round(float(v))) for v in box)
        found = str(raw.get("found") or "page")
        size = raw.get("size") or [SHOT_WIDTH, 900]
        return cls(
            target.key,
            found,
            (x, y, max(w, 1), max(h, 1)),
            target.label if found == "element" else target.absent,
            str(raw.get("image") or ""),
            (max(1, int(size[0])), max(1, int(size[1]))),
        )

    def to_overlay(self) -> dict[str, Any]:
        return {"box": list(self.box), "caption": self.caption}

    @property
    def crop(self) -> dict[str, float]:
        """The region cut out around the mark (inside the page)."""
        x, y, w, h = self.box
        pw, ph = self.page_size
        cw = min(pw, max(CROP_MIN_W, w + 2 * CROP_MARGIN))
        ch = min(ph, max(CROP_MIN_H, h + 2 * CROP_MARGIN))
        left = min(max(0, x + w // 2 - cw // 2), max(0, pw - cw))
        top = min(max(0, y + h // 2 - ch // 2 - 20), max(0, ph - ch))  # the caption sits above the box
        return {"x": float(left), "y": float(top), "width": float(cw), "height": float(ch)}


@dataclass
class Shot:
    """A marked rendering: the full page, a crop per mark, and the CONAC badge image the page showed
    (url, content type, bytes), if any."""

    full: bytes
    crops: list[tuple[Mark, bytes]] = field(default_factory=list)
    badge_image: tuple[str, str, bytes] | None = None


def full_clip(marks: list[Mark]) -> dict[str, float] | None:
    """The whole page, or, for a page taller than :data:`SHOT_MAX_HEIGHT`, its top down to below the
    lowest mark (an endless news page would make a picture no one can open)."""
    if not marks:
        return None
    width, height = marks[0].page_size
    if height <= SHOT_MAX_HEIGHT:
        return None
    lowest = max(m.box[1] + m.box[3] for m in marks) + CROP_MARGIN
    return {
        "x": 0.0,
        "y": 0.0,
        "width": float(width),
        "height": float(min(height, max(SHOT_MAX_HEIGHT, lowest))),
    }


def merge_marks(marks: list[Mark]) -> list[Mark]:
    """Marks on the same box become one (keys joined by ``,``, captions by ``；``): two checks missing
    from the same footer get one frame and one crop."""
    out: dict[tuple[int, int, int, int], Mark] = {}
    for m in marks:
        prev = out.get(m.box)
        out[m.box] = (
            m
            if prev is None
            else replace(
                prev,
                key=f"{prev.key},{m.key}",
                caption=f"{prev.caption}；{m.caption}",
                image_url=prev.image_url or m.image_url,
            )
        )
    return list(out.values())


# Runs in the page: for each target, the first visible element matching a selector, else the smallest
# visible element whose own text holds one of the texts, else the footer, else the page's bottom band.
# Returns boxes in page coordinates, the page size, and the badge image's address when one is shown.
MARK_JS = r"""
(targets) => {
  const sx = window.scrollX, sy = window.scrollY;
  const doc = document.documentElement;
  const W = Math.max(doc.scrollWidth, document.body ? document.body.scrollWidth : 0, window.innerWidth);
  const H = Math.max(doc.scrollHeight, document.body ? document.body.scrollHeight : 0, window.innerHeight);
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    return r.width > 2 && r.height > 2 && st.visibility !== "hidden" && st.display !== "none";
  };
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return [r.left + sx, r.top + sy, r.width, r.height];
  };
  const bySelector = (sels) => {
    for (const sel of sels) {
      let list = [];
      try { list = Array.from(document.querySelectorAll(sel)); } catch (e) { continue; }
      const el = list.find(visible);
      if (el) return el;
    }
    return null;
  };
  const byText = (texts) => {
    if (!texts.length || !document.body) return null;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      const text = (node.textContent || "").replace(/\s+/g, "");
      if (!texts.some((t) => text.includes(t.replace(/\s+/g, "")))) continue;
      let el = node.parentElement;
      while (el && !visible(el)) el = el.parentElement;
      if (el) return el;
    }
    return null;
  };
  const footer = () => {
    const sels = ["footer", "#footer", ".footer", "[id*=foot i]", "[class*=foot i]",
                  "[id*=bottom i]", "[class*=bottom i]"];
    for (const sel of sels) {
      const list = Array.from(document.querySelectorAll(sel)).filter(visible);
      if (list.length) return list[list.length - 1];
    }
    return null;
  };
  const badgeImage = () => {
    const img = document.querySelector("#imgConac") ||
      document.querySelector("#_ideConac img, ._ideConac img, a[href*='bszs.conac.cn'] img, " +
                             "img[src*='conac.cn']");
    return img && img.currentSrc ? img.currentSrc : "";
  };
  return targets.map((t) => {
    let el = bySelector(t.selectors) || byText(t.texts);
    let found = "element";
    if (!el) { el = footer(); found = "footer"; }
    const out = { found: el ? found : "page", size: [W, H], image: badgeImage() };
    out.box = el ? box(el) : [0, Math.max(0, H - 240), W, 240];
    return out;
  });
}
"""

# Draws the marks above everything (a closed shadow root: the page's styles cannot reach them).
OVERLAY_JS = r"""
(marks) => {
  const host = document.createElement("div");
  host.style.cssText = "position:absolute;left:0;top:0;width:0;height:0;" +
    "z-index:2147483647;pointer-events:none";
  const root = host.attachShadow({ mode: "closed" });
  for (const m of marks) {
    const [x, y, w, h] = m.box;
    const frame = document.createElement("div");
    frame.style.cssText = `position:absolute;left:${x - 6}px;top:${y - 6}px;` +
      `width:${w + 12}px;height:${h + 12}px;border:4px solid #d00000;box-sizing:border-box;` +
      "border-radius:4px;box-shadow:0 0 0 3px rgba(255,255,255,.85)";
    const cap = document.createElement("div");
    cap.textContent = m.caption;
    cap.style.cssText = `position:absolute;left:${Math.max(0, x - 6)}px;top:${Math.max(0, y - 34)}px;` +
      "background:#d00000;color:#fff;font:bold 15px/26px 'Noto Sans CJK SC','Microsoft YaHei',sans-serif;" +
      "padding:0 8px;border-radius:3px;white-space:nowrap";
    root.append(frame, cap);
  }
  document.documentElement.appendChild(host);
}
"""
