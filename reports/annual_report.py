"""The annual-report listing (`badgewatch report annual`): submitted fields beside what scans show."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from reports.annual import STATE_LABELS, derive, disagreements, reports_for
from reports.source import OfficeTree
from reports.tabular import Column, Document, Kind, Sheet
from storage.models import AnnualReport, ReportState


@dataclass(frozen=True, slots=True)
class AnnualListing:
    year: int
    office_code: str | None
    reports: list[AnnualReport]
    office_names: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "office": self.office_code,
            "reports": [report_dict(r) for r in self.reports],
        }


def report_dict(r: AnnualReport) -> dict[str, Any]:
    """One report as the JSON output and the API show it."""
    return {
        "id": r.id,
        "year": r.year,
        "unit": {
            "id": r.unit.id,
            "name": r.unit.name,
            "uscc": r.unit.uscc,
            "office_code": r.unit.office_code,
        },
        "state": r.state,
        "submitted": {
            "organizer": r.organizer,
            "site_name": r.site_name,
            "domains_status": r.domains_status,
            "functions_reviewed": r.functions_reviewed,
            "badge_displayed": r.badge_displayed,
        },
        "derived": {
            "domains_status": dict(r.derived_domains),
            "badge_displayed": dict(r.derived_badge),
            "at": r.derived_at.isoformat() if r.derived_at else None,
        },
        "disagreements": disagreements(r),
        "rejection_reason": r.rejection_reason,
        "events": [
            {
                "from": e.from_state,
                "to": e.to_state,
                "actor": e.actor,
                "reason": e.reason,
                "at": e.at.isoformat(),
            }
            for e in r.events
        ],
    }


def annual_listing(
    session: Session, year: int, office_code: str | None = None, rederive: bool = True
) -> AnnualListing:
    """The year's reports of an office and its sub-offices (all when omitted), fields 3/5 re-derived."""
    tree = OfficeTree.load(session)
    codes = tree.subtree(office_code) if office_code else None
    if office_code:
        tree.get(office_code)
    reports = reports_for(session, year, codes)
    if rederive:
        for r in reports:
            derive(session, r)
        session.flush()
    names = {c: o.name for c, o in tree.offices.items()}
    return AnnualListing(year, office_code, reports, names)


_COLUMNS = [
    Column("单位名称", Kind.TEXT, 26),
    Column("统一社会信用代码", Kind.TEXT, 20),
    Column("开办主体名称", Kind.TEXT, 22),
    Column("网站名称", Kind.TEXT, 18),
    Column("域名有效性及使用状况（填报）", Kind.TEXT, 16),
    Column("域名有效性及使用状况（巡检）", Kind.TEXT, 16),
    Column("职能审核", Kind.TEXT, 8),
    Column("加挂网站标识（填报）", Kind.TEXT, 12),
    Column("加挂网站标识（巡检）", Kind.TEXT, 12),
    Column("不一致", Kind.TEXT, 40),
    Column("状态", Kind.TEXT, 10),
    Column("退回原因", Kind.TEXT, 20),
    Column("巡检依据", Kind.TEXT, 50),
]


def _basis(label: str, derived: dict[str, Any]) -> str:
    ids = ", ".join(f"F{x}" for x in derived.get("finding_ids", [])) or "无"
    return f"{label}：{derived.get('detail', '')}（发现编号 {ids}）"


def annual_document(listing: AnnualListing) -> Document:
    """One sheet per office; a row per report, disagreements marked."""
    by_office: dict[str, list[AnnualReport]] = defaultdict(list)
    for r in listing.reports:
        by_office[r.unit.office_code].append(r)
    sheets = []
    for code in sorted(by_office):
        rows: list[list[Any]] = []
        flagged: set[int] = set()
        for i, r in enumerate(by_office[code]):
            issues = disagreements(r)
            if issues:
                flagged.add(i)
            basis = "；".join(
                _basis(label, d) for label, d in (("域名", r.derived_domains), ("标识", r.derived_badge)) if d
            )
            rows.append(
                [
                    r.unit.name,
                    r.unit.uscc or "",
                    r.organizer,
                    r.site_name,
                    r.domains_status,
                    r.derived_domains.get("value", ""),
                    r.functions_reviewed,
                    r.badge_displayed,
                    r.derived_badge.get("value", ""),
                    "；".join(issues),
                    STATE_LABELS.get(ReportState(r.state), r.state),
                    r.rejection_reason,
                    basis,
                ]
            )
        name = listing.office_names.get(code, code)
        n = len(flagged)
        sheets.append(
            Sheet(
                title=f"{name}{listing.year}年度网上名称年度报告",
                name=name,
                columns=list(_COLUMNS),
                rows=rows,
                highlight=flagged,
                notes=[
                    f"共{len(rows)}份报告，其中{n}份填报内容与巡检结果不一致（已标出）。",
                    "字段3、5的巡检结果取自各域名、网站最近一次已确认的巡检发现；“无法判定”不作比较。",
                ],
            )
        )
    return Document(
        title=f"{listing.year}年度网上名称年度报告审核表",
        sheets=sheets,
        subtitle=f"共{len(listing.reports)}份报告。",
        footer="badgewatch 网标巡检生成",
    )
