"""Coverage computation against the seed's 附件1 and the rounding/flag rules."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.coverage import OfficeCounts, build_coverage, own_units_label, parse_published_tsv
from reports.rounding import pct_half_up

from .seed import seed_counts, seed_table

AS_OF = dt.date(2015, 3, 31)


def test_every_row_of_the_seed_is_reproduced() -> None:
    published = seed_table()
    table = build_coverage("130600", "保定市", AS_OF, seed_counts(), published=published)
    assert len(table.rows) == len(published.rows) == 24
    for row in table.rows:
        printed = published.rows[row.name]
        for key, value in printed.items():
            assert row.value(key) == value, (row.name, key)


def test_named_rows_of_the_issue() -> None:
    table = build_coverage("130600", "保定市", AS_OF, seed_counts())
    rows = {r.name: r for r in table.rows}
    assert rows["满城县"].coverage_pct == 0  # 2 / 403 = 0.496 %
    assert rows["北市区"].coverage_pct == 53  # 84 / 160 = 52.5 % rounds half-up
    assert rows["易县"].coverage_pct == 103
    assert [f.code for f in rows["易县"].flags] == ["coverage_over_100"]
    flagged = {r.name for r in table.rows if r.flags}
    # Only 易县 has more registered units than institutions in the seed.
    assert flagged == {r.name for r in table.rows if r.counts.registered_units > r.counts.institutions}
    assert any("易县" in n and "103%" in n for n in table.notes)


def test_total_is_computed_from_rows_and_the_seed_total_disagreement_is_noted() -> None:
    published = seed_table()
    assert published.total is not None
    counts = seed_counts()
    table = build_coverage("130600", "保定市", AS_OF, counts, published=published)
    for key in ("institutions", "registered_units", "domains", "party_badges", "institution_badges"):
        assert table.total.value(key) == sum(getattr(c, key) for c in counts)
        # The seed's sums are right; only its percentage is not.
        assert table.total.value(key) == published.total[key]
    expected = int(
        (Decimal(table.total.counts.registered_units) * 100 / table.total.counts.institutions).quantize(
            Decimal(1), ROUND_HALF_UP
        )
    )
    assert table.total.coverage_pct == expected == 62
    assert published.total["coverage_pct"] == 63
    mismatch = [n for n in table.notes if "合计" in n]
    assert len(mismatch) == 1 and "63%" in mismatch[0] and "62%" in mismatch[0]
    # No row disagrees with the seed, so no other comparison note.
    assert not [n for n in table.notes if "附件1" in n and "合计" not in n]


def test_subtitle_carries_the_seed_sentence_figures() -> None:
    table = build_coverage("130600", "保定市", AS_OF, seed_counts())
    assert table.subtitle == (
        "截至2015年3月31日，保定市已注册域名数为5442个，党政机关网站标识申请通过数量1047个，"
        "事业单位网站标识申请通过数量2468个。"
    )


@pytest.mark.parametrize(
    ("n", "d", "want"),
    [
        (84, 160, 53),
        (1, 8, 13),
        (1, 200, 1),
        (1, 201, 0),
        (2, 403, 0),
        (557, 543, 103),
        (5, 0, None),
        (0, 7, 0),
    ],
)
def test_half_up(n: int, d: int, want: int | None) -> None:
    assert pct_half_up(n, d) == want


@given(st.integers(0, 10**6), st.integers(1, 10**6))
def test_half_up_matches_integer_arithmetic(n: int, d: int) -> None:
    # floor((200n + d) / 2d) is half-up rounding of 100n/d in exact integers.
    assert pct_half_up(n, d) == (200 * n + d) // (2 * d)


def test_contradictions_are_flagged() -> None:
    rows = [
        OfficeCounts("130601", "甲", 10, 5, 3, 0, 0),  # fewer domains than registered units
        OfficeCounts("130602", "乙", 0, 4, 4, 0, 0),  # no roster
        OfficeCounts("130603", "丙", 10, 2, 2, 6, 5, registry_units=12, websites=9),
        OfficeCounts("130604", "丁", 10, 0, 2, 0, 0),
    ]
    table = build_coverage("130600", "测试市", AS_OF, rows)
    flags = {r.name: [f.code for f in r.flags] for r in table.rows}
    assert flags == {
        "甲": ["domains_below_units"],
        "乙": ["roster_missing"],
        "丙": ["units_exceed_roster", "badges_exceed_websites"],
        "丁": ["domains_without_units"],
    }
    assert table.rows[1].coverage_pct is None
    assert len(table.notes) == 5


def test_negative_or_duplicate_input_is_refused_with_the_row_named() -> None:
    with pytest.raises(ValueError, match="甲"):
        OfficeCounts("1", "甲", -1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="130601"):
        build_coverage(
            "130600",
            "x",
            AS_OF,
            [OfficeCounts("130601", "a", 1, 0, 0, 0, 0), OfficeCounts("130601", "b", 1, 0, 0, 0, 0)],
        )


def test_published_table_errors_name_the_line() -> None:
    with pytest.raises(ValueError, match=r"第3行.*乙"):
        parse_published_tsv("地区,已注册\n甲,1\n乙,x\n", "表")


def test_own_units_label() -> None:
    assert own_units_label("130600", "保定市") == "市直"
    assert own_units_label("130000", "河北省") == "省直"
    assert own_units_label("130621", "满城县") == "满城县本级"
