"""The evidence behind verdicts, ready to show: findings grouped by capture, the captured source with
the badge snippet and the ICP line highlighted, DNS answers, the HTTP chain and response headers.

Offsets in a finding's evidence (``source == "home"``) are character offsets into the home page as
:func:`checks.page.decode_body` decodes it; the source shown here is decoded the same way, so the
highlight lands on exactly the characters the check read. An excerpt without offsets (or whose
offsets no longer match) is looked up by its text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from checks.page import decode_body
from checks.reasons import UnknownReasonError, describe
from storage.evidence import BlobNotFoundError, EvidenceStore
from storage.models import AnnualReport, Capture, Domain, Finding, Scan, Unit, Website

# Past this size the source view shows windows around the highlights instead of the whole page.
FULL_SOURCE_LIMIT = 400_000
WINDOW = 2_000
HIGHLIGHT_CLASS = {"badge": "hl-badge", "icp": "hl-icp", "police": "hl-police", "site_code": "hl-sitecode"}
STATUS_LABELS = {"pass": "通过", "fail": "不合规", "warn": "提示", "unknown": "无法判定"}


def reason_message(code: str) -> str:
    try:
        return describe(code).message
    except UnknownReasonError:
        return code


@dataclass(slots=True)
class FindingView:
    finding: Finding
    message: str
    subject_label: str
    highlighted: bool  # its evidence is marked in the source shown

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.finding.status, self.finding.status)


@dataclass(slots=True)
class CaptureView:
    capture: Capture
    findings: list[FindingView] = field(default_factory=list)
    headers: dict[str, Any] = field(default_factory=dict)
    source: Markup = field(default_factory=Markup)
    source_note: str = ""
    other_evidence: list[dict[str, Any]] = field(default_factory=list)  # script/bszs/dns/http excerpts
    has_body: bool = False
    has_screenshot: bool = False
    has_rendered: bool = False
    missing: list[str] = field(default_factory=list)  # blobs no longer in the store


def _locate(text: str, ev: dict[str, Any]) -> tuple[int, int] | None:
    excerpt = str(ev.get("excerpt") or "")
    start, end = ev.get("start"), ev.get("end")
    if (
        isinstance(start, int)
        and isinstance(end, int)
        and 0 <= start < end <= len(text)
        and (not excerpt or text[start:end] == excerpt)
    ):
        return start, end
    if excerpt:
        at = text.find(excerpt)
        if at >= 0:
            return at, at + len(excerpt)
    return None


def highlight(text: str, spans: list[tuple[int, int, str, str]]) -> Markup:
    """``text`` escaped, with each (start, end, css class, title) span wrapped in ``<mark>``.

    Overlapping spans are clipped to the earlier one; marks get ids ``hl-N`` to link to.
    """
    spans = sorted(spans)
    out: list[str] = []
    pos = 0
    n = 0
    for start, end, cls, title in spans:
        start = max(start, pos)
        if start >= end:
            continue
        out.append(str(escape(text[pos:start])))
        n += 1
        out.append(
            f'<mark id="hl-{n}" class="{escape(cls)}" title="{escape(title)}">'
            f"{escape(text[start:end])}</mark>"
        )
        pos = end
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


def _windows(
    text: str, spans: list[tuple[int, int, str, str]]
) -> tuple[str, list[tuple[int, int, str, str]]]:
    """A long page cut to windows around the spans (offsets shifted), gaps shown as a marker line."""
    ranges: list[list[int]] = []
    for start, end, _, _ in sorted(spans):
        lo, hi = max(0, start - WINDOW), min(len(text), end + WINDOW)
        if ranges and lo <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], hi)
        else:
            ranges.append([lo, hi])
    if not ranges:
        ranges = [[0, min(len(text), 4 * WINDOW)]]
    pieces: list[str] = []
    shifted: list[tuple[int, int, str, str]] = []
    offset = 0
    for lo, hi in ranges:
        gap = (
            f"\n…… 省略 {lo} 字符之前的内容 ……\n"
            if lo and not pieces
            else ("\n…… 省略 ……\n" if pieces else "")
        )
        pieces.append(gap)
        offset += len(gap)
        for start, end, cls, title in spans:
            if lo <= start and end <= hi:
                shifted.append((start - lo + offset, end - lo + offset, cls, title))
        pieces.append(text[lo:hi])
        offset += hi - lo
    return "".join(pieces), shifted


def decoded_body(store: EvidenceStore, cap: Capture) -> tuple[str, dict[str, Any]]:
    """The capture's home page decoded as the checks decoded it, and the response metadata."""
    meta: dict[str, Any] = {}
    if cap.headers_blob:
        try:
            raw = store.get_json(cap.headers_blob)
            meta = raw if isinstance(raw, dict) else {}
        except (BlobNotFoundError, ValueError):
            meta = {}
    headers = meta.get("headers") or {}
    ctype = (
        next((str(v) for k, v in headers.items() if str(k).lower() == "content-type"), "")
        if isinstance(headers, dict)
        else ""
    )
    text, _enc = decode_body(store.get(cap.body_blob), ctype)
    return text, meta


def capture_view(store: EvidenceStore, cap: Capture, findings: list[FindingView]) -> CaptureView:
    view = CaptureView(cap, findings)
    view.has_screenshot = bool(cap.screenshot_blob) and store.exists(cap.screenshot_blob)
    view.has_rendered = bool(cap.rendered_blob) and store.exists(cap.rendered_blob)
    if not cap.body_blob:
        view.source_note = "本次访问没有取得页面内容" + (f"（{cap.error}）" if cap.error else "")
    else:
        try:
            text, view.headers = decoded_body(store, cap)
            view.has_body = True
        except BlobNotFoundError:
            view.missing.append(cap.body_blob)
            view.source_note = "页面内容已按保存期限清理，无法显示"
            text = ""
        spans: list[tuple[int, int, str, str]] = []
        for fv in findings:
            f = fv.finding
            for ev in f.evidence or []:
                if not isinstance(ev, dict):
                    continue
                if ev.get("source") == "home" and text:
                    where = _locate(text, ev)
                    if where is not None:
                        spans.append((*where, HIGHLIGHT_CLASS.get(f.check, "hl-other"), fv.message))
                        fv.highlighted = True
                        continue
                view.other_evidence.append({"check": f.check, **ev})
        if text:
            if len(text) > FULL_SOURCE_LIMIT:
                text, spans = _windows(text, spans)
                view.source_note = "页面较大，仅显示标出内容前后的部分"
            view.source = highlight(text, spans)
    return view


def _subject_labels(session: Session, findings: list[Finding]) -> dict[int, str]:
    site_ids = {f.website_id for f in findings if f.website_id is not None}
    dom_ids = {f.domain_id for f in findings if f.domain_id is not None}
    sites = (
        {w.id: w for w in session.scalars(sa.select(Website).where(Website.id.in_(site_ids)))}
        if site_ids
        else {}
    )
    doms = (
        {d.id: d for d in session.scalars(sa.select(Domain).where(Domain.id.in_(dom_ids)))} if dom_ids else {}
    )
    out: dict[int, str] = {}
    for f in findings:
        if f.website_id in sites:
            w = sites[f.website_id]
            out[f.id] = f"网站 {w.name or w.url}（{w.url}）"
        elif f.domain_id in doms:
            out[f.id] = f"域名 {doms[f.domain_id].name}"
        else:
            out[f.id] = f.subject
    return out


def group_by_capture(
    session: Session, store: EvidenceStore, findings: list[Finding]
) -> tuple[list[CaptureView], list[FindingView]]:
    """Findings grouped under the capture each rests on; findings without a capture listed apart."""
    labels = _subject_labels(session, findings)
    views = [FindingView(f, reason_message(f.reason), labels.get(f.id, f.subject), False) for f in findings]
    by_cap: dict[int, list[FindingView]] = {}
    loose: list[FindingView] = []
    for fv in views:
        if fv.finding.capture_id is None:
            loose.append(fv)
        else:
            by_cap.setdefault(fv.finding.capture_id, []).append(fv)
    caps = (
        {c.id: c for c in session.scalars(sa.select(Capture).where(Capture.id.in_(list(by_cap))))}
        if by_cap
        else {}
    )
    out = []
    for cap_id in sorted(by_cap):
        cap = caps.get(cap_id)
        if cap is None:
            loose.extend(by_cap[cap_id])
            continue
        out.append(capture_view(store, cap, by_cap[cap_id]))
    return out, loose


def report_findings(
    session: Session, report: AnnualReport, derived: tuple[dict[str, Any], ...] | None = None
) -> list[Finding]:
    """What a report's review rests on: the findings behind derived fields 3 and 5 (the stored ones,
    or ``derived`` as computed now), and the latest finding of every check of each of the unit's
    websites (ICP, 公安, 标识码 beside the badge)."""
    ids: set[int] = set()
    for fields in derived if derived is not None else (report.derived_domains, report.derived_badge):
        for x in fields.get("finding_ids", []) or []:
            if isinstance(x, int):
                ids.add(x)
    unit: Unit = report.unit
    site_ids = [w.id for w in unit.websites]
    if site_ids:
        latest = session.execute(
            sa.select(Finding.website_id, sa.func.max(Finding.scan_id))
            .join(Scan, Scan.id == Finding.scan_id)
            .where(Finding.website_id.in_(site_ids), Scan.status == "finished")
            .group_by(Finding.website_id)
        ).all()
        for site_id, scan_id in latest:
            ids.update(
                session.scalars(
                    sa.select(Finding.id).where(Finding.website_id == site_id, Finding.scan_id == scan_id)
                )
            )
    if not ids:
        return []
    return list(session.scalars(sa.select(Finding).where(Finding.id.in_(ids)).order_by(Finding.id)))


def shown_record(
    captures: list[CaptureView], loose: list[FindingView], report: AnnualReport, disagreements: list[str]
) -> dict[str, Any]:
    """The audit record of what the review page showed (ids and blob keys, not the content)."""
    return {
        "finding_ids": sorted(
            {fv.finding.id for cv in captures for fv in cv.findings} | {fv.finding.id for fv in loose}
        ),
        "captures": [
            {
                "id": cv.capture.id,
                "scan_id": cv.capture.scan_id,
                "url": cv.capture.url,
                "body_blob": cv.capture.body_blob,
                "headers_blob": cv.capture.headers_blob,
                "screenshot_blob": cv.capture.screenshot_blob,
            }
            for cv in captures
        ],
        "derived": {
            "domains_status": report.derived_domains.get("value"),
            "badge_displayed": report.derived_badge.get("value"),
        },
        "disagreements": disagreements,
    }


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
