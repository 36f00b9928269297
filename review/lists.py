"""Console pages of the lists: scans, an office's non-compliance list with filters and Excel downloads,
a finding's evidence by its number (``F12/C34``, the 证据编号 of every list and e-mail), and the lookup.

Everything is behind login and scoped to the reviewer's offices, like the rest of the console. The
page texts, states and times come from the same places as the e-mailed lists (:mod:`storage.status`,
:mod:`storage.timefmt`, :mod:`checks.reasons`): a list line and its evidence page cannot disagree.
:func:`install` includes the router and gives every console template the time filters and the status
labels (``review/app.py`` calls it).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, object_session

from checks.reasons import CHECK_LABELS
from reports.documents import coverage_document, noncompliance_document, problem_checks
from reports.letter import ListNotice
from reports.noncompliance import DOMAIN_KIND_LABELS, UNIT_TARGET, FindingRecord, problem, seen
from reports.render import render_xlsx
from reports.source import (
    OfficeTree,
    ReportInputError,
    coverage_from_db,
    finding_record,
    finding_records,
    noncompliance_from_db,
    scope_label,
)
from review.console import (
    Console,
    Forbidden,
    WebSession,
    console_of,
    db_session,
    require_reviewer,
    web_session,
)
from review.evidence import RCODE_LABELS, group_by_capture
from review.listing import build_list
from review.overview import top_offices
from storage.models import Finding, Office, Scan, Unit, subject_of
from storage.status import (
    COLOURS,
    LABELS,
    LEGEND,
    ORDER,
    State,
    covers,
    finding_state,
    latest_covering,
    scope_offices,
    summarize,
)
from storage.timefmt import fmt_date, fmt_time, local_date, zone_label

router = APIRouter(include_in_schema=False)
DB = Annotated[Session, Depends(db_session)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SCAN_STATES = {"running": "进行中", "finished": "已完成", "failed": "失败", "interrupted": "已中断"}
_REF = re.compile(r"^\s*(?:F\s*(\d+))?\s*(?:[/／]?\s*C\s*(\d+))?\s*$", re.I)


def _ws(request: Request, session: DB) -> WebSession:
    ws = web_session(request, session)
    require_reviewer(ws.principal)
    return ws


WS = Annotated[WebSession, Depends(_ws)]


def install(app: FastAPI) -> None:
    """Include the pages and give the console's templates the time filters and the status legend."""
    console: Console = app.state.console
    env = console.templates.env
    tz = console.cfg.timezone
    env.filters["when"] = lambda at, seconds=False: fmt_time(at, tz, seconds=seconds)
    env.filters["day"] = lambda at: fmt_date(at, tz)
    env.globals["tz_label"] = zone_label(tz)
    env.globals["state_label"] = {str(s): LABELS[s] for s in ORDER}
    env.globals["state_legend"] = [(str(s), LABELS[s], LEGEND[s]) for s in ORDER]
    env.globals["check_labels"] = CHECK_LABELS
    env.globals["unit_view"] = unit_view
    env.globals["state_of"] = _state
    env.globals["subject_labels"] = subject_labels
    env.globals["scan_state"] = SCAN_STATES
    app.include_router(router)


def _render(request: Request, name: str, ws: WebSession, status: int = 200, **ctx: Any) -> Response:
    ctx.update(who=ws.principal, csrf=ws.csrf)
    return console_of(request).templates.TemplateResponse(request, name, ctx, status_code=status)


def _office_in_scope(session: Session, ws: WebSession, code: str) -> Office:
    office = session.get(Office, code)
    if office is None or not ws.principal.sees_office(code):
        raise Forbidden("该编办不存在或不在您的管辖范围内", 404)
    return office


def _scan(session: Session, scan_id: int) -> Scan:
    scan = session.get(Scan, scan_id)
    if scan is None:
        raise Forbidden(f"巡检 {scan_id} 不存在", 404)
    return scan


def _download(data: bytes, name: str) -> Response:
    # RFC 6266/5987: an ASCII fallback and the Chinese name for browsers that read filename*.
    disposition = f"attachment; filename=\"badgewatch.xlsx\"; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=XLSX, headers={"Content-Disposition": disposition})


def _safe_name(text: str) -> str:
    return re.sub(r"[\\/:*?\"<>|\s]+", "_", text)


# --- scans ------------------------------------------------------------------------------------------


def scope_text(session: Session, scan: Scan) -> str:
    """What a scan covered, in words."""
    tree = OfficeTree.load(session)
    return scope_label(tree, scan, local_date(scan.started_at))


@router.get("/scans", response_class=HTMLResponse)
def scans(request: Request, ws: WS, session: DB) -> Response:
    """Recent scans, each with the list of the reviewer's office (when the scan covered it)."""
    rows = []
    tops = top_offices(session, ws.principal)
    for scan in session.scalars(sa.select(Scan).order_by(Scan.started_at.desc(), Scan.id.desc()).limit(60)):
        mine = [c for c in tops if covers(scan, c)]
        if ws.principal.offices is not None and not mine:
            # An office scan of another area: the reviewer has nothing in it.
            codes = scope_offices(scan) or set()
            if not codes & ws.principal.offices:
                continue
            mine = [c for c in sorted(codes & ws.principal.offices) if session.get(Office, c) is not None][:1]
        rows.append((scan, scope_text(session, scan), mine))
    offices = {o.code: o.name for o in session.scalars(sa.select(Office))}
    return _render(request, "scans.html", ws, rows=rows, offices=offices)


@router.get("/scans/{scan_id}", response_class=HTMLResponse)
def scan_page(request: Request, scan_id: int, ws: WS, session: DB) -> Response:
    scan = _scan(session, scan_id)
    tops = [c for c in top_offices(session, ws.principal) if covers(scan, c)]
    if not tops and ws.principal.offices is not None:
        codes = sorted((scope_offices(scan) or set()) & ws.principal.offices)
        tops = codes[:1]
    if len(tops) == 1:
        return RedirectResponse(f"/scans/{scan.id}/offices/{tops[0]}", status_code=303)
    if not tops:
        raise Forbidden(f"巡检 {scan.id} 没有覆盖您管辖的编办", 404)
    offices = {o.code: o.name for o in session.scalars(sa.select(Office))}
    return _render(request, "scans.html", ws, rows=[(scan, scope_text(session, scan), tops)], offices=offices)


@router.get("/lists", response_class=HTMLResponse)
def latest_list(request: Request, ws: WS, session: DB) -> Response:
    """The list of the reviewer's office in the latest scan that covered it."""
    tree = OfficeTree.load(session)
    for code in top_offices(session, ws.principal):
        scan = latest_covering(session, tree.subtree(code))
        if scan is not None:
            return RedirectResponse(f"/scans/{scan.id}/offices/{code}", status_code=303)
    return _render(request, "scans.html", ws, rows=[], offices={})


@router.get("/scans/{scan_id}/offices/{code}", response_class=HTMLResponse)
def office_list(
    request: Request,
    scan_id: int,
    code: str,
    ws: WS,
    session: DB,
    only: Annotated[str, Query(max_length=2)] = "",
    check: Annotated[str, Query(max_length=20)] = "",
    county: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    office = _office_in_scope(session, ws, code)
    scan = _scan(session, scan_id)
    if check and check not in CHECK_LABELS:
        check = ""
    tz = console_of(request).cfg.timezone
    try:
        listing = build_list(session, scan, code, only_problems=bool(only), check=check, county=county, tz=tz)
    except LookupError:
        raise Forbidden("所选区县不在该编办之下", 404) from None
    return _render(
        request,
        "list.html",
        ws,
        listing=listing,
        office=office,
        scan=scan,
        only=bool(only),
        check=check,
        county=county,
        covered=covers(scan, code),
        scope_text=scope_text(session, scan),
        colours={str(s): COLOURS[s] for s in ORDER},
    )


@router.get("/scans/{scan_id}/offices/{code}/noncompliance.xlsx")
def office_list_xlsx(request: Request, scan_id: int, code: str, ws: WS, session: DB) -> Response:
    """The office's non-compliance list of this scan as the Excel file its e-mail carries."""
    office = _office_in_scope(session, ws, code)
    scan = _scan(session, scan_id)
    cfg = console_of(request).cfg
    base = cfg.console_url or str(request.base_url)
    report = noncompliance_from_db(session, scan.id, code, base_url=base, tz=cfg.timezone)
    data = render_xlsx(noncompliance_document(report, ListNotice.from_config(cfg).footer(report)))
    day = fmt_date(scan.started_at, cfg.timezone)
    return _download(data, f"不合规清单_{_safe_name(office.name)}_{day}.xlsx")


@router.get("/offices/{code}/coverage.xlsx")
def coverage_xlsx(request: Request, code: str, ws: WS, session: DB) -> Response:
    """The office's coverage table (附件1's layout) as of today, as Excel."""
    office = _office_in_scope(session, ws, code)
    tz = console_of(request).cfg.timezone
    today = local_date(dt.datetime.now(dt.UTC), tz)
    try:
        table = coverage_from_db(session, code, today, tz=tz)
    except ReportInputError as exc:
        raise Forbidden(str(exc), 404) from None
    return _download(render_xlsx(coverage_document(table)), f"覆盖率_{_safe_name(office.name)}_{today}.xlsx")


# --- evidence by number ---------------------------------------------------------------------------


def _finding_in_scope(session: Session, ws: WebSession, finding_id: int) -> tuple[Finding, FindingRecord]:
    f = session.get(Finding, finding_id)
    record = finding_record(session, finding_id) if f is not None else None
    if f is None or record is None or not ws.principal.sees_office(record.office_code):
        raise Forbidden(f"证据编号 F{finding_id} 不存在或不在您的管辖范围内", 404)
    return f, record


@router.get("/findings/{finding_id}", response_class=HTMLResponse)
def finding_page(request: Request, finding_id: int, ws: WS, session: DB) -> Response:
    """A finding's evidence: its status and reason in words, the visit it rests on (screenshot, DNS
    answers, HTTP chain, the page's source with the badge and numbers marked) and the other verdicts
    of the same visit."""
    f, record = _finding_in_scope(session, ws, finding_id)
    c = console_of(request)
    tz = c.cfg.timezone
    line = problem(record, "")
    siblings: list[Finding] = []
    if f.capture_id is not None:
        siblings = list(
            session.scalars(
                sa.select(Finding)
                .where(Finding.capture_id == f.capture_id, Finding.id != f.id)
                .order_by(Finding.id)
            )
        )
    captures, _ = group_by_capture(session, c.store, [f])
    first, visits = seen(line, tz)
    scan = session.get(Scan, f.scan_id)
    return _render(
        request,
        "finding.html",
        ws,
        f=f,
        record=record,
        line=line,
        state=record.state,
        checks=problem_checks(line),
        first=first,
        visits=visits,
        scan=scan,
        capture=captures[0] if captures else None,
        siblings=[(s, _state(s)) for s in siblings],
        dns_rcodes=RCODE_LABELS,
        unit=session.get(Unit, record.unit_id),
        colours={str(s): COLOURS[s] for s in ORDER},
    )


def _state(f: Finding) -> str:
    return str(finding_state(f.status, f.confirmed))


def parse_ref(ref: str) -> tuple[int | None, int | None]:
    """``F12/C34`` → (12, 34); ``F12`` → (12, None); ``C34`` → (None, 34); a bare number is a finding."""
    text = ref.strip().upper().replace("：", ":")
    if text.isdigit():
        return int(text), None
    m = _REF.match(text)
    if m is None or not (m.group(1) or m.group(2)):
        return None, None
    return (int(m.group(1)) if m.group(1) else None), (int(m.group(2)) if m.group(2) else None)


@router.get("/lookup", response_class=HTMLResponse)
def lookup(request: Request, ws: WS, session: DB, ref: Annotated[str, Query(max_length=40)] = "") -> Response:
    """Open the evidence of an evidence number as the lists print it."""
    if not ref.strip():
        return _render(request, "lookup.html", ws, ref="", message="")
    finding_id, capture_id = parse_ref(ref)
    if finding_id is None and capture_id is not None:
        # A visit's number alone: its worst verdict stands for it.
        rows = session.scalars(sa.select(Finding).where(Finding.capture_id == capture_id)).all()
        worst = sorted(rows, key=lambda x: ORDER.index(State(_state(x))))
        finding_id = worst[0].id if worst else None
    message = "证据编号的写法是 F 加数字（如 F12 或 F12/C34），请核对后重新输入"
    if finding_id is not None:
        f = session.get(Finding, finding_id)
        record = finding_record(session, finding_id) if f is not None else None
        if (
            f is not None
            and record is not None
            and ws.principal.sees_office(record.office_code)
            and (capture_id is None or f.capture_id == capture_id)
        ):
            return RedirectResponse(f"/findings/{finding_id}", status_code=303)
        message = f"没有找到证据编号“{ref.strip()}”，或它不在您的管辖范围内"
    return _render(request, "lookup.html", ws, 404, ref=ref.strip(), message=message)


# --- the unit page's extra context ------------------------------------------------------------------


def subject_labels(unit: Unit) -> dict[str, str]:
    """What each of a unit's findings is about, by the finding's subject: the site's name and address,
    the domain with its kind, or the unit as a whole."""
    out = {f"unit:{unit.id}": UNIT_TARGET}
    for w in unit.websites:
        out[subject_of(w.id, None)] = f"{w.name}（{w.url}）" if w.name else w.url
    for d in unit.domains:
        out[subject_of(None, d.id)] = f"{DOMAIN_KIND_LABELS.get(d.kind, '域名')} {d.name}"
    return out


def unit_view(unit: Unit) -> dict[str, Any]:
    """What the unit page shows beyond its registry entry: its status in the latest scan that covered
    its office, that scan's lines with their evidence numbers, and its contacts.

    Called from ``unit.html`` (so the unit route in ``review/web.py`` stays as it is), inside the
    request's database session that loaded ``unit``.
    """
    session = object_session(unit)
    assert session is not None
    scan = latest_covering(session, unit.office_code)
    out: dict[str, Any] = {
        "scan": scan,
        "state": str(State.NOT_SCANNED),
        "text": LABELS[State.NOT_SCANNED],
        "others": "",
        "lines": [],
    }
    if scan is None:
        return out
    records = finding_records(session, scan.id, unit_ids=[unit.id])
    summary = summarize((r.status, r.confirmed) for r in records)
    out["state"], out["text"], out["others"] = str(summary.state), summary.text, summary.others
    lines = sorted(records, key=lambda r: (ORDER.index(r.state), r.target, r.check))
    out["lines"] = [(r, problem(r, "")) for r in lines]
    return out
