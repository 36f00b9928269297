"""Report objects turned into renderable documents (:mod:`reports.tabular`)."""

from __future__ import annotations

from typing import Any

from reports.coverage import SCAN_COLUMNS, CoverageRow, CoverageTable
from reports.noncompliance import NoncomplianceReport, OfficeList, seen, summary_line
from reports.tabular import Chart, Column, Document, Kind, Sheet

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


# Check names as users read them (the reason code's prefix is the check's name).
CHECK_LABELS: dict[str, str] = {
    "badge": "网站标识",
    "icp": "ICP备案号",
    "police": "公安机关备案号",
    "site_code": "政府网站标识码",
    "domain": "域名",
    "dns": "域名解析",
    "usage": "中文域名使用",
    "http": "网站访问",
}
_NC_COLUMNS = [
    Column("类别", Kind.TEXT, 10),
    Column("变化", Kind.TEXT, 8),
    Column("单位名称", Kind.TEXT, 28),
    Column("单位类别", Kind.TEXT, 10),
    Column("网站或域名", Kind.TEXT, 36),
    Column("检查项", Kind.TEXT, 14),
    Column("问题", Kind.TEXT, 44),
    Column("整改建议", Kind.TEXT, 36),
    Column("详情", Kind.TEXT, 30),
    Column("首次发现", Kind.TEXT, 17),
    Column("连续发现", Kind.TEXT, 9),
    Column("证据编号", Kind.LINK, 14),
]


def check_label(check: str, reason: str = "") -> str:
    return CHECK_LABELS.get(check) or CHECK_LABELS.get(reason.split(".", 1)[0], check)


def _nc_sheet(ol: OfficeList, scan_id: int) -> Sheet:
    rows: list[list[Any]] = []
    links: dict[tuple[int, int], str] = {}
    groups = (
        ("不合规", ol.failures),
        ("无法核实", ol.unverified),
        ("建议改进", ol.advice),
        ("已整改", ol.fixed),
    )
    for label, problems in groups:
        for p in problems:
            r = p.record
            if p.evidence_url:
                links[(len(rows), len(_NC_COLUMNS) - 1)] = p.evidence_url
            rows.append(
                [
                    label,
                    p.change,
                    r.unit_name,
                    r.unit_kind,
                    r.target,
                    "、".join(check_label(c) for c in p.checks)
                    if p.checks
                    else check_label(r.check, r.reason),
                    p.message,
                    p.advice,
                    r.detail,
                    *(seen(p) if label == "不合规" else ("", "")),
                    p.evidence_id,
                ]
            )
    notes = [summary_line(ol)]
    if ol.pending:
        notes.append(f"另有{ol.pending}项问题尚未确认（需后续复查或下次巡检确认），暂不列入不合规清单。")
    notes.append("“无法核实”指网站超时、被防火墙拦截、域名解析失败等，不计为不合规；“建议改进”为提醒事项。")
    return Sheet(
        title=f"{ol.office_name}网站标识及域名不合规清单（巡检 {scan_id}）",
        name=ol.office_name,
        columns=list(_NC_COLUMNS),
        rows=rows,
        notes=notes,
        links=links,
        empty_text="本次巡检未发现问题。",
    )


def noncompliance_document(report: NoncomplianceReport) -> Document:
    """One sheet per office: failures, then what could not be verified, advice, and what was fixed."""
    prev = f"，与巡检 {report.previous_scan_id} 比较" if report.previous_scan_id is not None else ""
    total = sum(len(o.failures) for o in report.offices)
    return Document(
        title=report.title,
        subtitle=f"巡检 {report.scan_id}{prev}：{len(report.offices)}个编办，不合规问题共{total}项。",
        sheets=[_nc_sheet(ol, report.scan_id) for ol in report.offices],
        footer="问题说明与整改建议取自统一的原因代码表；证据编号可在审核台查看页面截图、DNS应答与标识代码。",
    )
