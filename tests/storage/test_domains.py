"""Domain names: IDNA 2008 + UTS #46 encoding, encoded label length, kind rules and verdicts."""

from __future__ import annotations

from datetime import date

import idna
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from checks.domains import (
    DomainError,
    DomainKind,
    check_domain,
    check_unit_domains,
    encode_domain,
    kind_of,
    punycode,
)
from checks.expected import UnitKind
from checks.verdict import Status


def test_tlds_encode_as_conac_registers_them() -> None:
    assert encode_domain("中央编办.政务.cn").ascii.endswith(".xn--zfr164b.cn")
    assert encode_domain("威海市妇女儿童医院.公益").ascii.endswith(".xn--55qw42g")
    assert encode_domain("中央编办.政务.cn").kind is DomainKind.ZHENGWU
    assert encode_domain("威海市妇女儿童医院.公益").kind is DomainKind.GONGYI
    assert encode_domain("www.bd.gov.cn").kind is DomainKind.ENGLISH
    assert kind_of("xn--55qw42g.cn") is DomainKind.ENGLISH  # a bare second-level "公益.cn" is no unit's name


@pytest.mark.parametrize("name", ["中央编办.政务.cn", "威海市妇女儿童医院.公益", "保定市人民政府.政务"])
def test_same_as_idna_package(name: str) -> None:
    assert encode_domain(name).ascii == idna.encode(name, uts46=True).decode()


def test_ideographic_and_fullwidth_full_stops_spaces_and_scheme() -> None:
    expected = idna.encode("中央编办.政务.cn").decode()
    for text in [
        "中央编办。政务。cn",
        "中央编办．政务．cn",
        " 中央编办.政务.cn. ",
        "http://中央编办.政务.cn/",
        "中央编办 .政务.cn",
        "ＷＷＷ.中央编办.政务.cn"[4:],
    ]:
        assert encode_domain(text).ascii == expected, text
    assert encode_domain("ＷＷＷ.Example.GOV.cn").ascii == "www.example.gov.cn"


def test_real_18_character_name_fits_in_62_octets() -> None:
    enc = encode_domain("鄂尔多斯市恩格贝生态示范区管理委员会.政务")
    assert len(enc.ascii.split(".")[0]) == 62


def test_varied_21_character_name_is_too_long_but_21_repeated_fit() -> None:
    name = "内蒙古自治区鄂尔多斯市恩格贝生态示范区管委"
    assert len(name) == 21
    with pytest.raises(idna.IDNAError):  # the reference implementation agrees
        idna.encode(name + ".政务", uts46=True)
    with pytest.raises(DomainError) as err:
        encode_domain(name + ".政务")
    assert err.value.code == "domain.label_too_long"
    assert "63" in err.value.message
    repeated = encode_domain("政" * 21 + ".政务")
    assert len(repeated.ascii.split(".")[0]) == 27


@pytest.mark.parametrize(
    "text", ["", ".政务", "保定..政务", "bad_name.gov.cn", "-x.gov.cn", "政务", "xn--zz.政务"]
)
def test_invalid_names(text: str) -> None:
    with pytest.raises(DomainError) as err:
        encode_domain(text)
    assert err.value.code == "domain.invalid"


CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)


@settings(max_examples=300, deadline=None)
@given(st.text(CJK, min_size=1, max_size=30), st.text("abcxyz019", max_size=4))
def test_fast_path_agrees_with_idna(cjk: str, ascii_part: str) -> None:
    label = cjk + ascii_part
    try:
        want: str | None = idna.encode(label + ".政务", uts46=True).decode()
    except idna.IDNAError:
        want = None
    try:
        got: str | None = encode_domain(label + ".政务").ascii
    except DomainError as exc:
        assert exc.code == "domain.label_too_long"
        got = None
    assert got == want


@settings(deadline=None)  # the test machine is shared: no per-example deadline
@given(
    st.text(
        st.characters(min_codepoint=0x80, max_codepoint=0x2FFFF, categories=("Lo", "Ll")),
        min_size=1,
        max_size=12,
    )
)
def test_punycode_matches_the_standard_codec(label: str) -> None:
    assert punycode(label) == label.encode("punycode").decode("ascii")


def test_uts46_mapping_for_labels_off_the_fast_path() -> None:
    # Full-width letters and upper case are mapped; the result equals idna's.
    assert encode_domain("ＡＢＣ保定.政务").ascii == idna.encode("abc保定.政务", uts46=True).decode()


# --- verdicts ----------------------------------------------------------------------------------------

PARTY, INST, SOCIAL = UnitKind.PARTY_GOV, UnitKind.INSTITUTION, UnitKind.SOCIAL


@pytest.mark.parametrize(
    ("name", "kind", "reason", "status"),
    [
        ("保定市人民政府.政务", PARTY, "domain.ok", Status.PASS),
        ("保定市第一中心医院.公益", INST, "domain.ok", Status.PASS),
        ("保定市慈善协会.公益", SOCIAL, "domain.ok", Status.PASS),
        ("保定市人民政府.公益", PARTY, "domain.wrong_kind", Status.FAIL),
        ("保定市第一中心医院.政务", INST, "domain.wrong_kind", Status.FAIL),
        ("中央编办.政务.cn", PARTY, "domain.ok", Status.PASS),
        ("www.bdsdyzxyy.gov.cn", INST, "domain.gov_cn_institution", Status.WARN),
        ("www.bd.gov.cn", PARTY, "domain.ok", Status.PASS),
        ("天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬.政务", PARTY, "domain.label_too_long", Status.FAIL),
        ("bad..name", PARTY, "domain.invalid", Status.FAIL),
    ],
)
def test_check_domain(name: str, kind: UnitKind, reason: str, status: Status) -> None:
    v = check_domain(name, kind)
    assert (v.reason, v.status) == (reason, status)
    assert v.check == "domain"
    v.message  # noqa: B018 - every reason is in the catalogue


def test_expiry() -> None:
    today = date(2026, 11, 28)
    name = "保定市人民政府.政务"
    assert check_domain(name, PARTY, expiry=date(2026, 11, 27), today=today).reason == "domain.expired"
    assert check_domain(name, PARTY, expiry=date(2026, 11, 28), today=today).reason == "domain.expiring"
    assert check_domain(name, PARTY, expiry=date(2026, 12, 28), today=today).reason == "domain.expiring"
    assert check_domain(name, PARTY, expiry=date(2026, 12, 29), today=today).reason == "domain.ok"
    assert (
        check_domain(name, PARTY, expiry=date(2026, 12, 10), today=today, expiring_days=5).reason
        == "domain.ok"
    )
    # The wrong kind outranks expiry.
    assert (
        check_domain("保定.公益", PARTY, expiry=date(2020, 1, 1), today=today).reason == "domain.wrong_kind"
    )


def test_unit_must_hold_a_chinese_domain_of_its_kind() -> None:
    assert check_unit_domains(["www.bd.gov.cn"], PARTY).reason == "domain.no_chinese"
    assert check_unit_domains(["保定.公益"], PARTY).reason == "domain.no_chinese"
    assert check_unit_domains(["保定.政务", "www.bd.gov.cn"], PARTY).reason == "domain.ok"
    assert check_unit_domains([], INST).reason == "domain.no_chinese"
    assert check_unit_domains([], SOCIAL).reason == "domain.ok"


LDH = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@settings(deadline=None)
@given(st.lists(LDH, min_size=1, max_size=5), st.sampled_from(["cn", "com", "org", "gov.cn"]))
@example(["ab--cd"], "cn")
def test_plain_ascii_names_agree_with_idna(labels: list[str], tld: str) -> None:
    name = ".".join([*labels, tld])
    try:
        want: str | None = idna.encode(name, uts46=True).decode()
    except idna.IDNAError:
        want = None
    try:
        got: str | None = encode_domain(name).ascii
    except DomainError:
        got = None
    assert got == want
    if got is not None:
        assert encode_domain(name).kind is DomainKind.ENGLISH
