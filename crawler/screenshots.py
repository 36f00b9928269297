"""Marked screenshots for confirmed page-check failures: the evidence of record an official can judge.

A confirmed failure of a page check (badge, ICP, 公安, 标识码) is shown to offices and reviewers, who
must see what a visitor sees: the page rendered in Chromium (scripts run, so the badge the CONAC script
writes is there), the element the check is about outlined in red — or the footer, where a missing
badge or number should be — with a crop of that place beside the full page, and the CONAC image the
badge script showed (red/blue, or the error image), kept as it was served.

The home page is the capture's own bytes and the sub-resources the capture kept (the badge script, the
verification page) come from the evidence store, so the screenshot shows what the verdict read; the
rest (images, styles) is fetched through the scan's resolver and address guard
(:class:`crawler.inspect.AiohttpFetcher`). The blobs are recorded in ``Capture.shots`` (kept and pruned
with the capture). A capture whose page will not render is tried ``screenshot_attempts`` times, then
recorded with the reason, in Chinese.

Run after the confirmation stage (``scheduler.py``) and by the demo: :func:`shoot_confirmed`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from checks.page import Page
from checks.reasons import CHECK_LABELS
from crawler.context import build_context
from crawler.inspect import AiohttpFetcher
from crawler.render import MarkTarget, Renderer, Shot
from storage.config import Config
from storage.db import make_engine
from storage.evidence import BlobNotFoundError, EvidenceStore
from storage.models import Capture, Finding, Website

log = logging.getLogger(__name__)

#: The checks read from the page itself: their failures get a marked screenshot.
PAGE_CHECKS = ("badge", "icp", "police", "site_code")

#: Where each check's element is looked for in the rendered page. The badge: the span the CONAC script
#: fills, its image, or a link to the verification page; the numbers: the element showing them.
BADGE_SELECTORS = (
    "#imgConac",
    "#_ideConac img",
    "._ideConac img",
    "a[href*='bszs.conac.cn'] img",
    "img[src*='conac.cn']",
    "#_ideConac",
    "a[href*='bszs.conac.cn']",
)
# The page checks whose confirmed failures get a screenshot of record.
PAGE_CHECKS = ("badge", "icp", "police", "site_code")
#: Failures that say the thing is not shown at all: the footer, where it belongs, is marked as its place.
#: For the others the thing is there; if the browser cannot locate it, the caption says only that.
ABSENT = frozenset(
    {
        "badge.missing",
        "badge.never_renders",
        "badge.mixed_content",
        "icp.missing",
        "police.missing",
        "site_code.missing",
    }
)
HINTS = {
    "icp": ("ICP备", "ICP证"),
    "police": ("公网安备", "公安备案", "公安机关备案"),
    "site_code": ("标识码",),
}


@dataclass
class ShotSummary:
    """What one pass did: captures that needed a screenshot, how many were taken, failed, left."""

    pending: int = 0
    taken: int = 0
    failed: int = 0
    left: int = 0
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for a terminal, in Chinese."""
        if not self.pending:
            return "没有需要截图的已确认问题"
        text = f"已为 {self.taken} 次访问的已确认问题截图（标出问题位置）"
        if self.failed:
            text += f"，{self.failed} 次未能截图（原因已记录）"
        if self.left:
            text += f"，{self.left} 次留待下次"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "taken": self.taken,
            "failed": self.failed,
            "left": self.left,
            "errors": self.errors[:20],
        }


def target_for(finding: Finding, website: Website | None) -> MarkTarget:
    """What to outline for a failing ``finding``: its element, found by selector or by the text the
    check read (the number shown, the registered one, the label words)."""
    name = CHECK_LABELS[finding.check]
    label = f"问题所在：{name}"
    if finding.reason in ABSENT:
        absent = f"{name}应显示在此处（页面底部），未显示"
    else:
        absent = f"未能在页面上定位{name}，标出的是页面底部"
    if finding.check == "badge":
        return MarkTarget("badge", label, absent, selectors=BADGE_SELECTORS)
    data = finding.data or {}
    texts: list[str] = []
    for key in ("number", "value"):
        if isinstance(data.get(key), str) and data[key]:
            texts.append(data[key])
    for ev in finding.evidence or []:
        excerpt = str(ev.get("excerpt") or "") if isinstance(ev, dict) else ""
        if ev.get("source") == "home" and 0 < len(excerpt) <= 80 and "<" not in excerpt:
            texts.append(excerpt)
    if website is not None:
        registered = {"icp": website.icp, "police": website.police_record, "site_code": website.site_code}
        if registered.get(finding.check):
            texts.append(registered[finding.check])
    texts.extend(HINTS.get(finding.check, ()))
    return MarkTarget(finding.check, label, absent, texts=tuple(dict.fromkeys(texts)))


def pending(db: Engine, scan_id: int | None, attempts: int) -> dict[int, list[int]]:
    """Captures behind confirmed page-check failures (of ``scan_id``, or of every scan) that have no
    marked screenshot yet and were tried fewer than ``attempts`` times: capture id -> finding ids."""
    query = (
        sa.select(Finding.capture_id, Finding.id, Capture.shots)
        .join(Capture, Capture.id == Finding.capture_id)
        .where(
            Finding.status == "fail",
            Finding.confirmed.is_(True),
            Finding.check.in_(PAGE_CHECKS),
        )
    )
    if scan_id is not None:
        query = query.where(Finding.scan_id == scan_id)
    out: dict[int, list[int]] = {}
    with db.connect() as conn:
        for cap_id, finding_id, shots in conn.execute(query.order_by(Finding.capture_id, Finding.id)):
            shots = shots or {}
            if shots.get("full") or int(shots.get("attempts") or 0) >= attempts:
                continue
            out.setdefault(int(cap_id), []).append(int(finding_id))
    return out


def _page_of(cap: Capture, store: EvidenceStore) -> tuple[Page, dict[str, tuple[str, bytes]]]:
    """The capture's home page (its own bytes and headers) and the sub-resources it kept."""
    meta: dict[str, Any] = {}
    if cap.headers_blob:
        raw = store.get_json(cap.headers_blob)
        meta = raw if isinstance(raw, dict) else {}
    body = store.get(cap.body_blob)
    headers = meta.get("headers") if isinstance(meta.get("headers"), dict) else {}
    page = Page(url=cap.final_url or cap.url, body=body, headers=headers or {}, status=cap.status or 200)
    kept: dict[str, tuple[str, bytes]] = {}
    for url, rec in (cap.subresources or {}).items():
        if isinstance(rec, dict) and rec.get("blob") and str(url).startswith(("http://", "https://")):
            try:
                kept[str(url)] = (str(rec.get("content_type") or ""), store.get(str(rec["blob"])))
            except BlobNotFoundError:
                continue
    return page, kept


def _record(shot: Shot, store: EvidenceStore, findings: list[Finding], attempts: int) -> dict[str, Any]:
    crops = []
    for mark, png in shot.crops:
        crops.append(
            {
                "checks": mark.key.split(","),
                "blob": store.put(png),
                "found": mark.found,
                "caption": mark.caption,
                "box": list(mark.box),
            }
        )
    out: dict[str, Any] = {
        "full": store.put(shot.full),
        "crops": crops,
        "finding_ids": [f.id for f in findings],
        "taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "attempts": attempts,
    }
    if shot.badge_image is not None:
        url, ctype, body = shot.badge_image
        out["badge_image"] = {"url": url, "content_type": ctype, "blob": store.put(body)}
    return out


async def _shoot_all(
    db: Engine, store: EvidenceStore, config: Config, todo: dict[int, list[int]], summary: ShotSummary
) -> None:
    ctx = build_context(config)
    fetcher = AiohttpFetcher(ctx)
    renderer = Renderer(ctx, fetcher)
    try:
        # The renderer lets two pages render at once; the rest wait for a tab.
        await asyncio.gather(
            *(_shoot_one(db, store, renderer, cap_id, ids, summary) for cap_id, ids in todo.items())
        )
    finally:
        await renderer.aclose()
        await fetcher.close()


async def _shoot_one(
    db: Engine,
    store: EvidenceStore,
    renderer: Renderer,
    cap_id: int,
    finding_ids: list[int],
    summary: ShotSummary,
) -> None:
    """Render, mark and store one capture's screenshots (or why there are none) in ``Capture.shots``.

    No database transaction stays open while the browser works: other captures are written meanwhile
    (SQLite lets one writer in at a time)."""
    with Session(db, expire_on_commit=False) as s:
        cap = s.get(Capture, cap_id)
        if cap is None:
            return
        findings = list(s.scalars(sa.select(Finding).where(Finding.id.in_(finding_ids))))
        site = s.get(Website, cap.website_id) if cap.website_id is not None else None
        s.expunge_all()
    tries = int((cap.shots or {}).get("attempts") or 0) + 1
    targets = [target_for(f, site) for f in findings if f.check in PAGE_CHECKS]
    try:
        if not cap.body_blob:
            raise _NoPage("这次访问没有取得页面内容，无法截图")
        page, kept = _page_of(cap, store)
        shot = await renderer.shoot(page.url, page, targets, kept)
        shots = _record(shot, store, findings, tries)
        summary.taken += 1
    except BlobNotFoundError:
        shots = _failed("页面内容已按保存期限清理，无法截图", tries)
        summary.failed += 1
    except _NoPage as exc:
        shots = _failed(str(exc), tries)
        summary.failed += 1
    except Exception as exc:  # one page must not stop the others; the log says why
        log.warning("screenshot of capture %s (%s) failed: %r", cap_id, cap.url, exc)
        summary.errors.append(f"capture {cap_id}: {type(exc).__name__}: {exc}"[:300])
        shots = _failed("截图时网页未能在浏览器中打开，将在下次截图任务中再试", tries)
        summary.failed += 1
    with db.begin() as conn:
        conn.execute(sa.update(Capture).where(Capture.id == cap_id).values(shots=shots))


class _NoPage(Exception):
    """A capture with nothing to render (the message is for users)."""


def _failed(why: str, attempts: int) -> dict[str, Any]:
    return {
        "error": why,
        "attempts": attempts,
        "taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def shoot_scan(config: Config, scan_id: int | None = None) -> ShotSummary:
    """:func:`shoot_confirmed` on ``config``'s database (the demo's and the scheduler's entry)."""
    db = make_engine(config.database_url)
    try:
        return shoot_confirmed(db, config, scan_id)
    finally:
        db.dispose()


def shoot_confirmed(
    db: Engine, config: Config, scan_id: int | None = None, store: EvidenceStore | None = None
) -> ShotSummary:
    """Take the marked screenshots still missing for the confirmed page-check failures of ``scan_id``
    (every scan when None), at most ``config.screenshot_limit`` captures per call."""
    summary = ShotSummary()
    todo = pending(db, scan_id, max(1, config.screenshot_attempts))
    summary.pending = len(todo)
    limit = max(0, config.screenshot_limit)
    chosen = dict(list(todo.items())[:limit])
    summary.left = len(todo) - len(chosen)
    if not chosen:
        return summary
    if not Path(config.chromium_path).is_file():
        log.warning("no screenshots: Chromium not found at %s", config.chromium_path)
        summary.left = len(todo)
        summary.errors.append(f"chromium not found: {config.chromium_path}")
        return summary
    store = store or EvidenceStore(config.evidence_dir)
    work = _shoot_all(db, store, config, chosen, summary)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(work)
    else:
        # Called where an event loop runs already (an async caller, Playwright's sync API): the browser
        # work gets a thread and a loop of its own.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, work).result()
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m crawler.screenshots [--config FILE] [--scan ID]``: take the missing screenshots after a
    scan run by hand (the nightly chain and the demo take them by themselves)."""
    parser = argparse.ArgumentParser(description="为已确认的网页问题截图（标出问题位置）")
    parser.add_argument("--config", default=None, help="配置文件（默认 ./badgewatch.toml）")
    parser.add_argument("--scan", type=int, default=None, help="只处理该巡检（默认：所有巡检）")
    args = parser.parse_args(argv)
    summary = shoot_scan(Config.load(args.config), args.scan)
    print(summary.describe())
    return 1 if summary.failed and not summary.taken else 0


if __name__ == "__main__":
    raise SystemExit(main())
