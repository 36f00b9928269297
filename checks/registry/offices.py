"""Validation of the 编办 (offices) sheet: pure functions, no I/O."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from checks.registry.columns import OFFICE_HEADER_OF
from checks.registry.values import EMAIL, MOBILE, RowError, clean, parse_date, split_list

_LEVELS = {
    "省": "province",
    "省级": "province",
    "province": "province",
    "市": "city",
    "市级": "city",
    "city": "city",
    "县": "county",
    "县级": "county",
    "区县": "county",
    "县区": "county",
    "区": "county",
    "county": "county",
}
# The level as the 级别 column writes it (export writes what an import reads, in Chinese).
LEVEL_LABELS = {"province": "省", "city": "市", "county": "县"}


@dataclass(frozen=True, slots=True)
class OfficeRow:
    line: int
    code: str
    name: str
    parent_code: str | None = None
    roster_count: int | None = None
    email: str = ""
    mobile: str = ""
    level: str = "county"
    valid_from: date | None = None
    valid_until: date | None = None
    successor_code: str | None = None


def level_of_code(code: str) -> str:
    """``province`` (``xx0000``), ``city`` (``xxxx00``) or ``county`` from a 6-digit division code."""
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def _code(text: str) -> str:
    return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text


def validate_offices(
    rows: Iterable[tuple[int, Mapping[str, str]]], known_offices: Collection[str] = ()
) -> tuple[list[OfficeRow], list[RowError]]:
    """Validate the 编办 sheet: 6-digit codes, names, counts, no duplicates, parents that exist
    (in the sheet or among ``known_offices``). Returns ``(valid rows, errors)``."""
    out: list[OfficeRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    references: list[tuple[int, str, str]] = []  # (line, column key, code): checked once all are read
    for line, raw in rows:
        errs: list[RowError] = []

        def err(
            key: str,
            message: str,
            code: str,
            value: str = "",
            _errs: list[RowError] = errs,
            _line: int = line,
        ) -> None:
            _errs.append(RowError(_line, OFFICE_HEADER_OF[key], message, code, value))

        code = _code(clean(raw.get("code")))
        name = clean(raw.get("name"))
        if not re.fullmatch(r"\d{6}", code):
            err("code", "编办代码应为6位行政区划代码", "office.code_invalid", code)
        elif code in seen:
            err("code", f"编办代码与第{seen[code]}行重复", "duplicate.office", code)
        if not name:
            err("name", "编办名称不能为空", "required")
        parent = _code(clean(raw.get("parent_code"))) or None
        if parent is not None and not re.fullmatch(r"\d{6}", parent):
            err("parent_code", "上级编办代码应为6位行政区划代码", "office.parent_invalid", parent)
        roster: int | None = None
        if text := clean(raw.get("roster_count")):
            try:
                value = float(text)
                if value < 0 or value != int(value):
                    raise ValueError(text)
                roster = int(value)
            except ValueError:
                err("roster_count", "机构数应为非负整数", "office.roster_invalid", text)
        level_text = clean(raw.get("level"))
        level = _LEVELS.get(level_text.lower()) if level_text else level_of_code(code)
        if level is None:
            err("level", "级别应为 省、市 或 县", "office.level_invalid", level_text)
        dates: dict[str, date | None] = {}
        for key in ("valid_from", "valid_until"):
            try:
                dates[key] = parse_date(clean(raw.get(key)))
            except ValueError:
                err(key, f"{OFFICE_HEADER_OF[key]}不是有效日期", "office.date_invalid", clean(raw.get(key)))
        successor = _code(clean(raw.get("successor_code"))) or None
        if parent is not None and re.fullmatch(r"\d{6}", parent):
            references.append((line, "parent_code", parent))
        if successor is not None:
            references.append((line, "successor_code", successor))
        mobile = clean(raw.get("mobile"))
        if mobile:
            m = MOBILE.fullmatch(re.sub(r"[\s\-]", "", _code(mobile)))
            if m is None:
                err("mobile", "联系手机应为11位手机号码", "mobile.invalid", mobile)
            else:
                mobile = m.group(1)
        email = clean(raw.get("email"))
        if email and not all(EMAIL.fullmatch(e) for e in split_list(email)):
            err("email", "联系邮箱格式不正确", "email.invalid", email)
        if code and code not in seen:
            seen[code] = line
        if errs:
            errors.extend(errs)
            continue
        out.append(
            OfficeRow(
                line,
                code,
                name,
                parent,
                roster,
                email,
                mobile,
                level or "county",
                dates.get("valid_from"),
                dates.get("valid_until"),
                successor,
            )
        )
    codes = set(seen) | set(known_offices)
    for line, key, code in references:
        if code not in codes:
            what = "上级编办代码" if key == "parent_code" else "并入编办代码"
            reason = "office.parent_unknown" if key == "parent_code" else "office.successor_unknown"
            errors.append(RowError(line, OFFICE_HEADER_OF[key], f"{what}“{code}”不存在", reason, code))
    bad = {e.line for e in errors}
    return [r for r in out if r.line not in bad], sorted(errors, key=lambda e: e.line)
