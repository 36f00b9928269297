"""Validation of registry rows (one row per website) and office rows: pure functions, no I/O.

A row is turned into a normalised :class:`RegistryRow` or refused with :class:`RowError`s that name the
line, the column (its Chinese header) and the reason in Chinese. :class:`RegistryValidator` adds the
checks that need the whole file (duplicates, a unit described differently on two rows); the caller
supplies the office codes that exist. The column catalogue (Chinese headers and English aliases) is
here too, so the file readers and the error messages share one spelling.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

from checks import numbers
from checks.domains import DomainError, DomainKind, EncodedDomain, encode_domain, is_gov_cn, kind_allowed
from checks.expected import UnitKind
from checks.uscc import kind_problem, normalise_uscc, uscc_problem

# --- columns -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # English name, also accepted as a header
    header: str  # Chinese header, what users read
    required: bool = False
    aliases: tuple[str, ...] = ()


REGISTRY_COLUMNS: tuple[Column, ...] = (
    Column("office_code", "编办代码", True, ("编办编码", "所属编办代码")),
    Column("unit_name", "机构名称", True, ("单位名称", "开办主体名称")),
    Column("uscc", "统一社会信用代码", True, ("信用代码", "社会信用代码")),
    Column("unit_kind", "机构类别", True, ("单位类别", "机构类型", "单位类型")),
    Column("cn_domains", "中文域名"),
    Column("en_domains", "英文域名"),
    Column("site_name", "网站名称"),
    Column("site_url", "网站地址", aliases=("网址", "网站网址", "首页地址")),
    Column("icp", "ICP备案号", aliases=("icp备案号", "ICP备案编号")),
    Column("police_record", "公安备案号", aliases=("公安机关备案号", "公网安备号")),
    Column("site_code", "政府网站标识码", aliases=("网站标识码",)),
    Column("badge_code", "网站标识代码", aliases=("标识代码",)),
    Column("badge_status", "标识状态"),
    Column("functions_reviewed", "职能审核", aliases=("职能是否审核",)),
    Column("domain_expiry", "域名到期日", aliases=("到期日", "域名到期日期")),
    Column("email", "联系邮箱", aliases=("邮箱", "电子邮箱")),
    Column("mobile", "联系手机", aliases=("手机", "手机号码")),
    # Optional extensions of the design's format (exported so that a round trip keeps them).
    Column("badge_verify_id", "标识核验编号"),
    Column("government_site", "政府网站"),
    Column("red_page", "网络红页"),
)

OFFICE_COLUMNS: tuple[Column, ...] = (
    Column("code", "编办代码", True, ("office_code",)),
    Column("name", "编办名称", True, ("office_name",)),
    Column("parent_code", "上级编办代码"),
    Column("roster_count", "机构数", aliases=("行政事业单位机构数", "institutions")),
    Column("email", "联系邮箱", aliases=("邮箱",)),
    Column("mobile", "联系手机", aliases=("手机",)),
    Column("level", "级别"),
    Column("valid_from", "启用日期"),
    Column("valid_until", "停用日期"),
    Column("successor_code", "并入编办代码"),
)

HEADER_OF = {c.key: c.header for c in REGISTRY_COLUMNS}
OFFICE_HEADER_OF = {c.key: c.header for c in OFFICE_COLUMNS}

_NOTE = re.compile(r"[（(][^）)]*[）)]$")


def normalise_header(text: str) -> str:
    """A header cell as compared: NFKC, no spaces, no ``*`` marks, no trailing ``（说明）``, lower case."""
    s = unicodedata.normalize("NFKC", str(text)).replace("\ufeff", "")
    s = re.sub(r"\s+", "", s).strip("*")
    s = _NOTE.sub("", s)
    return s.lower()


@dataclass(frozen=True, slots=True)
class HeaderMap:
    """Which position each known column has; what is missing, unknown or repeated."""

    positions: dict[str, int]
    missing: tuple[str, ...]  # Chinese headers of required columns not found
    unknown: tuple[str, ...]  # header cells that match no column (ignored)
    repeated: tuple[str, ...]  # Chinese headers given more than once


def match_headers(cells: Sequence[str], columns: Sequence[Column]) -> HeaderMap:
    """Map header ``cells`` to ``columns`` (Chinese header, English key or alias, any case/width)."""
    lookup: dict[str, Column] = {}
    col: Column | None
    for col in columns:
        for name in (col.header, col.key, *col.aliases):
            lookup[normalise_header(name)] = col
    positions: dict[str, int] = {}
    unknown: list[str] = []
    repeated: list[str] = []
    for i, cell in enumerate(cells):
        norm = normalise_header(cell)
        if not norm:
            continue
        col = lookup.get(norm)
        if col is None:
            unknown.append(str(cell))
        elif col.key in positions:
            repeated.append(col.header)
        else:
            positions[col.key] = i
    missing = tuple(c.header for c in columns if c.required and c.key not in positions)
    return HeaderMap(positions, missing, tuple(unknown), tuple(repeated))


# --- errors ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """One reason a row is refused (or, as a warning, accepted with a remark).

    ``line`` is the 1-based line (CSV) or row (XLSX) of the file; ``column`` the Chinese header, empty
    when the whole row is concerned; ``code`` a stable identifier of the rule (``uscc.check_char``,
    ``domain.wrong_kind``, ``duplicate.site_url``, ...).
    """

    line: int
    column: str
    message: str
    code: str = ""
    value: str = ""

    def __str__(self) -> str:
        where = f"第{self.line}行" + (f"【{self.column}】" if self.column else "")
        shown = f"（值：{self.value}）" if self.value and self.value not in self.message else ""
        return f"{where}{self.message}{shown}"


# --- value parsers -----------------------------------------------------------------------------------

_UNIT_KINDS: dict[str, UnitKind] = {
    "党政机关": UnitKind.PARTY_GOV, "党政机构": UnitKind.PARTY_GOV, "机关": UnitKind.PARTY_GOV,
    "行政机关": UnitKind.PARTY_GOV, "party_gov": UnitKind.PARTY_GOV, "government": UnitKind.PARTY_GOV,
    "事业单位": UnitKind.INSTITUTION, "institution": UnitKind.INSTITUTION,
    "社会组织": UnitKind.SOCIAL, "社会团体": UnitKind.SOCIAL, "social": UnitKind.SOCIAL,
}  # fmt: skip

_BADGE_STATUS = {
    "已通过": "已通过", "通过": "已通过", "approved": "已通过",
    "审核中": "审核中", "pending": "审核中",
    "未申请": "未申请", "none": "未申请",
}  # fmt: skip

_YES = {"是", "y", "yes", "true", "1", "已审核", "√"}
_NO = {"否", "n", "no", "false", "0", "未审核", "×"}

_LIST_SPLIT = re.compile(r"[;；,，、\s]+")
_DATE_PATTERNS = (
    re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
_EMAIL = re.compile(r"[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+")
_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def clean(value: object) -> str:
    """A cell as text: None → "", NFC, surrounding whitespace (also full-width) removed."""
    if value is None:
        return ""
    s = str(value).strip()
    if s.isascii():
        return s
    return unicodedata.normalize("NFC", s).strip().strip("\u3000").strip()


def parse_unit_kind(text: str) -> UnitKind | None:
    return _UNIT_KINDS.get(text.replace(" ", "").lower())


def parse_bool(text: str) -> bool | None:
    """``是``/``否`` (and yes/no/true/false/1/0); None for empty; raises ValueError otherwise."""
    low = text.strip().lower()
    if not low:
        return None
    if low in _YES:
        return True
    if low in _NO:
        return False
    raise ValueError(text)


def parse_date(text: str) -> date | None:
    """A date written ``2026-05-01``, ``2026/5/1``, ``2026.05.01``, ``2026年5月1日``, ``20260501`` or an
    ISO datetime; None for empty; raises ValueError otherwise."""
    s = text.strip()
    if not s:
        return None
    for pattern in _DATE_PATTERNS:
        m = pattern.fullmatch(s) or (pattern.match(s) if " " in s or "T" in s else None)
        if m:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    raise ValueError(text)


def split_list(text: str) -> list[str]:
    """A ``;``-separated cell (also ``；``, ``,``, ``、``, spaces or line breaks) as its items."""
    if not text:
        return []
    return [p for p in _LIST_SPLIT.split(text) if p]


@dataclass(frozen=True, slots=True)
class SiteUrl:
    """A normalised home URL: ``url`` is what is stored, ``key`` identifies the site (no scheme)."""

    url: str
    key: str
    host: EncodedDomain | None  # None for an IP address


_SIMPLE_URL = re.compile(r"(https?)://([a-z0-9][a-z0-9.-]*[a-z0-9])(/[A-Za-z0-9._~/-]*)?")


def parse_site_url(text: str) -> SiteUrl:
    """Normalise a home URL: scheme ``http`` when missing, host in A-label form, ``/`` path by default.

    Raises ValueError (message in Chinese) when it is not an http(s) URL with a valid host.
    """
    m = _SIMPLE_URL.fullmatch(text)
    if m is not None and not _IPV4.fullmatch(m.group(2)):
        # The common, already-normal shape: skip the general parser (hot path of a large import).
        try:
            simple = encode_domain(m.group(2))
        except DomainError as exc:
            raise ValueError(f"网站地址的主机名无效：{exc.message}") from exc
        path = m.group(3) or "/"
        return SiteUrl(
            f"{m.group(1)}://{simple.ascii}{path}", simple.ascii + (path.rstrip("/") or "/"), simple
        )
    s = re.sub(r"\s+", "", text.translate({0x3002: ".", 0xFF0E: ".", 0xFF1A: ":", 0xFF0F: "/"}))
    if s.startswith("//"):
        s = "http:" + s
    elif not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", s):
        s = "http://" + s
    try:
        parts = urlsplit(s)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"网站地址无法解析：{exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"网站地址应以 http:// 或 https:// 开头，实为 {scheme}://")
    hostname = (parts.hostname or "").rstrip(".")
    if not hostname:
        raise ValueError("网站地址缺少主机名")
    host: EncodedDomain | None = None
    if _IPV4.fullmatch(hostname):
        if any(int(p) > 255 for p in hostname.split(".")):
            raise ValueError(f"网站地址中的IP地址“{hostname}”无效")
        ascii_host = hostname
    else:
        try:
            host = encode_domain(hostname)
        except DomainError as exc:
            raise ValueError(f"网站地址的主机名无效：{exc.message}") from exc
        ascii_host = host.ascii
    default_port = 80 if scheme == "http" else 443
    netloc = ascii_host if port in (None, default_port) else f"{ascii_host}:{port}"
    path = parts.path or "/"
    url = f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")
    key_path = path.rstrip("/") or "/"
    key = f"{ascii_host}{'' if port in (None, 80, 443) else f':{port}'}{key_path}" + (
        f"?{parts.query}" if parts.query else ""
    )
    return SiteUrl(url, key, host)


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
        err("unit_kind", "机构类别应为 党政机关、事业单位 或 社会组织", "unit_kind.invalid", kind_text)

    uscc_text = values["uscc"]
    uscc = normalise_uscc(uscc_text)
    if not uscc:
        err("uscc", "统一社会信用代码不能为空", "required")
    else:
        problem = uscc_problem(uscc)
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
        given = [HEADER_OF[k] for k in _SITE_FIELDS if values[k]]
        if given:
            err("site_url", f"填写了{'、'.join(given)}，但缺少网站地址", "site_url.missing")

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
        badge_status = _BADGE_STATUS.get(text.lower(), "")
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
    if email and not _EMAIL.fullmatch(email) and not all(_EMAIL.fullmatch(e) for e in split_list(email)):
        err("email", "联系邮箱格式不正确", "email.invalid", email)
    mobile = values["mobile"]
    if mobile:
        digits = mobile if mobile.isdigit() else re.sub(r"[\s\-()（）]", "", mobile)
        if digits.endswith(".0"):
            digits = digits[:-2]
        m = _MOBILE.fullmatch(digits)
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


# --- offices -----------------------------------------------------------------------------------------

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
    "county": "county",
}


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
            m = _MOBILE.fullmatch(re.sub(r"[\s\-]", "", _code(mobile)))
            if m is None:
                err("mobile", "联系手机应为11位手机号码", "mobile.invalid", mobile)
            else:
                mobile = m.group(1)
        email = clean(raw.get("email"))
        if email and not all(_EMAIL.fullmatch(e) for e in split_list(email)):
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

