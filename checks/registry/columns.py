"""The registry's columns and how a file's header row is matched to them.

Officials write registries by hand in Excel or WPS: a title row (and a blank row) above the header, a
header spelt as their office always spelt it (``统一信用代码``, ``单位性质``), now and then a typo. So:

- :func:`find_header_row` finds the header among the first rows (the row naming most known columns);
- :func:`match_headers` accepts the Chinese header, the English key and the common synonyms of each
  column, in any case and width, with or without a ``*`` mark or a note in brackets;
- a header that matches no column gets the closest known one as a suggestion ("did you mean"), and
  one so close that it is surely a typo of a column the file lacks is reported as such, so that the
  caller refuses the file rather than silently drop the column's values.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # English name, also accepted as a header
    header: str  # Chinese header, what users read
    required: bool = False
    aliases: tuple[str, ...] = ()
    # Headers that may mean this column but may also hold something else (``联系电话`` may be a landline):
    # never matched, only suggested.
    hints: tuple[str, ...] = ()


REGISTRY_COLUMNS: tuple[Column, ...] = (
    Column("office_code", "编办代码", True, ("编办编码", "所属编办代码", "所属编办编码")),
    Column(
        "unit_name", "机构名称", True, ("单位名称", "开办主体名称", "单位全称", "机构全称", "主办单位名称")
    ),
    Column(
        "uscc",
        "统一社会信用代码",
        True,
        ("统一信用代码", "信用代码", "社会信用代码", "统一社会信用代码证号", "单位统一社会信用代码"),
    ),
    Column(
        "unit_kind",
        "机构类别",
        True,
        ("单位类别", "机构类型", "单位类型", "单位性质", "机构性质"),
    ),
    Column("cn_domains", "中文域名", aliases=("中文域名名称",)),
    Column("en_domains", "英文域名", aliases=("英文域名名称",)),
    Column("site_name", "网站名称"),
    Column("site_url", "网站地址", aliases=("网址", "网站网址", "首页地址", "网站首页地址", "网站首页")),
    Column("icp", "ICP备案号", aliases=("ICP备案编号", "ICP备案", "网站备案号", "ICP许可证号")),
    Column("police_record", "公安备案号", aliases=("公安机关备案号", "公网安备号", "公网安备案号")),
    Column("site_code", "政府网站标识码", aliases=("网站标识码",)),
    Column("badge_code", "网站标识代码", aliases=("标识代码",)),
    Column("badge_status", "标识状态", aliases=("网站标识状态", "标识申请状态", "网站标识申请状态")),
    Column("functions_reviewed", "职能审核", aliases=("职能是否审核", "职能或业务范围是否经过审核")),
    Column("domain_expiry", "域名到期日", aliases=("到期日", "域名到期日期", "域名到期时间")),
    Column("email", "联系邮箱", aliases=("邮箱", "电子邮箱", "电子邮件", "联系人邮箱")),
    Column(
        "mobile", "联系手机", aliases=("手机", "手机号码", "手机号", "联系人手机"), hints=("联系电话", "电话")
    ),
    # Optional extensions of the design's format (exported so that a round trip keeps them).
    Column("badge_verify_id", "标识核验编号"),
    Column("government_site", "政府网站"),
    Column("red_page", "网络红页"),
)

OFFICE_COLUMNS: tuple[Column, ...] = (
    Column("code", "编办代码", True, ("office_code", "编办编码", "行政区划代码")),
    Column("name", "编办名称", True, ("office_name",)),
    Column("parent_code", "上级编办代码", aliases=("上级编办编码",)),
    Column("roster_count", "机构数", aliases=("行政事业单位机构数", "institutions")),
    Column("email", "联系邮箱", aliases=("邮箱", "电子邮箱")),
    Column("mobile", "联系手机", aliases=("手机", "手机号码")),
    Column("level", "级别", aliases=("层级",)),
    Column("valid_from", "启用日期"),
    Column("valid_until", "停用日期"),
    Column("successor_code", "并入编办代码"),
)

HEADER_OF = {c.key: c.header for c in REGISTRY_COLUMNS}
OFFICE_HEADER_OF = {c.key: c.header for c in OFFICE_COLUMNS}

# Columns this program itself adds to the files it writes back (rejected rows): ignored without a remark,
# so that a corrected rejected file imports cleanly. ``序号`` is the running number officials add.
IGNORED_HEADERS = frozenset({"行号", "错误原因", "序号"})

# How many rows from the top may precede the header (titles, notes, blank rows are already skipped).
HEADER_SEARCH_ROWS = 10
# A header cell one character away (wrong, missing or extra) from a name of a column the file lacks is a
# typo of it (the file is refused), if it has at least TYPO_MIN_LENGTH characters: "联系人姓名" is two
# characters from "联系人手机" and a column of its own. At least SUGGEST_RATIO similar, the column is
# named as a suggestion beside the ignored header.
TYPO_MIN_LENGTH = 4
SUGGEST_RATIO = 0.5
_HINT_RATIO = 0.7  # a header equal to a column's hint: suggested, never taken for a typo

_NOTE = re.compile(r"[（(][^）)]*[）)]$")
_NUMBERING = re.compile(r"^[(（]?\d{1,2}[)）]?[、.．:：]")


def normalise_header(text: str) -> str:
    """A header cell as compared: NFKC, no spaces, no ``*`` marks, no leading ``3、``, no trailing
    ``（说明）``, lower case."""
    s = unicodedata.normalize("NFKC", str(text)).replace("\ufeff", "")
    s = re.sub(r"\s+", "", s).strip("*")
    s = _NUMBERING.sub("", s)
    s = _NOTE.sub("", s).strip("*")
    return s.lower()


def _lookup(columns: Sequence[Column]) -> dict[str, Column]:
    out: dict[str, Column] = {}
    for col in columns:
        for name in (col.header, col.key, *col.aliases):
            out.setdefault(normalise_header(name), col)
    return out


@dataclass(frozen=True, slots=True)
class Suggestion:
    """An unknown header cell and the known column it most resembles."""

    cell: str
    header: str  # Chinese header of the column suggested
    ratio: float

    def __str__(self) -> str:
        return f"“{self.cell}”（是否应为“{self.header}”？）"


@dataclass(frozen=True, slots=True)
class HeaderMap:
    """Which position each known column has; what is missing, unknown, misspelt or repeated."""

    positions: dict[str, int]
    missing: tuple[str, ...]  # Chinese headers of required columns not found
    unknown: tuple[str, ...]  # header cells that match no column (ignored)
    repeated: tuple[str, ...]  # Chinese headers given more than once
    suggestions: tuple[Suggestion, ...] = ()  # for unknown cells that resemble a known column
    typos: tuple[Suggestion, ...] = ()  # unknown cells that are surely a column the file lacks

    def missing_text(self) -> str:
        """The missing required columns, each with the header cell that may be it (for messages)."""
        parts = []
        for header in self.missing:
            near = [s.cell for s in self.suggestions if s.header == header]
            parts.append(header + (f"（表头中的“{near[0]}”是否就是此列？）" if near else ""))
        return "、".join(parts)

    def ignored_text(self) -> list[str]:
        """The ignored header cells as shown to users, with a suggestion where there is one."""
        by_cell = {s.cell: s for s in self.suggestions}
        return [str(by_cell[c]) if c in by_cell else c for c in self.unknown]


def closest_column(cell: str, columns: Sequence[Column]) -> Suggestion | None:
    """The known column whose header, key or synonym ``cell`` most resembles (None below
    :data:`SUGGEST_RATIO`)."""
    norm = normalise_header(cell)
    if not norm:
        return None
    best: tuple[float, Column] | None = None
    for col in columns:
        for name in (col.header, *col.aliases, col.key):
            ratio = SequenceMatcher(None, norm, normalise_header(name)).ratio()
            if best is None or ratio > best[0]:
                best = (ratio, col)
        if (best is None or best[0] < _HINT_RATIO) and norm in {normalise_header(h) for h in col.hints}:
            best = (_HINT_RATIO, col)
    if best is None or best[0] < SUGGEST_RATIO:
        return None
    return Suggestion(str(cell).strip(), best[1].header, round(best[0], 3))


def match_headers(cells: Sequence[str], columns: Sequence[Column]) -> HeaderMap:
    """Map header ``cells`` to ``columns`` (Chinese header, English key or synonym, any case/width)."""
    lookup = _lookup(columns)
    positions: dict[str, int] = {}
    unknown: list[str] = []
    repeated: list[str] = []
    for i, cell in enumerate(cells):
        norm = normalise_header(cell)
        if not norm or norm in IGNORED_HEADERS:
            continue
        col = lookup.get(norm)
        if col is None:
            unknown.append(str(cell).strip())
        elif col.key in positions:
            repeated.append(col.header)
        else:
            positions[col.key] = i
    found = {c.header for c in columns if c.key in positions}
    suggestions: list[Suggestion] = []
    for cell in unknown:
        s = closest_column(cell, columns)
        if s is not None:
            suggestions.append(s)
    absent = [c for c in columns if c.key not in positions]
    typos = tuple(
        s
        for s in suggestions
        if s.header not in found
        and len(norm := normalise_header(s.cell)) >= TYPO_MIN_LENGTH
        and any(
            _one_edit_apart(norm, normalise_header(name))
            for c in absent
            if c.header == s.header
            for name in (c.header, *c.aliases)
        )
    )
    missing = tuple(c.header for c in columns if c.required and c.key not in positions)
    return HeaderMap(positions, missing, tuple(unknown), tuple(repeated), tuple(suggestions), typos)


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by changing, dropping or adding one character."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((i for i, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
    return short[i:] == long[i + 1 :]


def header_score(cells: Sequence[str], columns: Sequence[Column]) -> int:
    """How many distinct known columns a row names (0 for a title or data row)."""
    lookup = _lookup(columns)
    return len({lookup[n].key for c in cells if (n := normalise_header(c)) in lookup})


def find_header_row(rows: Sequence[Sequence[str]], columns: Sequence[Column]) -> int:
    """The index of the header among the first non-empty ``rows`` of a file: the first row naming the
    most known columns (a title such as “保定市网站登记表” names none). Without any, 0: the first row
    is then reported as a header lacking its columns."""
    scores = [header_score(cells, columns) for cells in rows[:HEADER_SEARCH_ROWS]]
    if not scores or max(scores) == 0:
        return 0
    return scores.index(max(scores))
