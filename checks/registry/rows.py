"""Validation of registry rows (one row per website): pure functions, no I/O.

A row is turned into a normalised :class:`RegistryRow` or refused with :class:`RowError`s that name the
line, the column (its Chinese header) and the reason in Chinese. :class:`RegistryValidator` adds the
checks that need the whole file (duplicates, a unit described differently on two rows); the caller
supplies the office codes that exist.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from checks import numbers
from checks.domains import DomainError, DomainKind, EncodedDomain, encode_domain, is_gov_cn, kind_allowed
from checks.expected import UnitKind
from checks.registry.columns import HEADER_OF, REGISTRY_COLUMNS
from checks.registry.values import (
    EMAIL,
    MOBILE,
    RowError,
    SiteUrl,
    clean,
    is_placeholder,
    parse_badge_status,
    parse_bool,
    parse_date,
    parse_site_url,
    parse_unit_kind,
    split_list,
)
from checks.uscc import kind_problem, normalise_uscc, number_problem, uscc_problem

# --- rows --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RegistryRow:
    """One valid registry row, normalised. Site fields are empty for a unit without a website.

    Not frozen: a frozen dataclass's ``__init__`` costs several times more, and an import builds one
    per row."""

    line: int
    office_code: str
    unit_name: str
    uscc: str
    unit_kind: UnitKind
    cn_domains: tuple[EncodedDomain, ...] = ()
    en_domains: tuple[EncodedDomain, ...] = ()
    site_name: str = ""
    site_url: str = ""
    site_key: str = ""
    icp: str = ""
    police_record: str = ""
    site_code: str = ""
    badge_code: str = ""
    badge_status: str = ""
    functions_reviewed: bool | None = None
    domain_expiry: date | None = None
    email: str = ""
    mobile: str = ""
    badge_verify_id: str = ""
    government_site: bool = False
    red_page: bool = False

    @property
    def has_site(self) -> bool:
        return bool(self.site_url)


_SITE_FIELDS = (
    "site_name",
    "icp",
    "police_record",
    "site_code",
    "badge_code",
    "badge_status",
    "badge_verify_id",
    "government_site",
    "red_page",
)
# Columns where ``无``, ``/`` or ``-`` mean "nothing" (a unit without a site or domain writes them so).
_OPTIONAL_KEYS = tuple(c.key for c in REGISTRY_COLUMNS if not c.required)
_MAX_LENGTH = (("site_name", 200), ("email", 200))
_EMPTY_ROW = dict.fromkeys((c.key for c in REGISTRY_COLUMNS), "")
_VERIFY_ID = re.compile(r"[0-9A-Fa-f]{32}")


def validate_row(
    raw: Mapping[str, str], line: int, known_offices: Collection[str]
) -> tuple[RegistryRow | None, list[RowError], list[RowError]]:
    """Validate one registry row given by column key (see :data:`REGISTRY_COLUMNS`).

    Returns ``(row, errors, warnings)``; ``row`` is None when there is any error. Rules that need the
    whole file (duplicates) are in :class:`RegistryValidator`.
    """
    errors: list[RowError] = []
    warnings: list[RowError] = []
    # clean() inlined for the common ASCII cell: this runs for every cell of a large registry.
    values = dict(_EMPTY_ROW)
    values.update({k: v.strip() if type(v) is str and v.isascii() else clean(v) for k, v in raw.items()})
    for key in _OPTIONAL_KEYS:
        if values[key] and len(values[key]) <= 3 and is_placeholder(values[key]):
            values[key] = ""

    def err(key: str, message: str, code: str, value: str = "") -> None:
        errors.append(RowError(line, HEADER_OF.get(key, ""), message, code, value))

    office_code = values["office_code"]
    if office_code.endswith(".0") and office_code[:-2].isdigit():  # a number cell read as float
        office_code = office_code[:-2]
    if not office_code:
        err("office_code", "编办代码不能为空", "required")
    elif office_code not in known_offices:
        err(
            "office_code",
            f"编办代码“{office_code}”不存在（编办表和数据库中都没有）",
            "office.unknown",
            office_code,
        )

    unit_name = " ".join(values["unit_name"].split())
    if not unit_name:
        err("unit_name", "机构名称不能为空", "required")
    elif len(unit_name) > 200:
        err("unit_name", f"机构名称过长（{len(unit_name)}字）", "unit_name.too_long")

    kind_text = values["unit_kind"]
    kind = parse_unit_kind(kind_text)
    if not kind_text:
        err("unit_kind", "机构类别不能为空", "required")
    elif kind is None:
        err(
            "unit_kind",
            "机构类别应为 党政机关、事业单位 或 社会组织（也接受 行政机关、公益一类事业单位 等写法）",
            "unit_kind.invalid",
            kind_text,
        )

    uscc_text = values["uscc"]
    uscc = normalise_uscc(uscc_text)
    if not uscc:
        err("uscc", "统一社会信用代码不能为空", "required")
    else:
        # A code Excel stored as a number lost digits: say so, not "wrong check character".
        problem = number_problem(uscc_text) or uscc_problem(uscc)
        if problem is None and kind is not None:
            problem = kind_problem(uscc, kind)
        if problem is not None:
            err("uscc", problem.message, f"uscc.{problem.code}", uscc_text)

    cn: list[EncodedDomain] = []
    for text in split_list(values["cn_domains"]):
        try:
            enc = encode_domain(text)
        except DomainError as exc:
            err("cn_domains", exc.message, exc.code, text)
            continue
        if not enc.is_chinese:
            err(
                "cn_domains",
                f"“{enc.unicode}”不是 .政务 或 .公益 中文域名（英文域名请填在“英文域名”列）",
                "domain.not_chinese",
                text,
            )
        elif kind is not None and not kind_allowed(enc.kind, kind):
            want = DomainKind.ZHENGWU if kind is UnitKind.PARTY_GOV else DomainKind.GONGYI
            err(
                "cn_domains",
                f"{kind}应使用 {want} 域名，不能使用 {enc.kind} 域名“{enc.unicode}”",
                "domain.wrong_kind",
                text,
            )
        else:
            cn.append(enc)

    en: list[EncodedDomain] = []
    for text in split_list(values["en_domains"]):
        try:
            enc = encode_domain(text)
        except DomainError as exc:
            err("en_domains", exc.message, exc.code, text)
            continue
        if enc.is_chinese:
            err("en_domains", f"“{enc.unicode}”是中文域名，应填在“中文域名”列", "domain.not_english", text)
            continue
        if is_gov_cn(enc.ascii) and kind is not None and kind is not UnitKind.PARTY_GOV:
            warnings.append(
                RowError(
                    line,
                    HEADER_OF["en_domains"],
                    f"{kind}使用 .gov.cn 域名“{enc.unicode}”",
                    "domain.gov_cn_institution",
                    text,
                )
            )
        en.append(enc)

    site_url_text = values["site_url"]
    site: SiteUrl | None = None
    if site_url_text:
        try:
            site = parse_site_url(site_url_text)
        except ValueError as exc:
            err("site_url", str(exc), "site_url.invalid", site_url_text)
    else:
        given = [HEADER_OF[k] for k in _SITE_FIELDS if values[k] and not _says_no_site(k, values[k])]
        if given:
            err(
                "site_url",
                f"填写了{'、'.join(given)}，但缺少网站地址（没有网站的单位，标识状态填“未申请”或留空）",
                "site_url.missing",
            )

    icp = ""
    if text := values["icp"]:
        num = numbers.parse_icp(text)
        if num is None:
            err(
                "icp",
                "ICP备案号格式不正确" + _icp_detail(text) + "，应为“省份简称ICP备+8位或10位数字+号”",
                "icp.malformed",
                text,
            )
        else:
            icp = num.canonical()

    police = ""
    if text := values["police_record"]:
        pnum = numbers.parse_police(text)
        if pnum is None:
            err(
                "police_record",
                "公安备案号格式不正确，应为“省份简称公网安备+14位数字+号”",
                "police.malformed",
                text,
            )
        else:
            police = pnum.canonical()

    site_code = ""
    if text := values["site_code"]:
        code = numbers.parse_site_code(text)
        if code is None:
            err(
                "site_code",
                "政府网站标识码格式不正确，应为10位数字或 bm 加8位数字",
                "site_code.malformed",
                text,
            )
        else:
            site_code = code

    badge_code = ""
    if text := values["badge_code"]:
        badge = numbers.parse_badge_code(text)
        if badge is None:
            err("badge_code", "网站标识代码格式不正确，应为 CA 加21位数字", "badge_code.malformed", text)
        else:
            badge_code = badge.canonical()

    badge_status = ""
    if text := values["badge_status"]:
        badge_status = parse_badge_status(text) or ""
        if not badge_status:
            err("badge_status", "标识状态应为 已通过、审核中 或 未申请", "badge_status.invalid", text)

    verify_id = values["badge_verify_id"]
    if verify_id and not _VERIFY_ID.fullmatch(verify_id):
        err("badge_verify_id", "标识核验编号应为32位十六进制字符", "badge_verify_id.malformed", verify_id)

    flags: dict[str, bool | None] = {}
    for key in ("functions_reviewed", "government_site", "red_page"):
        try:
            flags[key] = parse_bool(values[key])
        except ValueError:
            err(key, f"{HEADER_OF[key]}应填“是”或“否”", f"{key}.invalid", values[key])

    expiry: date | None = None
    try:
        expiry = parse_date(values["domain_expiry"])
    except ValueError:
        err(
            "domain_expiry",
            "域名到期日不是有效日期（应为 YYYY-MM-DD）",
            "domain_expiry.invalid",
            values["domain_expiry"],
        )
    if expiry is not None and not values["cn_domains"]:
        warnings.append(
            RowError(
                line,
                HEADER_OF["domain_expiry"],
                "填写了域名到期日但没有中文域名，到期日被忽略",
                "domain_expiry.unused",
            )
        )

    email = values["email"]
    if email and not EMAIL.fullmatch(email) and not all(EMAIL.fullmatch(e) for e in split_list(email)):
        err("email", "联系邮箱格式不正确", "email.invalid", email)
    mobile = values["mobile"]
    if mobile:
        digits = mobile if mobile.isdigit() else re.sub(r"[\s\-()（）]", "", mobile)
        if digits.endswith(".0"):
            digits = digits[:-2]
        m = MOBILE.fullmatch(digits)
        if m is None:
            err("mobile", "联系手机应为11位手机号码", "mobile.invalid", mobile)
        else:
            mobile = m.group(1)

    # Column widths of the database (PostgreSQL refuses longer values; say so here, with the line).
    for key, limit in _MAX_LENGTH:
        if len(values[key]) > limit:
            err(key, f"{HEADER_OF[key]}过长（{len(values[key])}字，最多{limit}字）", f"{key}.too_long")
    if site is not None and len(site.url) > 500:
        err("site_url", f"网站地址过长（{len(site.url)}字符，最多500）", "site_url.too_long")

    if errors or kind is None:
        return None, errors, warnings
    gov = flags.get("government_site")
    return (
        RegistryRow(
            line=line,
            office_code=office_code,
            unit_name=unit_name,
            uscc=uscc,
            unit_kind=kind,
            cn_domains=tuple(cn),
            en_domains=tuple(en),
            site_name=values["site_name"] if site else "",
            site_url=site.url if site else "",
            site_key=site.key if site else "",
            icp=icp,
            police_record=police,
            site_code=site_code,
            badge_code=badge_code,
            badge_status=badge_status,
            functions_reviewed=flags.get("functions_reviewed"),
            domain_expiry=expiry if cn else None,
            email=email,
            mobile=mobile,
            badge_verify_id=verify_id.upper(),
            # Without the column, a site with a 标识码 is a government site: only those are issued one.
            government_site=bool(site_code) if gov is None else gov,
            red_page=bool(flags.get("red_page")),
        ),
        errors,
        warnings,
    )


def _says_no_site(key: str, text: str) -> bool:
    """Whether a site column's value is one a unit without a website may write (``暂未申请``, ``否``)."""
    if key == "badge_status":
        return parse_badge_status(text) == "未申请"
    if key in ("government_site", "red_page"):
        try:
            return parse_bool(text) is False
        except ValueError:
            return False
    return False


def _icp_detail(text: str) -> str:
    m = numbers.ICP_PATTERN.search(numbers.normalise(text))
    if m is None:
        return ""
    problems = numbers.icp_from_match(m).problems
    return "（" + "；".join(problems) + "）" if problems else ""


@dataclass
class _UnitSeen:
    line: int
    name: str
    kind: UnitKind
    office_code: str


@dataclass
class RegistryValidator:
    """Validates the rows of one file in order, adding the whole-file rules:

    - a site URL (scheme ignored) appears once;
    - a domain belongs to one unit (the same unit may repeat it; it links to the first site);
    - a USCC names one unit (same name, kind and office on every row);
    - a unit name is unique within an office.
    """

    known_offices: Collection[str]
    rows: list[RegistryRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    rejected_lines: list[int] = field(default_factory=list)
    _sites: dict[str, int] = field(default_factory=dict)
    _domains: dict[str, tuple[int, str]] = field(default_factory=dict)
    _units: dict[str, _UnitSeen] = field(default_factory=dict)
    _names: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def add(self, raw: Mapping[str, str], line: int) -> list[RowError]:
        """Validate one row; returns its errors (empty when accepted)."""
        return self.add_validated(line, *validate_row(raw, line, self.known_offices))

    def add_validated(
        self, line: int, row: RegistryRow | None, errors: list[RowError], warnings: list[RowError]
    ) -> list[RowError]:
        """Add a row already checked by :func:`validate_row` (rows must come in file order)."""
        if row is not None:
            errors = self._whole_file(row)
        self.warnings.extend(warnings)
        if errors:
            self.errors.extend(errors)
            self.rejected_lines.append(line)
            return errors
        assert row is not None
        self._remember(row)
        self.rows.append(row)
        return []

    def add_all(self, rows: Iterable[tuple[int, Mapping[str, str]]]) -> None:
        for line, raw in rows:
            self.add(raw, line)

    def _whole_file(self, row: RegistryRow) -> list[RowError]:
        out: list[RowError] = []
        line = row.line
        if row.site_key and (first := self._sites.get(row.site_key)) is not None:
            out.append(
                RowError(
                    line,
                    HEADER_OF["site_url"],
                    f"网站地址与第{first}行重复",
                    "duplicate.site_url",
                    row.site_url,
                )
            )
        for enc in (*row.cn_domains, *row.en_domains):
            seen = self._domains.get(enc.ascii)
            if seen is not None and seen[1] != row.uscc:
                col = HEADER_OF["cn_domains" if enc.is_chinese else "en_domains"]
                out.append(
                    RowError(
                        line,
                        col,
                        f"域名“{enc.unicode}”已在第{seen[0]}行登记给另一机构",
                        "duplicate.domain",
                        enc.unicode,
                    )
                )
        unit = self._units.get(row.uscc)
        if unit is not None:
            diffs = []
            if unit.name != row.unit_name:
                diffs.append(f"机构名称“{unit.name}”")
            if unit.kind != row.unit_kind:
                diffs.append(f"机构类别“{unit.kind}”")
            if unit.office_code != row.office_code:
                diffs.append(f"编办代码“{unit.office_code}”")
            if diffs:
                out.append(
                    RowError(
                        line,
                        HEADER_OF["uscc"],
                        f"同一统一社会信用代码在第{unit.line}行登记为{'、'.join(diffs)}，与本行不一致",
                        "duplicate.uscc_conflict",
                        row.uscc,
                    )
                )
        named = self._names.get((row.office_code, row.unit_name))
        if named is not None and named[1] != row.uscc:
            out.append(
                RowError(
                    line,
                    HEADER_OF["unit_name"],
                    f"同一编办下的机构名称已在第{named[0]}行以另一统一社会信用代码（{named[1]}）登记",
                    "duplicate.unit_name",
                    row.unit_name,
                )
            )
        return out

    def _remember(self, row: RegistryRow) -> None:
        if row.site_key:
            self._sites[row.site_key] = row.line
        for enc in (*row.cn_domains, *row.en_domains):
            self._domains.setdefault(enc.ascii, (row.line, row.uscc))
        self._units.setdefault(row.uscc, _UnitSeen(row.line, row.unit_name, row.unit_kind, row.office_code))
        self._names.setdefault((row.office_code, row.unit_name), (row.line, row.uscc))
