"""Importing units' submitted annual reports from CSV or XLSX (format: docs/annual-report-format.md).

All-or-nothing: every bad row is listed with its line number and reason, and nothing is stored
unless every row is good. Importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import getpass
import io
import os
import re
import socket
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from checks.errors import InputError
from reports.annual import (
    TransitionError,
    derive,
    disagreements,
    normalise_badge_answer,
    normalise_domains_answer,
    submit,
)
from storage.models import AnnualReport, Unit

# Column key → accepted headers (Chinese first, then English aliases). Headers are compared after
# NFKC normalisation, removing spaces and a leading field number such as "3、" or "(5)".
HEADERS: dict[str, tuple[str, ...]] = {
    "year": ("年度", "报告年度", "year"),
    "uscc": ("统一社会信用代码", "uscc"),
    "office_code": ("编办代码", "office_code"),
    "unit_name": ("机构名称", "单位名称", "unit_name"),
    "organizer": ("开办主体名称", "organizer"),
    "site_name": ("网站名称", "site_name"),
    "domains_status": ("中文域名与英文域名的有效性及使用状况", "域名有效性及使用状况", "domains_status"),
    "functions_reviewed": ("职能或业务范围是否经过审核", "职能审核", "functions_reviewed"),
    "badge_displayed": ("是否加挂网站标识", "加挂网站标识", "badge_displayed"),
}
REQUIRED = ("organizer", "domains_status", "functions_reviewed", "badge_displayed")
_NUMBERING = re.compile(r"^[(（]?\d+[)）]?[、.．:：]?")
_YES = {"是": "是", "已审核": "是", "经过审核": "是", "否": "否", "未审核": "否", "未经审核": "否"}


def _norm_header(text: str) -> str:
    t = unicodedata.normalize("NFKC", str(text)).strip().replace(" ", "").replace("\u3000", "")
    return _NUMBERING.sub("", t).lower()


_LOOKUP = {_norm_header(h): key for key, hs in HEADERS.items() for h in hs}


@dataclass(frozen=True, slots=True)
class Issue:
    line: int
    message: str

    def __str__(self) -> str:
        return f"第{self.line}行：{self.message}" if self.line > 0 else self.message


class AnnualImportError(InputError, ValueError):
    """The file was refused; ``issues`` lists every bad row."""

    def __init__(self, source: str, issues: list[Issue]) -> None:
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  {i}" for i in issues[:200])
        more = f"\n  ……另有{len(issues) - 200}处" if len(issues) > 200 else ""
        super().__init__(f"{source}：{len(issues)}处错误，未导入任何数据：\n{lines}{more}")


@dataclass(slots=True)
class ImportResult:
    created: int = 0
    resubmitted: int = 0
    unchanged: int = 0
    report_ids: list[int] = field(default_factory=list)
    disagreements: dict[int, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        n = sum(1 for v in self.disagreements.values() if v)
        return (
            f"新提交{self.created}份，重新提交{self.resubmitted}份，未变化{self.unchanged}份；"
            f"其中{n}份与巡检结果不一致。"
        )


def _decode(data: bytes, source: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            raise AnnualImportError(source, [Issue(1, "文件编码无法识别（应为 UTF-8 或 GB18030）")]) from None


def read_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-empty row of a CSV or the first sheet of an XLSX."""
    source = str(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise AnnualImportError(source, [Issue(1, f"无法作为 XLSX 打开：{exc}")]) from exc
        ws = wb.worksheets[0]
        for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = ["" if v is None else str(v).strip() for v in row]
            if any(cells):
                yield n, cells
        wb.close()
        return
    text = _decode(path.read_bytes(), source)
    for n, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in cells]
        if any(cells):
            yield n, cells


def _find_header(rows: list[tuple[int, list[str]]], source: str) -> tuple[int, dict[str, int]]:
    # A title row above the header is allowed: the header is the first row naming known columns.
    for idx, (line, cells) in enumerate(rows[:10]):
        columns: dict[str, int] = {}
        for j, cell in enumerate(cells):
            key = _LOOKUP.get(_norm_header(cell))
            if key is not None:
                if key in columns:
                    raise AnnualImportError(source, [Issue(line, f"列“{cell}”重复")])
                columns[key] = j
        if len(columns) >= 3:
            missing = [HEADERS[k][0] for k in REQUIRED if k not in columns]
            if "uscc" not in columns and "unit_name" not in columns:
                missing.append("统一社会信用代码（或 机构名称）")
            if missing:
                raise AnnualImportError(source, [Issue(line, f"缺少列：{'、'.join(missing)}")])
            return idx, columns
    raise AnnualImportError(
        source, [Issue(rows[0][0] if rows else 1, "找不到表头（应含 开办主体名称、是否加挂网站标识 等列）")]
    )


def operator() -> str:
    """Who runs this import, as the audit trail names the client of an import: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return f"{user}@{socket.gethostname()}"


def import_annual(
    session: Session, path: Path, *, year: int | None = None, actor: str = "import", client: str = ""
) -> ImportResult:
    """Import ``path``; commits nothing (the caller commits) and raises :class:`AnnualImportError`.

    Each stored submission is an audit event on the channel ``import`` with ``client`` (by default
    :func:`operator`) and the file's name."""
    source = str(path)
    client = f"{client or operator()}:{path.name}"
    if not path.exists():
        raise AnnualImportError(source, [Issue(0, "文件不存在")])
    rows = list(read_rows(path))
    if not rows:
        raise AnnualImportError(source, [Issue(1, "文件是空的")])
    header_idx, cols = _find_header(rows, source)
    issues: list[Issue] = []
    result = ImportResult()
    seen: dict[tuple[int, int], int] = {}
    by_uscc = {u.uscc: u for u in session.scalars(sa.select(Unit).where(Unit.uscc.is_not(None)))}

    def get(cells: list[str], key: str) -> str:
        j = cols.get(key)
        return cells[j].strip() if j is not None and j < len(cells) else ""

    pending: list[tuple[int, Unit, int, dict[str, str]]] = []
    for line, cells in rows[header_idx + 1 :]:
        problems: list[str] = []
        y_text = get(cells, "year")
        y = year
        if y_text:
            try:
                y = int(float(y_text))
            except ValueError:
                problems.append(f"年度“{y_text}”不是年份")
        if y is None and not problems:
            problems.append("没有年度（填写“年度”列或使用 --year）")
        elif y is not None and not 2000 <= y <= 2100:
            problems.append(f"年度 {y} 不合理")
        unit = _find_unit(
            session,
            by_uscc,
            get(cells, "uscc"),
            get(cells, "office_code"),
            get(cells, "unit_name") or get(cells, "organizer"),
            problems,
        )
        fields = {
            k: get(cells, k)
            for k in ("organizer", "site_name", "domains_status", "functions_reviewed", "badge_displayed")
        }
        for key in REQUIRED:
            if not fields[key]:
                problems.append(f"“{HEADERS[key][0]}”为空")
        if fields["functions_reviewed"]:
            fr = _YES.get(fields["functions_reviewed"].replace(" ", ""))
            if fr is None:
                problems.append(
                    f"职能或业务范围是否经过审核应填“是”或“否”，不是“{fields['functions_reviewed']}”"
                )
            else:
                fields["functions_reviewed"] = fr
        if fields["domains_status"] and not normalise_domains_answer(fields["domains_status"]):
            problems.append(
                f"域名有效性及使用状况应以“有效/部分无效/无效/无域名”开头，不是“{fields['domains_status']}”"
            )
        if fields["badge_displayed"] and not normalise_badge_answer(fields["badge_displayed"]):
            problems.append(f"是否加挂网站标识应填“是/否/部分/无网站”，不是“{fields['badge_displayed']}”")
        if unit is not None and y is not None:
            if (unit.id, y) in seen:
                problems.append(f"与第{seen[(unit.id, y)]}行重复（同一单位同一年度）")
            seen[(unit.id, y)] = line
        if problems:
            issues.extend(Issue(line, p) for p in problems)
        elif unit is not None and y is not None:
            pending.append((line, unit, y, fields))
    if issues:
        raise AnnualImportError(source, issues)
    stored: list[AnnualReport] = []
    for line, unit, y, fields in pending:
        try:
            report, what = submit(session, unit, y, fields, actor, via="import", client=client)
        except TransitionError as exc:
            issues.append(Issue(line, str(exc)))
            continue
        setattr(result, what, getattr(result, what) + 1)
        stored.append(report)
    if issues:
        session.rollback()
        raise AnnualImportError(source, issues)
    session.flush()
    for report in stored:
        derive(session, report)
        result.report_ids.append(report.id)
    result.disagreements = {r.id: disagreements(r) for r in stored}
    return result


def _find_unit(
    session: Session,
    by_uscc: dict[str | None, Unit],
    uscc: str,
    office_code: str,
    name: str,
    problems: list[str],
) -> Unit | None:
    if uscc:
        unit = by_uscc.get(uscc.upper())
        if unit is None:
            problems.append(f"统一社会信用代码 {uscc} 不在登记信息中")
        return unit
    if not name:
        problems.append("没有统一社会信用代码，也没有机构名称")
        return None
    stmt = sa.select(Unit).where(Unit.name == name)
    if office_code:
        stmt = stmt.where(Unit.office_code == office_code)
    found = list(session.scalars(stmt.limit(2)))
    if not found:
        problems.append(f"机构“{name}”不在登记信息中" + (f"（编办 {office_code}）" if office_code else ""))
        return None
    if len(found) > 1:
        problems.append(f"机构名称“{name}”不唯一，请填写统一社会信用代码或编办代码")
        return None
    return found[0]
