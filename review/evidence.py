"""The evidence behind verdicts, ready to show: findings grouped by capture, the captured source with
the badge snippet and the ICP line highlighted, DNS answers, the HTTP chain and response headers.

What an official reads is in Chinese and in plain words: checks and subjects by name (the site's name
and address, a domain in Chinese with its punycode beside it), times in Beijing time, and an
explanation instead of a network exception's text. The capture a failure rests on comes first, with
its marked screenshots (``Capture.shots``, crawler/screenshots.py); captures where everything passed
come last and are folded (``CaptureView.passing``).

Offsets in a finding's evidence (``source == "home"``) are character offsets into the home page as
:func:`checks.page.decode_body` decodes it; the source shown here is decoded the same way, so the
highlight lands on exactly the characters the check read. An excerpt without offsets (or whose
offsets no longer match) is looked up by its text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from checks.domains import DomainKind
from checks.page import decode_body
from checks.reasons import CHECK_LABELS, UnknownReasonError, describe
from storage.evidence import BlobNotFoundError, EvidenceStore
from storage.models import AnnualReport, Capture, Domain, Finding, Scan, Unit, Website
from storage.readable import explain_error, readable_detail
from storage.timefmt import fmt_time

# Checks read from the page: their confirmed failures get marked screenshots (crawler/screenshots.py).
SHOT_CHECKS = frozenset({"badge", "icp", "police", "site_code"})
# Past this size the source view shows windows around the highlights instead of the whole page.
FULL_SOURCE_LIMIT = 400_000
WINDOW = 2_000
HIGHLIGHT_CLASS = {"badge": "hl-badge", "icp": "hl-icp", "police": "hl-police", "site_code": "hl-sitecode"}
STATUS_LABELS = {"pass": "通过", "fail": "不合规", "warn": "提示", "unknown": "无法判定"}
# Evidence is shown in Beijing time (what officials read; storage keeps UTC).
RCODE_LABELS = {
    "NOERROR": "正常",
    "NXDOMAIN": "域名不存在",
    "SERVFAIL": "域名服务器出错",
    "REFUSED": "域名服务器拒绝查询",
    "TIMEOUT": "查询超时",
}
# A network failure explained (first match wins) instead of the exception's text: the hop errors of an
# HTTP chain are these kinds (checks.http.FetchError), a capture's error is free text from the crawler.
def reason_message(code: str) -> str:
    """The reason in words; a code the catalogue no longer knows is not shown as such."""
    try:
        return describe(code).message
    except UnknownReasonError:
        return "巡检结论（该结论的说明已不在当前版本中，请联系技术人员）"


def source_label(source: str) -> str:
    """Where an excerpt was read, in words (``script:<url>`` → 脚本 <url>)."""
    kind, _, rest = source.partition(":")
    names = {
        "home": "首页",
        "rendered": "浏览器渲染后的页面",
        "script": "脚本",
        "bszs": "标识核验页面",
        "image": "图片",
        "dns": "域名解析记录",
        "http": "访问记录",
        "frame": "框架页",
    }
    name = names.get(kind, "其他来源")
    return f"{name} {host_display(rest)[0]}" if rest else name


def beijing(when: dt.datetime | None, seconds: bool = True) -> str:
    """``when`` (UTC) as Beijing time, e.g. ``2026-12-04 23:05:07``; "" for None."""
    return fmt_time(when, seconds=seconds)


def host_display(url: str) -> tuple[str, str]:
    """``url`` with its host in Unicode (中文域名 as written) and the punycode host ("" if the same)."""
    m = re.match(r"^([a-z][a-z0-9+.-]*://)([^/:?#]+)(.*)$", url, re.IGNORECASE)
    if not m:
        return url, ""
    scheme, host, rest = m.groups()
    uni = unicode_host(host)
    return scheme + uni + rest, (host if uni != host else "")


def unicode_host(host: str) -> str:
    labels = []
    for label in host.split("."):
        if label.lower().startswith("xn--"):
            try:
                labels.append(label.encode("ascii").decode("idna"))
            except (UnicodeError, ValueError):
                labels.append(label)
        else:
            labels.append(label)
    return ".".join(labels)


@dataclass(slots=True)
class FindingView:
    finding: Finding
    message: str
    subject_label: str
    highlighted: bool  # its evidence is marked in the source shown
    subject_note: str = ""  # small print beside the subject (punycode of a domain)

    @property
    def status_label(self) -> str:
        if self.finding.status == "fail" and not self.finding.confirmed:
            return "待确认"
        return STATUS_LABELS.get(self.finding.status, self.finding.status)

    @property
    def status_class(self) -> str:
        return (
            "pending" if self.finding.status == "fail" and not self.finding.confirmed else self.finding.status
        )

    @property
    def check_label(self) -> str:
        return CHECK_LABELS.get(self.finding.check, "其他检查")

    @property
    def detail(self) -> str:
        """The finding's detail for people: a program's message becomes an explanation."""
        text = self.finding.detail or ""
        return readable_detail(text)

    @property
    def advice(self) -> str:
        try:
            return describe(self.finding.reason).advice
        except UnknownReasonError:
            return ""


@dataclass(slots=True)
class ShotView:
    """One crop of a marked screenshot: which checks, what the mark says, where it came from."""

    index: int
    checks: str  # check names in Chinese, joined
    caption: str
    found: str  # element | footer | page


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
    title: str = ""  # the subject in words: 网站 name, 中文域名 name
    url_shown: str = ""  # the visited address with its host in Unicode
    url_puny: str = ""  # its punycode host when that differs
    final_shown: str = ""  # where the visit ended, host in Unicode
    when: str = ""  # Beijing time of the visit
    error_text: str = ""  # why no page came back, in words
    hops: list[dict[str, Any]] = field(default_factory=list)  # the HTTP chain, errors explained
    answers: list[dict[str, Any]] = field(default_factory=list)  # DNS answers, rcodes explained
    headers_text: str = ""
    shots: list[ShotView] = field(default_factory=list)
    has_full_shot: bool = False
    has_badge_image: bool = False
    badge_image_name: str = ""  # e.g. red_error.png: the image the badge script showed
    shots_note: str = ""  # why there is no marked screenshot

    @property
    def failing(self) -> bool:
        return any(fv.finding.status == "fail" for fv in self.findings)

    @property
    def confirmed_failing(self) -> bool:
        return any(fv.finding.status == "fail" and fv.finding.confirmed for fv in self.findings)

    @property
    def passing(self) -> bool:
        """Everything on this visit passed: shown folded, after the rest."""
        return all(fv.finding.status == "pass" for fv in self.findings)

    @property
    def rank(self) -> tuple[int, int, int]:
        order = 0 if self.confirmed_failing else 1 if self.failing else 3 if self.passing else 2
        return (order, -self.capture.scan_id, -self.capture.id)


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


def _shots(store: EvidenceStore, view: CaptureView) -> None:
    shots = view.capture.shots or {}
    page_fails = [
        fv for fv in view.findings if fv.finding.status == "fail" and fv.finding.check in SHOT_CHECKS
    ]
    if shots.get("full") and store.exists(str(shots["full"])):
        view.has_full_shot = True
        for i, crop in enumerate(shots.get("crops") or []):
            if isinstance(crop, dict) and crop.get("blob") and store.exists(str(crop["blob"])):
                names = "、".join(CHECK_LABELS.get(str(c), "其他检查") for c in crop.get("checks") or [])
                view.shots.append(
                    ShotView(i, names, str(crop.get("caption") or ""), str(crop.get("found") or ""))
                )
        image = shots.get("badge_image")
        badge_failed = any(fv.finding.check == "badge" for fv in page_fails)
        if (
            badge_failed
            and isinstance(image, dict)
            and image.get("blob")
            and store.exists(str(image["blob"]))
        ):
            view.has_badge_image = True
            view.badge_image_name = str(image.get("url") or "").rsplit("/", 1)[-1]
    elif shots.get("full"):
        view.shots_note = "截图已按保存期限清理"
    elif shots.get("error"):
        view.shots_note = str(shots["error"])
    elif any(fv.finding.confirmed for fv in page_fails):
        view.shots_note = "截图尚未生成（确认后的下一次截图任务完成后显示）"


def shot_key(cap: Capture, part: str) -> str:
    """The blob key of a capture's image ``part``: "" the render tier's screenshot, ``full`` the marked
    page, ``crop-N`` the N-th crop, ``badge`` the CONAC image the badge script showed ("" if none)."""
    shots = cap.shots or {}
    if not part:
        return cap.screenshot_blob
    if part == "full":
        return str(shots.get("full") or "")
    if part == "badge":
        image = shots.get("badge_image")
        return str(image.get("blob") or "") if isinstance(image, dict) else ""
    m = re.fullmatch(r"crop-(\d{1,3})", part)
    crops = shots.get("crops") or []
    if m and int(m.group(1)) < len(crops) and isinstance(crops[int(m.group(1))], dict):
        return str(crops[int(m.group(1))].get("blob") or "")
    return ""


IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"), (b"\xff\xd8\xff", "image/jpeg"))


def image_type(data: bytes) -> str | None:
    """The media type of an image by its magic bytes (PNG, GIF, JPEG), None for anything else."""
    return next((kind for magic, kind in IMAGE_TYPES if data.startswith(magic)), None)


def _network(view: CaptureView) -> None:
    cap = view.capture
    view.url_shown, view.url_puny = host_display(cap.url)
    view.final_shown = host_display(cap.final_url)[0] if cap.final_url else ""
    view.when = beijing(cap.started)
    if cap.error:
        view.error_text = explain_error(cap.error)
    for hop in cap.http_chain or []:
        if isinstance(hop, dict):
            err = str(hop.get("error") or "")
            shown, _ = host_display(str(hop.get("url") or ""))
            view.hops.append({**hop, "url": shown, "error": explain_error(err) if err else ""})
    answers = (cap.dns or {}).get("answers") if isinstance(cap.dns, dict) else None
    for a in answers or []:
        if isinstance(a, dict):
            rcode = str(a.get("rcode") or "")
            view.answers.append(
                {
                    **a,
                    "name": unicode_host(str(a.get("qname") or "")),
                    "result": RCODE_LABELS.get(rcode, rcode or "没有应答"),
                    "error": explain_error(str(a["error"])) if a.get("error") else "",
                }
            )
    if view.headers:
        view.headers_text = pretty_json(view.headers)


def capture_view(store: EvidenceStore, cap: Capture, findings: list[FindingView]) -> CaptureView:
    view = CaptureView(cap, findings)
    view.has_screenshot = bool(cap.screenshot_blob) and store.exists(cap.screenshot_blob)
    view.has_rendered = bool(cap.rendered_blob) and store.exists(cap.rendered_blob)
    _shots(store, view)
    if not cap.body_blob:
        view.source_note = "本次访问没有取得页面内容" + (
            f"（{explain_error(cap.error)}）" if cap.error else ""
        )
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
                view.other_evidence.append(
                    {**ev, "check": fv.check_label, "source": source_label(str(ev.get("source") or ""))}
                )
        if text:
            if len(text) > FULL_SOURCE_LIMIT:
                text, spans = _windows(text, spans)
                view.source_note = "页面较大，仅显示标出内容前后的部分"
            view.source = highlight(text, spans)
    _network(view)
    return view


def _subject_labels(session: Session, findings: list[Finding]) -> dict[int, tuple[str, str]]:
    """Each finding's subject in words, and small print beside it (a domain's punycode)."""
    site_ids = {f.website_id for f in findings if f.website_id is not None}
    dom_ids = {f.domain_id for f in findings if f.domain_id is not None}
    unit_ids = {f.unit_id for f in findings if f.unit_id is not None}
    sites = (
        {w.id: w for w in session.scalars(sa.select(Website).where(Website.id.in_(site_ids)))}
        if site_ids
        else {}
    )
    doms = (
        {d.id: d for d in session.scalars(sa.select(Domain).where(Domain.id.in_(dom_ids)))} if dom_ids else {}
    )
    units = (
        {u.id: u for u in session.scalars(sa.select(Unit).where(Unit.id.in_(unit_ids)))} if unit_ids else {}
    )
    out: dict[int, tuple[str, str]] = {}
    for f in findings:
        if f.website_id in sites:
            w = sites[f.website_id]
            url, _puny = host_display(w.url)
            out[f.id] = (f"网站“{w.name}”（{url}）" if w.name else f"网站 {url}", "")
        elif f.domain_id in doms:
            d = doms[f.domain_id]
            kind = "英文域名" if d.kind == DomainKind.ENGLISH else "中文域名"
            out[f.id] = (f"{kind} {d.name}", d.ascii if d.ascii != d.name else "")
        elif f.unit_id in units:
            out[f.id] = (f"单位“{units[f.unit_id].name}”", "")
        else:
            out[f.id] = ("巡检对象", "")
    return out


def group_by_capture(
    session: Session, store: EvidenceStore, findings: list[Finding]
) -> tuple[list[CaptureView], list[FindingView]]:
    """Findings grouped under the capture each rests on; findings without a capture listed apart."""
    labels = _subject_labels(session, findings)
    views = []
    for f in findings:
        label, note = labels.get(f.id, ("巡检对象", ""))
        views.append(FindingView(f, reason_message(f.reason), label, False, note))
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
        view = capture_view(store, cap, by_cap[cap_id])
        view.title = view.findings[0].subject_label
        out.append(view)
    # The visit a failure rests on first; visits where everything passed last (folded on the page).
    out.sort(key=lambda v: v.rank)
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
                "marked_screenshot_blob": str((cv.capture.shots or {}).get("full") or ""),
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
