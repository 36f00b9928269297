"""The coverage table (附件1 of the seed notice) as a pure computation over per-office counts.

One row per sub-office (the office's own units first, labelled 市直/省直, then each district and
county), a 合计 row computed from the rows (never copied from anywhere), percentages rounded half-up,
and data-quality flags explained under the table. Counting what goes into each row is the job of
:mod:`reports.source`; this module only computes and judges.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reports.rounding import format_pct, pct_half_up

# The seed's columns, in its order: (json key, Chinese header).
SEED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("institutions", "行政事业单位机构数"),
    ("registered_units", "已注册"),
    ("coverage_pct", "注册单位覆盖率"),
    ("domains", "已注册域名数"),
    ("party_badges", "党政机关网站标识申请通过数量"),
    ("institution_badges", "事业单位网站标识申请通过数量"),
)
# Columns beyond the seed, from the latest scan (None when there is no scan).
SCAN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("badge_verified", "网站标识经巡检核实的网站数"),
    ("cn_domains_resolving", "解析正常的中文域名数"),
    ("unverifiable", "无法判定的网站数"),
)
_COUNT_KEYS = ("institutions", "registered_units", "domains", "party_badges", "institution_badges")
_OPTIONAL_KEYS = (
    "registry_units",
    "websites",
    "badge_verified",
    "cn_domains_checked",
    "cn_domains_resolving",
    "unverifiable",
)


@dataclass(frozen=True, slots=True)
class OfficeCounts:
    """The raw figures of one row.

    ``institutions`` is the roster (行政事业单位机构数), the denominator of coverage;
    ``registered_units`` the units holding at least one Chinese domain; ``domains`` the Chinese
    domains they hold; the badge counts are websites whose badge application passed, by unit kind.
    Optional figures are ``None`` when unknown: ``registry_units`` (units in our registry),
    ``websites`` (self-built websites in the registry) and the scan figures.
    """

    code: str
    name: str
    institutions: int
    registered_units: int
    domains: int
    party_badges: int
    institution_badges: int
    registry_units: int | None = None
    websites: int | None = None
    badge_verified: int | None = None
    cn_domains_checked: int | None = None
    cn_domains_resolving: int | None = None
    unverifiable: int | None = None

    def __post_init__(self) -> None:
        for key in (*_COUNT_KEYS, *_OPTIONAL_KEYS):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{self.name}（{self.code}）的 {key} 不是非负整数: {value!r}")


# Short labels of the flags, for the table's 数据问题 column (the notes explain them in full).
FLAG_LABELS: dict[str, str] = {
    "roster_missing": "缺机构数",
    "coverage_over_100": "覆盖率超100%",
    "units_exceed_roster": "登记单位多于机构数",
    "domains_below_units": "域名数少于单位数",
    "domains_without_units": "有域名无单位",
    "badges_exceed_websites": "标识多于网站数",
    "verified_exceed_websites": "核实数多于网站数",
}


@dataclass(frozen=True, slots=True)
class Flag:
    """A data-quality problem of one row: stable code and the explanation printed under the table."""

    code: str
    message: str

    @property
    def label(self) -> str:
        return FLAG_LABELS.get(self.code, self.code)


@dataclass(frozen=True, slots=True)
class CoverageRow:
    counts: OfficeCounts
    coverage_pct: int | None
    flags: tuple[Flag, ...] = ()

    @property
    def code(self) -> str:
        return self.counts.code

    @property
    def name(self) -> str:
        return self.counts.name

    def value(self, key: str) -> Any:
        if key == "coverage_pct":
            return self.coverage_pct
        return getattr(self.counts, key)

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "code": c.code,
            "name": c.name,
            "institutions": c.institutions,
            "registered_units": c.registered_units,
            "coverage_pct": self.coverage_pct,
            "domains": c.domains,
            "party_badges": c.party_badges,
            "institution_badges": c.institution_badges,
            "registry_units": c.registry_units,
            "websites": c.websites,
            "badge_verified": c.badge_verified,
            "cn_domains_checked": c.cn_domains_checked,
            "cn_domains_resolving": c.cn_domains_resolving,
            "unverifiable": c.unverifiable,
            "flags": [{"code": f.code, "message": f.message} for f in self.flags],
        }


@dataclass(frozen=True, slots=True)
class CoverageTable:
    """The whole table: title, reporting date, rows, computed 合计 and the notes under it."""

    office_code: str
    office_name: str
    as_of: dt.date
    rows: tuple[CoverageRow, ...]
    total: CoverageRow
    notes: tuple[str, ...] = ()
    scan_id: str | None = None
    has_scan_columns: bool = False

    @property
    def title(self) -> str:
        return f"{self.office_name}域名注册及网站标识申请情况"

    @property
    def subtitle(self) -> str:
        t = self.total.counts
        return (
            f"截至{self.as_of.year}年{self.as_of.month}月{self.as_of.day}日，{self.office_name}已注册域名数为"
            f"{t.domains}个，党政机关网站标识申请通过数量{t.party_badges}个，"
            f"事业单位网站标识申请通过数量{t.institution_badges}个。"
        )

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape (docs/reports.md)."""
        return {
            "as_of": self.as_of.isoformat(),
            "office": {"code": self.office_code, "name": self.office_name},
            "scan_id": self.scan_id,
            "rows": [r.to_dict() for r in self.rows],
            "total": self.total.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class PublishedTable:
    """A table published elsewhere (e.g. the seed's 附件1) to compare our figures against.

    ``rows`` maps a row name to its printed figures (the keys of :data:`SEED_COLUMNS`, coverage as
    an int percentage); ``total`` is the printed 合计 row, if any.
    """

    source: str
    rows: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    total: Mapping[str, int] | None = None


def own_units_label(office_code: str, office_name: str) -> str:
    """Label of the row of an office's own units: 省直 for a province, 市直 for a city, else 本级."""
    code = office_code.strip()
    if len(code) == 6 and code.isdigit():
        if code.endswith("0000"):
            return "省直"
        if code.endswith("00"):
            return "市直"
    return f"{office_name}本级"


def row_flags(c: OfficeCounts) -> tuple[Flag, ...]:
    """Data-quality flags of one row: figures that cannot all be right."""
    flags: list[Flag] = []
    if c.institutions == 0 and c.registered_units > 0:
        flags.append(
            Flag(
                "roster_missing",
                f"{c.name}：行政事业单位机构数为0，但已注册单位{c.registered_units}个，"
                "覆盖率无法计算，请补录机构数。",
            )
        )
    elif c.registered_units > c.institutions:
        pct = pct_half_up(c.registered_units, c.institutions)
        flags.append(
            Flag(
                "coverage_over_100",
                f"{c.name}：注册单位覆盖率{format_pct(pct)}，超过100%——已注册单位数{c.registered_units}"
                f"多于行政事业单位机构数{c.institutions}，机构数可能未更新，或有单位重复注册、"
                "已撤并单位未注销。",
            )
        )
    if c.registry_units is not None and c.registry_units > c.institutions:
        flags.append(
            Flag(
                "units_exceed_roster",
                f"{c.name}：登记在册的单位{c.registry_units}个，多于行政事业单位机构数{c.institutions}，"
                "请核对机构数或清理已撤并的单位。",
            )
        )
    if c.domains < c.registered_units:
        flags.append(
            Flag(
                "domains_below_units",
                f"{c.name}：已注册域名数{c.domains}少于已注册单位数{c.registered_units}，"
                "每个已注册单位至少有一个域名，两项数据互相矛盾。",
            )
        )
    if c.registered_units == 0 and c.domains > 0:
        flags.append(
            Flag(
                "domains_without_units",
                f"{c.name}：已注册单位数为0，但已注册域名{c.domains}个，两项数据互相矛盾。",
            )
        )
    badges = c.party_badges + c.institution_badges
    if c.websites is not None and badges > c.websites:
        flags.append(
            Flag(
                "badges_exceed_websites",
                f"{c.name}：网站标识申请通过{badges}个，多于登记的自建网站数{c.websites}，两项数据互相矛盾。",
            )
        )
    if c.websites is not None and c.badge_verified is not None and c.badge_verified > c.websites:
        flags.append(
            Flag(
                "verified_exceed_websites",
                f"{c.name}：经巡检核实挂标的网站{c.badge_verified}个，多于登记的自建网站数{c.websites}。",
            )
        )
    return tuple(flags)


def _sum_optional(rows: Sequence[OfficeCounts], key: str) -> int | None:
    values = [getattr(r, key) for r in rows]
    if all(v is None for v in values):
        return None
    return sum(v or 0 for v in values)


def total_counts(rows: Sequence[OfficeCounts], name: str = "合计", code: str = "") -> OfficeCounts:
    """The 合计 row: each column summed over the rows (optional columns only where known)."""
    sums: dict[str, Any] = {k: sum(getattr(r, k) for r in rows) for k in _COUNT_KEYS}
    sums.update({k: _sum_optional(rows, k) for k in _OPTIONAL_KEYS})
    return OfficeCounts(code=code, name=name, **sums)


def _published_total_notes(published: PublishedTable, ours: CoverageRow) -> list[str]:
    """Where the published 合计 row disagrees with the published rows themselves.

    Differences between our rows and the published rows are noted row by row; here only the
    published table's own arithmetic is checked, and our total (always computed from our rows) stands.
    """
    assert published.total is not None
    headers = dict(SEED_COLUMNS)
    sums = {k: sum(r.get(k, 0) for r in published.rows.values()) for k in _COUNT_KEYS}
    notes = []
    for key, value in published.total.items():
        if key == "coverage_pct":
            expected = pct_half_up(sums["registered_units"], sums["institutions"])
            if expected is not None and value != expected:
                notes.append(
                    f"{published.source}的合计行注册单位覆盖率为{format_pct(value)}，按其各行合计数计算"
                    f"（{sums['registered_units']}÷{sums['institutions']}）应为{format_pct(expected)}；"
                    f"本表合计以各行计算为准（{format_pct(ours.coverage_pct)}）。"
                )
        elif key in sums and value != sums[key]:
            notes.append(
                f"{published.source}的合计行{headers.get(key, key)}为{value}，其各行相加为{sums[key]}；"
                f"本表合计以各行计算为准（{ours.value(key)}）。"
            )
    return notes


def _compare_published(
    rows: Sequence[CoverageRow], total: CoverageRow, published: PublishedTable
) -> list[str]:
    notes: list[str] = []
    headers = dict(SEED_COLUMNS)
    by_name = {r.name: r for r in rows}
    for name, printed in published.rows.items():
        row = by_name.get(name)
        if row is None:
            notes.append(f"{published.source}中的“{name}”一行在本表中没有对应的编办。")
            continue
        for key, value in printed.items():
            ours = row.value(key)
            if ours != value:
                shown = format_pct(value) if key == "coverage_pct" else str(value)
                mine = format_pct(ours) if key == "coverage_pct" else str(ours)
                notes.append(
                    f"{published.source}中“{name}”的{headers.get(key, key)}为{shown}，本表为{mine}。"
                )
    missing = [r.name for r in rows if r.name not in published.rows]
    if published.rows and missing:
        notes.append(f"{published.source}中没有这些行：{'、'.join(missing)}。")
    if published.total is not None:
        notes.extend(_published_total_notes(published, total))
    return notes


def build_coverage(
    office_code: str,
    office_name: str,
    as_of: dt.date,
    rows: Iterable[OfficeCounts],
    *,
    published: PublishedTable | None = None,
    scan_id: str | None = None,
) -> CoverageTable:
    """Compute the table: coverage per row, 合计 from the rows, flags and the notes explaining them."""
    counts = list(rows)
    seen: set[str] = set()
    for c in counts:
        if c.code in seen:
            raise ValueError(f"编办代码 {c.code}（{c.name}）在覆盖率表中出现两次")
        seen.add(c.code)
    built = [CoverageRow(c, pct_half_up(c.registered_units, c.institutions), row_flags(c)) for c in counts]
    tot = total_counts(counts)
    total = CoverageRow(tot, pct_half_up(tot.registered_units, tot.institutions), ())
    notes = [f.message for r in built for f in r.flags]
    if published is not None:
        notes.extend(_compare_published(built, total, published))
    has_scan = any(
        c.badge_verified is not None or c.cn_domains_resolving is not None or c.unverifiable is not None
        for c in counts
    )
    if has_scan:
        notes.append(
            "“网站标识经巡检核实的网站数”“解析正常的中文域名数”“无法判定的网站数”取自最近一次覆盖本地区的巡检"
            + (f"（巡检编号 {scan_id}）" if scan_id else "")
            + "；无法判定指网站超时、拦截或域名解析失败等，不计为不合规。"
        )
    return CoverageTable(
        office_code, office_name, as_of, tuple(built), total, tuple(notes), scan_id, has_scan
    )


def with_notes(table: CoverageTable, extra: Iterable[str]) -> CoverageTable:
    return replace(table, notes=(*table.notes, *extra))


def parse_published_tsv(text: str, source: str) -> PublishedTable:
    """Read a published table in the seed's layout (tab- or comma-separated, ``#`` comments).

    Header: 地区 and the six seed columns; a row named 合计 is the printed total.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{source}: 没有数据")
    sep = "\t" if "\t" in lines[0] else ","
    header = [h.strip() for h in lines[0].split(sep)]
    by_header = {h: k for k, h in SEED_COLUMNS}
    keys: list[str | None] = [by_header.get(h) for h in header[1:]]
    if not any(keys):
        raise ValueError(f"{source}: 第1行没有可识别的表头（应为 地区、行政事业单位机构数 …）")
    rows: dict[str, dict[str, int]] = {}
    total: dict[str, int] | None = None
    for lineno, line in enumerate(lines[1:], start=2):
        cells = [c.strip() for c in line.split(sep)]
        name = cells[0]
        values: dict[str, int] = {}
        for key, cell in zip(keys, cells[1:], strict=False):
            if key is None or cell == "":
                continue
            try:
                values[key] = int(cell.rstrip("%"))
            except ValueError:
                raise ValueError(f"{source} 第{lineno}行（{name}）：{cell!r} 不是数字") from None
        if name == "合计":
            total = values
        else:
            rows[name] = values
    return PublishedTable(source=source, rows=rows, total=total)
