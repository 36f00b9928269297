"""统一社会信用代码 (USCC, GB 32100-2015): syntax, check character, and the unit-kind cross-check."""

from __future__ import annotations

import re
from dataclasses import dataclass

from checks.expected import UnitKind

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WELL_FORMED = re.compile(f"[{ALPHABET}]{{18}}")
# Weight of position i (0-based) is 3**i mod 31.
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

# Registering authority 1 (机构编制): category 1 = 机关, 2 = 事业单位.
_KIND_OF_PREFIX = {"11": UnitKind.PARTY_GOV, "12": UnitKind.INSTITUTION}


# A number as Excel writes it in scientific notation (9.11306E+17, 9,11306E+17 in some locales).
_SCIENTIFIC = re.compile(r"\d[.,]?\d*E\+?\d{1,2}", re.IGNORECASE)
# Excel keeps 15 significant digits: an 18-digit code typed as a number ends in 000.
_EXCEL_DIGITS = 15


@dataclass(frozen=True, slots=True)
class UsccProblem:
    """Why a USCC is invalid: ``code`` is stable (``length``, ``charset``, ``check_char``,
    ``kind_mismatch``, ``stored_as_number``), ``message`` is what users read."""

    code: str
    message: str


def normalise_uscc(text: str) -> str:
    """Upper case, spaces and full-width forms removed (registries are typed by hand)."""
    text = text.strip()
    if text.isascii() and text.isalnum():
        return text.upper()
    out = []
    for ch in text.strip():
        o = ord(ch)
        if 0xFF01 <= o <= 0xFF5E:  # full-width ASCII
            ch = chr(o - 0xFEE0)
        if not ch.isspace():
            out.append(ch)
    return "".join(out).upper()


def check_char(first17: str) -> str:
    """The check character for the first 17 characters (which must be in :data:`ALPHABET`)."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def uscc_problem(code: str) -> UsccProblem | None:
    """None when ``code`` (already normalised) is a well-formed USCC, else the first problem."""
    if len(code) != 18:
        return UsccProblem("length", f"统一社会信用代码应为18位，实为{len(code)}位")
    bad = [] if _WELL_FORMED.fullmatch(code) else sorted({c for c in code if c not in _VALUE})
    if bad:
        shown = "".join(bad)
        return UsccProblem("charset", f"统一社会信用代码含有不允许的字符：{shown}（不使用 I、O、S、V、Z）")
    expected = check_char(code[:17])
    if code[17] != expected:
        return UsccProblem("check_char", f"统一社会信用代码校验位错误：应为 {expected}，实为 {code[17]}")
    return None


def number_problem(text: str) -> UsccProblem | None:
    """A problem when ``text`` is what a spreadsheet made of a code stored as a number, not what the
    official typed: ``9.11306E+17`` (scientific notation), or 18 digits of which the last three became
    ``000`` (Excel keeps 15 significant digits) and the check character no longer holds.

    Such a value must not be reported as a wrong check character: the official never typed it.
    """
    t = text.strip().replace(" ", "")
    fix = "请把该列的单元格格式设为“文本”，重新填入完整的18位代码后再导入"
    if _SCIENTIFIC.fullmatch(t):
        return UsccProblem(
            "stored_as_number",
            f"该单元格被 Excel 存成了数字（显示为 {t}），18位代码的后几位已经丢失：{fix}",
        )
    lost = "0" * (18 - _EXCEL_DIGITS)
    if len(t) == 18 and t.isdigit() and t.endswith(lost) and t[17] != check_char(t[:17]):
        return UsccProblem(
            "stored_as_number",
            "该单元格很可能被 Excel 存成了数字：Excel 只保留15位有效数字，后3位变成了 000，"
            f"校验位因此不符：{fix}",
        )
    return None


def is_valid_uscc(code: str) -> bool:
    return uscc_problem(normalise_uscc(code)) is None


def kind_from_uscc(code: str) -> UnitKind | None:
    """The unit kind the USCC's first two characters imply (``11`` 党政机关, ``12`` 事业单位), else None."""
    return _KIND_OF_PREFIX.get(code[:2])


def kind_problem(code: str, kind: UnitKind) -> UsccProblem | None:
    """A problem when the USCC category contradicts the registered unit kind."""
    implied = kind_from_uscc(code)
    if implied is not None and implied != kind:
        return UsccProblem(
            "kind_mismatch",
            f"统一社会信用代码以 {code[:2]} 开头，应为{implied}，与登记的机构类别“{kind}”不符",
        )
    return None


def division_code_of(code: str) -> str:
    """Positions 3–8: the division code of the registering authority."""
    return code[2:8]
