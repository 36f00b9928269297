"""Re-derive a scan's findings from its stored evidence with the current checks (no network).

Each finding points to the capture it rests on; the capture holds the HTTP chain, the DNS answers and
blob keys of the home page, its headers, the sub-resources and the rendered DOM. The page is rebuilt
from those blobs exactly as the crawler had it, the checks run again (offline: ``page.exhausted``),
and each finding is updated in place. Attempt counts stay as recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from checks.http import CertProblem, FetchError, FetchOutcome, Hop, page_readable
from checks.page import Document, Need, NeedKind, Page
from checks.rules import Rules
from checks.verdict import Verdict
from crawler import checking
from crawler.findings import verdict_columns
from crawler.flow import attach_subresource
from crawler.jobs import domain_expected
from crawler.resolver import DnsAnswer
from crawler.scanlocks import ScanError
from storage.evidence import BlobNotFoundError, EvidenceStore
from storage.expected import expected_for
from storage.models import Capture, Domain, Finding, Scan, Unit, Website

BATCH = 200
DOMAIN_LOADS = (
    selectinload(Domain.unit).selectinload(Unit.websites).selectinload(Website.domains),
    selectinload(Domain.unit).selectinload(Unit.domains),
    selectinload(Domain.website).selectinload(Website.domains),
)


@dataclass
class RecheckSummary:
    scan_id: int
    subjects: int = 0
    changed: int = 0
    missing_evidence: int = 0


def _chain(raw: list[dict[str, Any]]) -> tuple[Hop, ...]:
    return tuple(Hop.from_dict(h) for h in raw)


def outcome_from_capture(
    cap: Capture, store: EvidenceStore
) -> tuple[FetchOutcome, bytes | None, dict[str, Any]]:
    """The fetch outcome, the body and the response metadata recorded in a capture."""
    chain = _chain(cap.http_chain or [])
    meta: dict[str, Any] = {}
    body: bytes | None = None
    if cap.headers_blob:
        meta = json.loads(store.get(cap.headers_blob))
    if cap.body_blob:
        body = store.get(cap.body_blob)
    if cap.error.startswith("too_large: "):
        return FetchOutcome(url=cap.url, final_url=cap.final_url, chain=chain, truncated=True), None, meta
    if body is None:
        last = chain[-1] if chain else None
        err = (
            FetchError(last.error)
            if last is not None and last.error in FetchError.__members__.values()
            else None
        )
        if err is None and chain and len(chain) > 1 and chain[-1].status in (301, 302, 303, 307, 308):
            err = FetchError.REDIRECT_LOOP
        return (
            FetchOutcome(
                url=cap.url,
                final_url=cap.final_url,
                chain=chain,
                error=err or FetchError.OTHER,
                error_detail=cap.error,
            ),
            None,
            meta,
        )
    problems = tuple(CertProblem(p) for p in meta.get("cert_problems", []))
    outcome = FetchOutcome(
        url=cap.url,
        final_url=cap.final_url,
        status=cap.status,
        chain=chain,
        headers=meta.get("headers", {}),
        body_size=len(body),
        cert_problems=problems,
        body_head=body[:1024],
    )
    return outcome, body, meta


def page_from_capture(cap: Capture, store: EvidenceStore, body: bytes, meta: dict[str, Any]) -> Page:
    page = Page(
        url=cap.final_url or cap.url, body=body, headers=meta.get("headers", {}), status=cap.status or 200
    )
    for url, rec in (cap.subresources or {}).items():
        if not isinstance(rec, dict) or "kind" not in rec:
            continue
        try:
            need = Need(NeedKind(rec["kind"]), url)
        except ValueError:
            continue
        if rec.get("blob"):
            attach_subresource(page, need, url, store.get(rec["blob"]), rec.get("content_type", ""))
        else:
            page.mark_failed(need, rec.get("error", "failed"))
    if cap.rendered_blob:
        page.rendered = Document(page.url, store.get(cap.rendered_blob).decode("utf-8", "replace"))
    page.exhausted = True
    return page


def verdicts_for_site(cap: Capture, website: Website, store: EvidenceStore, rules: Rules) -> list[Verdict]:

    outcome, body, meta = outcome_from_capture(cap, store)
    expected = expected_for(website)
    if cap.error.startswith("internal_error: "):
        return checking.internal_error_verdicts(cap.subject, cap.error.removeprefix("internal_error: "))
    page = page_from_capture(cap, store, body, meta) if body is not None else None
    http = checking.site_http(outcome, page)
    if page is None or not page_readable(http):
        return [http, *checking.unreadable_verdicts(http, expected, rules)]
    verdicts, _needs = checking.run_page_checks(page, expected, rules)
    http, verdicts = checking.settle_site(cap.url, outcome.final_url, http, verdicts, expected)
    return [http, *verdicts]


def verdicts_for_domain(
    cap: Capture, domain: Domain, store: EvidenceStore, rules: Rules, today: date
) -> list[Verdict]:

    if cap.error.startswith("internal_error: "):
        return checking.internal_error_verdicts(cap.subject, cap.error.removeprefix("internal_error: "))
    answers = (cap.dns or {}).get("answers") or []
    answer = DnsAnswer.from_dict(answers[0]) if answers else DnsAnswer(domain.ascii, "", "no record", (), ())
    out = [
        checking.dns_verdict(answer),
        checking.domain_verdict(domain.name, domain.unit.kind, domain.expiry, today, rules),
    ]
    usage = (cap.subresources or {}).get("usage")
    if isinstance(usage, dict):
        own = [str(x) for x in usage.get("own_sha256") or []]
        pages = [p for p in usage.get("own_pages") or [] if isinstance(p, dict)]
        out.append(checking.usage_verdict(usage, answer, domain_expected(domain), rules, own, pages))
    return out


def _captures(db: Engine, scan_id: int) -> Iterator[list[int]]:
    last = 0
    while True:
        with db.connect() as conn:
            ids: list[int] = [
                i
                for i in conn.execute(
                    sa.select(Finding.capture_id)
                    .distinct()
                    .where(Finding.scan_id == scan_id, Finding.capture_id > last)
                    .order_by(Finding.capture_id)
                    .limit(BATCH)
                ).scalars()
                if i is not None
            ]
        if not ids:
            return
        last = ids[-1]
        yield ids


def recheck_scan(
    db: Engine, scan_id: int, store: EvidenceStore, rules: Rules, today: date | None = None
) -> RecheckSummary:
    """Update every finding of ``scan_id`` from its capture; returns counts."""
    with db.connect() as conn:
        if conn.execute(sa.select(Scan.id).where(Scan.id == scan_id)).first() is None:
            raise ScanError(f"巡检 #{scan_id} 不存在")
    summary = RecheckSummary(scan_id)
    day = today or date.today()
    for ids in _captures(db, scan_id):
        with Session(db) as s, s.begin():
            caps = s.scalars(sa.select(Capture).where(Capture.id.in_(ids))).all()
            for cap in caps:
                summary.subjects += 1
                try:
                    if cap.website_id is not None:
                        site = s.scalars(
                            sa.select(Website)
                            .where(Website.id == cap.website_id)
                            .options(selectinload(Website.unit), selectinload(Website.domains))
                        ).one()
                        verdicts = verdicts_for_site(cap, site, store, rules)
                    elif cap.domain_id is not None:
                        dom = s.scalars(
                            sa.select(Domain).where(Domain.id == cap.domain_id).options(*DOMAIN_LOADS)
                        ).one()
                        verdicts = verdicts_for_domain(cap, dom, store, rules, day)
                    else:
                        continue
                except BlobNotFoundError:
                    summary.missing_evidence += 1
                    continue
                existing = {
                    f.check: f
                    for f in s.scalars(
                        sa.select(Finding).where(Finding.scan_id == scan_id, Finding.subject == cap.subject)
                    )
                }
                for v in verdicts:
                    columns = verdict_columns(v)
                    f = existing.get(v.check)
                    if f is None:
                        s.add(
                            Finding(
                                scan_id=scan_id,
                                website_id=cap.website_id,
                                domain_id=cap.domain_id,
                                subject=cap.subject,
                                attempts=1,
                                capture_id=cap.id,
                                **columns,
                            )
                        )
                        summary.changed += 1
                        continue
                    if (f.status, f.reason) != (str(v.status), v.reason):
                        summary.changed += 1
                    for name, value in columns.items():
                        setattr(f, name, value)
    _recheck_units(db, scan_id, summary)
    return summary


def _recheck_units(db: Engine, scan_id: int, summary: RecheckSummary) -> None:
    """Unit-level findings rest on the registered domains kept in their ``data`` (no capture)."""
    last = 0
    while True:
        with Session(db) as s, s.begin():
            rows = s.execute(
                sa.select(Finding, Unit.kind)
                .join(Unit, Unit.id == Finding.unit_id)
                .where(Finding.scan_id == scan_id, Finding.id > last)
                .order_by(Finding.id)
                .limit(BATCH)
            ).all()
            for f, kind in rows:
                summary.subjects += 1
                v = checking.unit_domains_verdict((f.data or {}).get("registered") or (), kind)
                if (f.status, f.reason) != (str(v.status), v.reason):
                    summary.changed += 1
                columns = verdict_columns(v)
                registered = (f.data or {}).get("registered") or []
                f.status, f.reason, f.detail = columns["status"], columns["reason"], columns["detail"]
                f.data = {**columns["data"], "registered": registered}
            if not rows:
                return
            last = rows[-1][0].id
