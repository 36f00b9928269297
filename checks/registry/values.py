"""Cell values of a registry file: errors, and the parsers of kinds, yes/no, dates, lists and URLs.

Pure functions, no I/O. Officials write cells as they speak: ``行政机关`` for 党政机关, ``无`` or ``/``
for "no website", dates as ``2027年12月31日``. The parsers accept those and say in Chinese what they
cannot read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

from checks.domains import DomainError, EncodedDomain, encode_domain
from checks.expected import UnitKind

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
    "行政机关": UnitKind.PARTY_GOV, "行政单位": UnitKind.PARTY_GOV, "行政机构": UnitKind.PARTY_GOV,
    "党委机关": UnitKind.PARTY_GOV, "党群机关": UnitKind.PARTY_GOV, "政府机关": UnitKind.PARTY_GOV,
    "国家机关": UnitKind.PARTY_GOV, "party_gov": UnitKind.PARTY_GOV, "government": UnitKind.PARTY_GOV,
    "事业单位": UnitKind.INSTITUTION, "事业": UnitKind.INSTITUTION, "institution": UnitKind.INSTITUTION,
    "社会组织": UnitKind.SOCIAL, "社会团体": UnitKind.SOCIAL, "民办非企业单位": UnitKind.SOCIAL,
    "基金会": UnitKind.SOCIAL, "social": UnitKind.SOCIAL,
}  # fmt: skip

_BADGE_STATUS = {
    "已通过": "已通过", "通过": "已通过", "已获取": "已通过", "approved": "已通过",
    "审核中": "审核中", "已申请": "审核中", "申请中": "审核中", "pending": "审核中",
    "未申请": "未申请", "暂未申请": "未申请", "尚未申请": "未申请", "none": "未申请",
}  # fmt: skip

# What officials write in a cell that has nothing to say ("no website", "no domain"): read as empty.
PLACEHOLDERS = frozenset({"无", "暂无", "没有", "无网站", "无域名", "/", "-", "--", "—", "——", "－", "／"})

_YES = {"是", "y", "yes", "true", "1", "已审核", "√"}
_NO = {"否", "n", "no", "false", "0", "未审核", "×"}

_LIST_SPLIT = re.compile(r"[;；,，、\s]+")
_DATE_PATTERNS = (
    re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
EMAIL = re.compile(r"[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+")
MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
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
    """党政机关 / 事业单位 / 社会组织 and the ways a 单位性质 column writes them (``行政机关``,
    ``公益一类事业单位``, ``参照公务员法管理事业单位``); None when unknown."""
    t = text.replace(" ", "").lower()
    kind = _UNIT_KINDS.get(t)
    if kind is None and t.endswith("事业单位"):
        kind = UnitKind.INSTITUTION
    return kind


def parse_badge_status(text: str) -> str | None:
    """已通过, 审核中 or 未申请 (also ``通过``, ``已申请``, ``暂未申请``, ...); None when unknown."""
    return _BADGE_STATUS.get(text.replace(" ", "").lower())


def is_placeholder(text: str) -> bool:
    """A cell that says "none" (``无``, ``/``, ``-``, ...) rather than give a value."""
    return text in PLACEHOLDERS or text.rstrip("。.") in PLACEHOLDERS


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
