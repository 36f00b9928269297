"""Report objects turned into renderable documents (:mod:`reports.tabular`)."""

from __future__ import annotations

from typing import Any

from checks.reasons import CHECK_LABELS
from reports.coverage import SCAN_COLUMNS, CoverageRow, CoverageTable
from reports.noncompliance import NoncomplianceReport, OfficeList, Problem, seen, summary_line
from reports.tabular import Chart, Column, Document, Kind, Sheet
from storage.status import COLOURS, LABELS, LEGEND, ORDER, State
from storage.timefmt import fmt_time

_SEED_KINDS = (Kind.INT, Kind.INT, Kind.PCT, Kind.INT, Kind.INT, Kind.INT)


def _coverage_cells(row: CoverageRow, scan: bool) -> list[Any]:
    c = row.counts
    cells: list[Any] = [
        c.name,
        c.institutions,
        c.registered_units,
        row.coverage_pct,
        c.domains,
        c.party_badges,
        c.institution_badges,
    ]
    if scan:
        cells += [c.badge_verified, c.cn_domains_resolving, c.unverifiable]
    cells.append("；".join(f.label for f in row.flags))
    return cells


def coverage_document(table: CoverageTable) -> Document:
    """The coverage table as one sheet: the seed's columns, the scan's, a flags column and the notes."""
    scan = table.has_scan_columns
    columns = [Column("地区", Kind.TEXT, 12)]
    columns += [
        Column(h, k, 12)
        for h, k in zip(
            (
                "行政事业单位机构数",
                "已注册",
                "注册单位覆盖率",
                "已注册域名数",
                "党政机关网站标识申请通过数量",
                "事业单位网站标识申请通过数量",
            ),
            _SEED_KINDS,
            strict=True,
        )
    ]
    if scan:
        columns += [Column(h, Kind.INT, 12) for _, h in SCAN_COLUMNS]
    columns.append(Column("数据问题", Kind.TEXT, 18))
    rows = [_coverage_cells(r, scan) for r in table.rows]
    total = _coverage_cells(table.total, scan)
    total[-1] = ""
    sheet = Sheet(
        title=table.title,
        name="覆盖率",
        columns=columns,
        rows=rows,
        total=total,
        notes=list(table.notes),
        chart=Chart("注册单位覆盖率（按地区）", label_column=0, value_column=3, axis_title="覆盖率（%）"),
        highlight={i for i, r in enumerate(table.rows) if r.flags},
    )
    return Document(
        title=table.title,
        subtitle=table.subtitle,
        sheets=[sheet],
        footer=f"编办代码 {table.office_code}；统计日期 {table.as_of.isoformat()}；badgewatch 网标巡检生成",
    )


FIXED_LABEL = "已整改"
_NC_COLUMNS = [
    Column("状态", Kind.TEXT, 8, nowrap=True),
    Column("变化", Kind.TEXT, 6, nowrap=True),
    Column("单位名称", Kind.TEXT, 20, nowrap=True),
    Column("单位类别", Kind.TEXT, 8, nowrap=True),
    Column("网站或域名", Kind.TEXT, 30),
    Column("检查项", Kind.TEXT, 10),
    Column("问题", Kind.TEXT, 34),
    Column("整改建议", Kind.TEXT, 28),
    Column("详情", Kind.TEXT, 26),
    Column("首次发现", Kind.TEXT, 16, nowrap=True),
    Column("连续发现", Kind.TEXT, 8, nowrap=True),
    Column("证据编号", Kind.LINK, 12, nowrap=True),
]
EVIDENCE_COLUMN = len(_NC_COLUMNS) - 1


OTHER_CHECK = "其他检查"


def check_label(check: str, reason: str = "") -> str:
    """A check's name as users read it (a name the table does not know is never shown raw)."""
    return CHECK_LABELS.get(check) or CHECK_LABELS.get(reason.split(".", 1)[0], OTHER_CHECK)


def problem_checks(p: Problem) -> str:
    """The check (or, for a merged "could not be judged" line, every check) a line is about."""
    r = p.record
    return "、".join(check_label(c) for c in p.checks) if p.checks else check_label(r.check, r.reason)


def status_legend() -> list[tuple[str, str]]:
    """The legend of every list: each status with its colour (:mod:`storage.status`)."""
    return [(LABELS[s], COLOURS[s][0]) for s in ORDER if s is not State.NOT_SCANNED]


def list_subtitle(report: NoncomplianceReport, ol: OfficeList | None = None) -> str:
    """``巡检范围：保定市及下级编办；巡检时间：2026-12-04 01:00（北京时间）；巡检编号 7``."""
    scope = ol.office_name if ol is not None else report.scope
    parts = [f"巡检范围：{scope}"] if scope else []
    if report.started_at is not None:
        parts.append(f"巡检时间：{fmt_time(report.started_at, report.tz, label=True)}")
    parts.append(f"巡检编号 {report.scan_id}")
    return "；".join(parts)


def _nc_sheet(ol: OfficeList, report: NoncomplianceReport) -> Sheet:
    rows: list[list[Any]] = []
    links: dict[tuple[int, int], str] = {}
    fills: dict[int, str] = {}
    groups: tuple[tuple[str, str, list[Problem]], ...] = (
        (LABELS[State.FAIL], COLOURS[State.FAIL][0], ol.failures),
        (LABELS[State.UNKNOWN], COLOURS[State.UNKNOWN][0], ol.unverified),
        (LABELS[State.WARN], COLOURS[State.WARN][0], ol.advice),
        (FIXED_LABEL, COLOURS[State.PASS][0], ol.fixed),
    )
    for label, colour, problems in groups:
        for p in problems:
            r = p.record
            if p.evidence_url:
                links[(len(rows), EVIDENCE_COLUMN)] = p.evidence_url
            fills[len(rows)] = colour
            rows.append(
                [
                    label,
                    p.change if p.change != FIXED_LABEL else "",
                    r.unit_name,
                    r.unit_kind,
                    r.target,
                    problem_checks(p),
                    p.message,
                    p.advice,
                    r.detail,
                    *(seen(p, report.tz) if r.state is State.FAIL and label != FIXED_LABEL else ("", "")),
                    p.evidence_id,
                ]
            )
    notes = [summary_line(ol)]
    if ol.scanned:
        shown = (
            (State.FAIL, State.PENDING, State.UNKNOWN, State.WARN)
            if ol.pending
            else (State.FAIL, State.UNKNOWN, State.WARN)
        )
        notes += [f"{LABELS[s]}：{LEGEND[s]}。" for s in shown]
    empty = (
        "本次巡检未发现问题。"
        if ol.scanned
        else f"{LABELS[State.NOT_SCANNED]}：{LEGEND[State.NOT_SCANNED]}。"
    )
    return Sheet(
        title=f"{ol.office_name}网站标识及域名不合规清单（{report.scan_label}）",
        name=ol.office_name,
        columns=list(_NC_COLUMNS),
        rows=rows,
        notes=notes,
        links=links,
        empty_text=empty,
        subtitle=list_subtitle(report, ol),
        fills=fills,
        legend=status_legend() if rows else [],
    )


def noncompliance_document(report: NoncomplianceReport, footer: str = "") -> Document:
    """One sheet per office: failures, then what could not be judged, advice, and what was fixed.

    ``footer`` (whom to ask, who sends the list) follows the standard explanation."""
    prev = f"，与巡检 {report.previous_scan_id} 比较" if report.previous_scan_id is not None else ""
    scanned = [o for o in report.offices if o.scanned]
    total = sum(len(o.failures) for o in scanned)
    outside = len(report.offices) - len(scanned)
    skipped = f"（另有{outside}个编办未巡检）" if outside else ""
    return Document(
        title=f"{report.title}（{report.scan_label}）",
        subtitle=f"{list_subtitle(report)}{prev}：{len(scanned)}个编办{skipped}，{LABELS[State.FAIL]}问题共{total}项。",
        sheets=[_nc_sheet(ol, report) for ol in report.offices],
        footer="问题说明与整改建议取自统一的原因说明表；证据编号（如 F12/C34）可在审核台"
        "“按证据编号查找”中打开，查看页面截图、DNS应答与标识代码。" + (footer and " " + footer),
    )
