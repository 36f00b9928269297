"""Domain names: IDNA 2008 encoding (UTS #46 mapping), label length, and the kind rules.

``.政务`` (``xn--zfr164b``) belongs to 党政机关, ``.公益`` (``xn--55qw42g``) to 事业单位 (and social
organisations); the second-level forms under ``.cn`` count the same. A label longer than 63 octets once
encoded is not a DNS name: the encoded length decides, never a character count (punycode compresses
repeated characters). Functions here are pure; the verdict functions use the ``domain.*`` reason codes.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

import idna

from checks.errors import InputError
from checks.expected import UnitKind
from checks.verdict import Status, Verdict

ZHENGWU_TLD = "xn--zfr164b"  # .政务
GONGYI_TLD = "xn--55qw42g"  # .公益
MAX_LABEL_OCTETS = 63
MAX_NAME_OCTETS = 253

CHECK = "domain"


class DomainKind(StrEnum):
    """Kind of a domain name as the programme counts them."""

    ZHENGWU = ".政务"
    GONGYI = ".公益"
    ENGLISH = "英文"


class DomainError(InputError, ValueError):
    """A name that is not a valid domain; ``code`` is ``domain.invalid`` or ``domain.label_too_long``."""

    def __init__(self, code: str, message: str, name: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.name = name


class EncodedDomain(NamedTuple):
    """A valid domain name in both forms: ``unicode`` (U-labels, lower case) and ``ascii`` (A-labels).

    A named tuple rather than a dataclass: a registry import builds hundreds of thousands.
    """

    unicode: str
    ascii: str
    kind: DomainKind

    @property
    def is_chinese(self) -> bool:
        return self.kind is not DomainKind.ENGLISH


# --- punycode (RFC 3492), the fast path --------------------------------------------------------------
# The ``idna`` package validates every code point against its tables and is ~100 µs a name; a registry
# of 100,000 rows needs better. Labels made only of CJK ideographs and ASCII letters/digits are PVALID
# under IDNA 2008 and unchanged by UTS #46 mapping, so for them encoding is punycode alone; every other
# label goes through ``idna``. A property test checks both paths agree.

_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"
_FAST_LABEL = re.compile(r"[a-z0-9\u3400-\u4dbf\u4e00-\u9fff]+")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def punycode(label: str) -> str:
    """RFC 3492 encoding of ``label`` (without the ``xn--`` prefix)."""
    cps = [ord(c) for c in label]
    out = [c for c in label if c < "\x80"]
    b = h = len(out)
    if b:
        out.append("-")
    append = out.append
    digits = _DIGITS
    n, delta, bias = 0x80, 0, 72
    for m in sorted(set(cps)):
        if m < 0x80:
            continue
        delta += (m - n) * (h + 1)
        n = m
        for c in cps:
            if c < n:
                delta += 1
            elif c == n:
                q, k = delta, 36
                while True:
                    t = 1 if k <= bias else 26 if k >= bias + 26 else k - bias
                    if q < t:
                        break
                    append(digits[t + (q - t) % (36 - t)])
                    q = (q - t) // (36 - t)
                    k += 36
                append(digits[q])
                # adapt(delta, h + 1, first=h == b), inlined: this loop is the import's hot path
                delta = delta // 700 if h == b else delta // 2
                h += 1
                delta += delta // h
                k = 0
                while delta > 455:
                    delta //= 35
                    k += 36
                bias = k + (36 * delta) // (delta + 38)
                delta = 0
        delta += 1
        n += 1
    return "".join(out)


@lru_cache(maxsize=1024)
def _fast_alabel(label: str) -> str:
    # Cached: suffix labels (政务, 公益) and city names repeat on every row of a registry.
    return "xn--" + punycode(label)


def _encode_label(label: str, name: str) -> tuple[str, str]:
    """(U-label, A-label) of one label, or :class:`DomainError`."""
    if label.isascii():
        low = label.lower()
        if low.startswith("xn--"):
            try:
                ulabel = idna.decode(low)
                idna.encode(ulabel)
            except idna.IDNAError as exc:
                raise DomainError(
                    "domain.invalid", f"域名“{name}”中的标签“{label}”不是有效的编码标签：{exc}", name
                ) from exc
            return ulabel, low
        if not _LDH_LABEL.fullmatch(low):
            raise DomainError("domain.invalid", f"域名“{name}”中的标签“{label}”含有不允许的字符", name)
        if low[2:4] == "--":
            # "??--" labels are reserved for encodings (RFC 5891 §4.2.3.1); only xn-- is in use.
            raise DomainError("domain.invalid", f"域名“{name}”中的标签“{label}”第3、4位是保留的“--”", name)
        if len(low) > MAX_LABEL_OCTETS:
            raise DomainError(
                "domain.label_too_long",
                f"域名“{name}”中的标签“{label}”长度为{len(low)}字节，超过63字节",
                name,
            )
        return low, low
    lowered = label.lower()
    if _FAST_LABEL.fullmatch(lowered):
        alabel = _fast_alabel(lowered)
        ulabel = lowered
    else:
        try:
            alabel = idna.encode(label, uts46=True).decode("ascii")
            ulabel = idna.decode(alabel)
        except idna.IDNAError as exc:
            if "too long" in str(exc).lower():
                try:
                    octets = len("xn--" + punycode(idna.uts46_remap(label)))
                except (idna.IDNAError, ValueError):
                    octets = 0
                raise DomainError("domain.label_too_long", _too_long(name, label, octets), name) from exc
            raise DomainError(
                "domain.invalid", f"域名“{name}”中的标签“{label}”无法按IDNA 2008编码：{exc}", name
            ) from exc
    if len(alabel) > MAX_LABEL_OCTETS:
        raise DomainError("domain.label_too_long", _too_long(name, label, len(alabel)), name)
    return ulabel, alabel


def _too_long(name: str, label: str, octets: int) -> str:
    size = f"编码后为{octets}字节，" if octets else ""
    return f"域名“{name}”中的标签“{label}”{size}超过63字节，不是有效域名"


def clean_domain_text(text: str) -> str:
    """A registry value reduced to a bare host name: scheme, path, port, spaces and final dot removed;
    ideographic and full-width full stops read as dots."""
    s = "".join(text.split())
    if not s.isascii():
        s = s.replace("\u3002", ".").replace("\uff0e", ".").replace("\uff61", ".")
    if "/" not in s and ":" not in s:
        return s.rstrip(".")
    if "://" in s:
        s = s.split("://", 1)[1]
    elif s.startswith("//"):
        s = s[2:]
    s = s.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if s.count(":") == 1:
        s = s.split(":", 1)[0]
    return s.rstrip(".")


# A lower-case LDH name with a letter-only TLD: already its own A-label form, and English.
_PLAIN_ASCII_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_CN_SUFFIX = {"政务": (ZHENGWU_TLD, DomainKind.ZHENGWU), "公益": (GONGYI_TLD, DomainKind.GONGYI)}


@lru_cache(maxsize=8192)
def encode_domain(text: str) -> EncodedDomain:
    """Both forms of a domain name, or :class:`DomainError` saying why it is not one."""
    # The registry's common shape, "<CJK name>.政务" / ".公益", straight to punycode (same result as the
    # general path below, which also produces every error).
    if len(text) <= MAX_NAME_OCTETS and _PLAIN_ASCII_NAME.fullmatch(text) and "--" not in text:
        return EncodedDomain(text, text, DomainKind.ENGLISH)
    label, dot, tld = text.rpartition(".")
    if dot and tld in _CN_SUFFIX and _FAST_LABEL.fullmatch(label):
        alabel = label if label.isascii() else "xn--" + punycode(label)
        if len(alabel) <= MAX_LABEL_OCTETS:
            tld_ascii, kind = _CN_SUFFIX[tld]
            return EncodedDomain(text, f"{alabel}.{tld_ascii}", kind)
    name = clean_domain_text(text)
    if not name:
        raise DomainError("domain.invalid", "域名为空", text)
    labels = name.split(".")
    if len(labels) < 2:
        raise DomainError("domain.invalid", f"“{name}”不是完整的域名（缺少后缀）", name)
    if "" in labels:
        raise DomainError("domain.invalid", f"域名“{name}”中有空标签（连续的点）", name)
    pairs = [_encode_label(label, name) for label in labels]
    ascii_name = ".".join(a for _, a in pairs)
    if len(ascii_name) > MAX_NAME_OCTETS:
        raise DomainError("domain.invalid", f"域名“{name}”编码后为{len(ascii_name)}字节，超过253字节", name)
    return EncodedDomain(".".join(u for u, _ in pairs), ascii_name, kind_of(ascii_name))


_ZHENGWU_ENDS = ("." + ZHENGWU_TLD, "." + ZHENGWU_TLD + ".cn")
_GONGYI_ENDS = ("." + GONGYI_TLD, "." + GONGYI_TLD + ".cn")


def kind_of(ascii_name: str) -> DomainKind:
    """``.政务``/``.公益`` (also under ``.cn``) or English, from the A-label form."""
    if ascii_name.endswith(_ZHENGWU_ENDS):
        return DomainKind.ZHENGWU
    if ascii_name.endswith(_GONGYI_ENDS):
        return DomainKind.GONGYI
    if "xn--" not in ascii_name and ascii_name.islower():
        return DomainKind.ENGLISH
    labels = ascii_name.lower().rstrip(".").split(".")
    if labels[-1] == "cn" and len(labels) > 2:
        labels = labels[:-1]
    if labels[-1] == ZHENGWU_TLD:
        return DomainKind.ZHENGWU
    if labels[-1] == GONGYI_TLD:
        return DomainKind.GONGYI
    return DomainKind.ENGLISH


def is_gov_cn(ascii_name: str) -> bool:
    return ascii_name == "gov.cn" or ascii_name.endswith(".gov.cn")


def kind_allowed(kind: DomainKind, unit_kind: UnitKind) -> bool:
    """Whether a unit of ``unit_kind`` may hold a Chinese domain of ``kind`` (English: always)."""
    if kind is DomainKind.ZHENGWU:
        return unit_kind is UnitKind.PARTY_GOV
    if kind is DomainKind.GONGYI:
        return unit_kind is not UnitKind.PARTY_GOV
    return True


def expected_kind(unit_kind: UnitKind) -> DomainKind:
    return DomainKind.ZHENGWU if unit_kind is UnitKind.PARTY_GOV else DomainKind.GONGYI


# --- verdicts ----------------------------------------------------------------------------------------


def check_domain(
    text: str,
    unit_kind: UnitKind,
    *,
    expiry: date | None = None,
    today: date | None = None,
    expiring_days: int = 30,
) -> Verdict:
    """The registry-level verdict on one domain of a unit: validity, kind, ``.gov.cn`` use, expiry.

    The most serious problem wins (invalid > wrong kind > expired > ``.gov.cn`` > expiring).
    ``data``: ``name`` (Unicode), ``ascii``, ``kind``, ``expiry`` (ISO date or None).
    """
    try:
        enc = encode_domain(text)
    except DomainError as exc:
        return Verdict(CHECK, Status.FAIL, exc.code, exc.message, data={"name": text.strip()})
    data = {
        "name": enc.unicode,
        "ascii": enc.ascii,
        "kind": str(enc.kind),
        "expiry": expiry.isoformat() if expiry else None,
    }
    if not kind_allowed(enc.kind, unit_kind):
        want = expected_kind(unit_kind)
        return Verdict(
            CHECK,
            Status.FAIL,
            "domain.wrong_kind",
            f"{unit_kind}应使用 {want} 域名，登记的是 {enc.unicode}",
            data=data,
        )
    if expiry is not None and today is not None and expiry < today:
        return Verdict(
            CHECK, Status.FAIL, "domain.expired", f"{enc.unicode} 已于 {expiry.isoformat()} 到期", data=data
        )
    if enc.kind is DomainKind.ENGLISH and is_gov_cn(enc.ascii) and unit_kind is not UnitKind.PARTY_GOV:
        return Verdict(
            CHECK,
            Status.WARN,
            "domain.gov_cn_institution",
            f"{unit_kind}使用 .gov.cn 域名 {enc.unicode}",
            data=data,
        )
    if expiry is not None and today is not None and expiry <= today + timedelta(days=expiring_days):
        return Verdict(
            CHECK, Status.WARN, "domain.expiring", f"{enc.unicode} 将于 {expiry.isoformat()} 到期", data=data
        )
    return Verdict(CHECK, Status.PASS, "domain.ok", data=data)


def check_unit_domains(texts: list[str] | tuple[str, ...], unit_kind: UnitKind) -> Verdict:
    """Whether a 党政机关/事业单位 holds at least one valid Chinese domain of its kind.

    Social organisations are not required to (they pass). ``data``: ``chinese`` (the valid Chinese
    domains of the right kind, Unicode form).
    """
    good: list[str] = []
    for text in texts:
        try:
            enc = encode_domain(text)
        except DomainError:
            continue
        if enc.is_chinese and kind_allowed(enc.kind, unit_kind):
            good.append(enc.unicode)
    if good or unit_kind is UnitKind.SOCIAL:
        return Verdict(CHECK, Status.PASS, "domain.ok", data={"chinese": good})
    return Verdict(
        CHECK,
        Status.FAIL,
        "domain.no_chinese",
        f"{unit_kind}应注册 {expected_kind(unit_kind)} 中文域名",
        data={"chinese": []},
    )
