"""USCC (GB 32100-2015): check character, syntax and the unit-kind cross-check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.expected import UnitKind
from checks.uscc import (
    ALPHABET,
    check_char,
    is_valid_uscc,
    kind_from_uscc,
    kind_problem,
    normalise_uscc,
    uscc_problem,
)

# Real codes quoted in domain.md §7.
REAL = ["12310000425022547M", "12100000470095016Q", "11410182005291054B", "91110000600037341L"]


@pytest.mark.parametrize("code", REAL)
def test_real_codes_are_valid(code: str) -> None:
    assert uscc_problem(code) is None
    assert check_char(code[:17]) == code[17]


@pytest.mark.parametrize("code", REAL)
def test_every_other_check_character_is_refused(code: str) -> None:
    for c in ALPHABET:
        if c != code[17]:
            problem = uscc_problem(code[:17] + c)
            assert problem is not None and problem.code == "check_char"
            assert code[17] in problem.message  # says what it should be


def test_weights_are_powers_of_three_mod_31() -> None:
    from checks.uscc import WEIGHTS

    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@settings(deadline=None)  # the test machine is shared: no per-example deadline
@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17))
def test_computed_check_character_validates_and_a_single_change_is_caught(body: str) -> None:
    code = body + check_char(body)
    assert is_valid_uscc(code)
    # Changing any one of the 17 characters changes the weighted sum mod 31 (weights are units mod 31).
    for i in range(17):
        other = ALPHABET[(ALPHABET.index(code[i]) + 1) % 31]
        assert not is_valid_uscc(code[:i] + other + code[i + 1 :])


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("1231000042502254", "length"),
        ("12310000425022547MX", "length"),
        ("1231000042502254IM", "charset"),  # I is not used
        ("12310000425022547O", "charset"),
        ("12310000425022547S", "charset"),
    ],
)
def test_syntax_problems(code: str, problem: str) -> None:
    found = uscc_problem(code)
    assert found is not None and found.code == problem


def test_normalisation_of_hand_typed_codes() -> None:
    assert normalise_uscc(" 12310000425022547m ") == "12310000425022547M"
    assert normalise_uscc("１２３１００００４２５０２２５４７Ｍ") == "12310000425022547M"
    assert normalise_uscc("123100 0042502 2547M") == "12310000425022547M"


def test_kind_cross_check() -> None:
    assert kind_from_uscc("11410182005291054B") is UnitKind.PARTY_GOV
    assert kind_from_uscc("12310000425022547M") is UnitKind.INSTITUTION
    assert kind_from_uscc("91110000600037341L") is None
    assert kind_problem("11410182005291054B", UnitKind.PARTY_GOV) is None
    p = kind_problem("11410182005291054B", UnitKind.INSTITUTION)
    assert p is not None and p.code == "kind_mismatch" and "党政机关" in p.message
    p2 = kind_problem("12310000425022547M", UnitKind.PARTY_GOV)
    assert p2 is not None and "事业单位" in p2.message
    # Codes of other categories do not contradict any kind.
    assert kind_problem("91110000600037341L", UnitKind.SOCIAL) is None
