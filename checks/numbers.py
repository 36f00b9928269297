"""Syntax of the registry identifiers: ICP 备案号, 公安机关备案号, 政府网站标识码, CONAC badge code.

The grammar of each identifier is written once here: the strict parsers (``parse_*``) used to validate
registry values, and the compiled patterns (``*_PATTERN``) that find candidates anywhere in normalised
text (used by the page checks). Patterns are deliberately looser than the parsers: a number that looks
like an ICP number but has the wrong digit count must still be *found*, so that it can be reported as
malformed instead of missing. All matching runs on :func:`normalise`-d text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# --- normalisation -------------------------------------------------------------------------------

# Characters that render as nothing but split a number for a regex.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"\s+")


def normalise_char(ch: str) -> str:
    """One character after NFKC (full-width → half-width), invisible characters removed.

    The result may be empty or longer than one character; whitespace is returned as ``" "``.
    """
    if ch in "\u200b\u200c\u200d\u2060\ufeff\u00ad":
        return ""
    out = unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch
    # NFKC keeps ideographic punctuation that matters for identifiers; map the ones seen in footers.
    out = out.replace("\u3002", ".").replace("\u2014", "-").replace("\u2013", "-").replace("\u2212", "-")
    if out.isspace():
        return " "
    return out


def normalise(text: str) -> str:
    """NFKC (full-width → half-width), invisible characters dropped, whitespace runs folded to one space."""
    text = unicodedata.normalize("NFKC", text.translate(_INVISIBLE))
    text = text.replace("\u3002", ".").replace("\u2014", "-").replace("\u2013", "-").replace("\u2212", "-")
    return _SPACES.sub(" ", text).strip()


# --- provinces -----------------------------------------------------------------------------------

#: Province abbreviation → 2-digit GB province code (both forms for 川/蜀, 甘/陇, 黔/贵, 滇/云).
PROVINCE_CHARS: dict[str, str] = {
    "京": "11", "津": "12", "冀": "13", "晋": "14", "蒙": "15",
    "辽": "21", "吉": "22", "黑": "23",
    "沪": "31", "苏": "32", "浙": "33", "皖": "34", "闽": "35", "赣": "36", "鲁": "37",
    "豫": "41", "鄂": "42", "湘": "43", "粤": "44", "桂": "45", "琼": "46",
    "渝": "50", "川": "51", "蜀": "51", "黔": "52", "贵": "52", "滇": "53", "云": "53", "藏": "54",
    "陕": "61", "甘": "62", "陇": "62", "青": "63", "宁": "64", "新": "65",
}  # fmt: skip

#: The 2-digit GB codes of the provinces.
PROVINCE_CODES: frozenset[str] = frozenset(PROVINCE_CHARS.values())

_PROV_CLASS = "".join(PROVINCE_CHARS)


def province_label(code: str) -> str:
    """``冀（13）`` for ``13``: the abbreviation(s) and code, for messages."""
    chars = "/".join(c for c, v in PROVINCE_CHARS.items() if v == code)
    return f"{chars}（{code}）" if chars else code


def province_code_of_char(ch: str) -> str | None:
    """The GB province code of a province abbreviation (``川`` and ``蜀`` → ``51``), else None."""
    return PROVINCE_CHARS.get(ch)


# --- ICP 备案号 ------------------------------------------------------------------------------------

#: Finds ICP numbers in normalised text. Groups: ``prov`` (any CJK character or absent: a non-province
#: character makes the number malformed, not invisible), ``kind`` (备/证/absent), ``digits``,
#: ``suffix`` (site index, before or after 号).
ICP_PATTERN = re.compile(
    r"(?:(?P<prov>[\u4e00-\u9fff])\s?)?"
    r"ICP\s?(?P<kind>[备證证])?\s?(?:案\s?)?(?:号\s?)?(?:[:]\s?)?"
    r"(?P<digits>\d{4,14})(?!\d)"
    r"(?:\s?-\s?(?P<suffix1>\d{1,3})(?!\d))?"
    r"(?:\s?(?P<hao>号))?"
    r"(?:(?(suffix1)(?!)|\s?-\s?(?P<suffix2>\d{1,3})(?!\d)))?",
    re.IGNORECASE,
)

_ICP_LABEL = re.compile(r"^(?:ICP\s?备案(?:号|编号)?|备案号|网站备案号?)\s?[:]?\s?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class IcpNumber:
    """An ICP number as displayed: ``京ICP备19054529号-1``.

    ``province`` is the abbreviation as written (empty if none or not a province), ``kind`` is ``备``
    (non-commercial filing; assumed when 备 was left out) or ``证`` (commercial licence), ``digits`` the
    number, ``suffix`` the site index (empty if none).
    """

    province: str
    kind: str
    digits: str
    suffix: str = ""

    @property
    def province_code(self) -> str | None:
        return province_code_of_char(self.province)

    @property
    def is_filing(self) -> bool:
        """A non-commercial filing number (备), as opposed to a commercial licence (证)."""
        return self.kind == "备"

    @property
    def problems(self) -> tuple[str, ...]:
        """Why this number is malformed (empty when it is well-formed)."""
        out: list[str] = []
        if not self.province_code:
            out.append(f"省份简称“{self.province}”无效" if self.province else "缺少省份简称")
        if self.kind == "备" and len(self.digits) not in (8, 10):
            out.append(f"备案号应为8位或10位数字，实为{len(self.digits)}位")
        if self.kind == "证" and len(self.digits) != 6:
            out.append(f"许可证号应为6位数字，实为{len(self.digits)}位")
        return tuple(out)

    @property
    def is_valid(self) -> bool:
        return not self.problems

    def canonical(self, with_suffix: bool = True) -> str:
        base = f"{self.province}ICP{self.kind}{self.digits}号"
        return f"{base}-{self.suffix}" if (with_suffix and self.suffix) else base

    def same_filing(self, other: IcpNumber, ignore_suffix: bool = False) -> bool:
        """Equal as filings: same province code (蜀 = 川), kind, digits and (unless ignored) suffix."""
        return (
            self.province_code == other.province_code
            and self.kind == other.kind
            and self.digits == other.digits
            and (ignore_suffix or self.suffix.lstrip("0") == other.suffix.lstrip("0"))
        )


def icp_from_match(m: re.Match[str]) -> IcpNumber:
    """The :class:`IcpNumber` of an :data:`ICP_PATTERN` match (possibly malformed)."""
    prov = m.group("prov") or ""
    kind = (m.group("kind") or "备").replace("證", "证")
    suffix = m.group("suffix1") or m.group("suffix2") or ""
    return IcpNumber(prov, kind, m.group("digits"), suffix)


def parse_icp(text: str) -> IcpNumber | None:
    """A well-formed ICP number from a registry value, or None.

    Tolerant of spaces, colons, full-width characters, a missing 号 or 备 and a ``ICP备案号：`` label;
    ``粤B2-…`` (a telecom business licence) is not an ICP number.
    """
    s = _ICP_LABEL.sub("", normalise(text))
    m = ICP_PATTERN.fullmatch(s)
    if not m or not m.group("prov"):
        return None
    num = icp_from_match(m)
    return num if num.is_valid else None


# --- 公安机关备案号 ---------------------------------------------------------------------------------

#: Finds 公安 numbers in normalised text. ``prov`` may be absent (``公安机关备案号：…``).
POLICE_PATTERN = re.compile(
    r"(?:(?P<prov>[\u4e00-\u9fff])\s?)?"
    r"(?:公网安备|公安网备|网安备|公安(?:机关)?备案(?:号|编号)?)\s?(?:案\s?)?(?:号\s?)?(?:[:]\s?)?"
    r"(?P<digits>\d{3,18})(?!\d)(?:\s?号)?"
)

_POLICE_LABEL = re.compile(r"^(?:公安(?:机关)?备案(?:号|编号)?)\s?[:]?\s?")
_POLICE_LENGTHS = (10, 13, 14)


@dataclass(frozen=True, slots=True)
class PoliceNumber:
    """A 公安机关备案号: ``京公网安备 11010502030143号``. ``province`` is empty when not written."""

    province: str
    digits: str

    @property
    def province_code(self) -> str | None:
        """The province of the written abbreviation, else of the first two digits."""
        if self.province:
            return province_code_of_char(self.province)
        head = self.digits[:2]
        return head if head in PROVINCE_CODES else None

    @property
    def division_prefix(self) -> str:
        """The first 6 digits: usually the county-level division code of the filing bureau."""
        return self.digits[:6]

    @property
    def problems(self) -> tuple[str, ...]:
        out: list[str] = []
        if self.province and self.province not in PROVINCE_CHARS:
            out.append(f"省份简称“{self.province}”无效")
        if len(self.digits) not in _POLICE_LENGTHS:
            out.append(f"备案号应为14位（旧号10位或13位）数字，实为{len(self.digits)}位")
        return tuple(out)

    @property
    def is_valid(self) -> bool:
        return not self.problems

    def canonical(self) -> str:
        return f"{self.province}公网安备{self.digits}号"


def police_from_match(m: re.Match[str]) -> PoliceNumber:
    prov = m.group("prov") or ""
    # "…备案号：" style labels are preceded by arbitrary text; only a province abbreviation counts.
    if prov and prov not in PROVINCE_CHARS and not m.group(0)[len(prov) :].lstrip().startswith("公网安备"):
        prov = ""
    return PoliceNumber(prov, m.group("digits"))


def parse_police(text: str) -> PoliceNumber | None:
    """A well-formed 公安 number (labelled, or bare 10/13/14 digits as registries hold it), or None."""
    s = _POLICE_LABEL.sub("", normalise(text))
    if s.isdigit() and s.isascii():
        num = PoliceNumber("", s)
        return num if num.is_valid else None
    m = POLICE_PATTERN.fullmatch(s)
    if not m:
        return None
    num = police_from_match(m)
    return num if num.is_valid else None


# --- 政府网站标识码 ----------------------------------------------------------------------------------

SITE_CODE_RE = re.compile(r"(?:\d{10}|bm\d{8})", re.IGNORECASE)

#: Finds footer text ``网站标识码：1306000001`` (also 政府网站标识码, 网站识别码); ``value`` is loose so
#: malformed codes are found too.
SITE_CODE_LABEL_PATTERN = re.compile(
    r"(?:政府)?网站(?:标识|识别)码\s?[:]?\s?(?P<value>(?:bm|BM|Bm|bM)?\d{4,14})(?!\d)"
)


def parse_site_code(text: str) -> str | None:
    """A 政府网站标识码 (10 digits, or ``bm`` + 8 digits, returned lower-case), or None."""
    s = normalise(text)
    s = re.sub(r"^(?:政府)?网站(?:标识|识别)码\s?[:]?\s?", "", s)
    if SITE_CODE_RE.fullmatch(s):
        return s.lower()
    return None


def site_code_region(code: str) -> str | None:
    """The 6-digit division code of a local-government 标识码 (None for ``bm`` codes)."""
    return code[:6] if code.isdigit() else None


# --- CONAC badge code -----------------------------------------------------------------------------

#: ``CA`` + 21 digits anywhere (a word boundary on both sides).
BADGE_CODE_PATTERN = re.compile(r"(?<![A-Za-z0-9])CA(\d{21})(?!\d)", re.IGNORECASE)

#: The badge script path ``/js/P2/C3/D4/N8/CA….js``.
BADGE_SCRIPT_PATH_PATTERN = re.compile(
    r"/js/(?P<p2>\d{2})/(?P<c3>\d{3})/(?P<d4>\d{4})/(?P<n8>\d{8})/CA(?P<code>\d{21})\.js", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class BadgeCode:
    """A CONAC badge code ``CA`` + P2 C3 D4 N8 S4 (P2 is CONAC's own province number, not GB)."""

    p2: str
    c3: str
    d4: str
    n8: str
    s4: str

    def canonical(self) -> str:
        return f"CA{self.p2}{self.c3}{self.d4}{self.n8}{self.s4}"

    def script_path(self) -> str:
        """The path of this site's badge script on the CONAC script host."""
        return f"/js/{self.p2}/{self.c3}/{self.d4}/{self.n8}/{self.canonical()}.js"

    @classmethod
    def from_digits(cls, digits: str) -> BadgeCode:
        if len(digits) != 21 or not digits.isdigit():
            raise ValueError(f"badge code needs 21 digits: {digits!r}")
        return cls(digits[0:2], digits[2:5], digits[5:9], digits[9:17], digits[17:21])


def parse_badge_code(text: str) -> BadgeCode | None:
    """A badge code from ``CA…`` (21 digits), bare 21 digits, or a badge script URL/path, else None.

    A script path whose directories disagree with its file name is refused.
    """
    s = normalise(text)
    m = BADGE_SCRIPT_PATH_PATTERN.search(s)
    if m:
        code = BadgeCode.from_digits(m.group("code"))
        dirs = (m.group("p2"), m.group("c3"), m.group("d4"), m.group("n8"))
        return code if dirs == (code.p2, code.c3, code.d4, code.n8) else None
    s = s.replace(" ", "")
    m2 = re.fullmatch(r"(?:CA)?(\d{21})", s, re.IGNORECASE)
    return BadgeCode.from_digits(m2.group(1)) if m2 else None
