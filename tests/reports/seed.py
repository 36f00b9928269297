"""The seed's 附件1 (保定市, 2015-03-31) as test ground truth, read from the copy in ``data/``."""

from __future__ import annotations

from pathlib import Path

from reports.coverage import OfficeCounts, PublishedTable, parse_published_tsv

SEED_FILE = Path(__file__).parent / "data" / "seed_fujian1_baoding.tsv"

# Division codes of domain.md §8 (the seed table names rows, not codes).
CODES = {
    "市直": "130600",
    "北市区": "130603",
    "南市区": "130604",
    "新市区": "130602",
    "满城县": "130621",
    "清苑县": "130622",
    "涞水县": "130623",
    "阜平县": "130624",
    "徐水县": "130625",
    "定兴县": "130626",
    "唐县": "130627",
    "高阳县": "130628",
    "容城县": "130629",
    "涞源县": "130630",
    "望都县": "130631",
    "安新县": "130632",
    "易县": "130633",
    "曲阳县": "130634",
    "蠡县": "130635",
    "顺平县": "130636",
    "博野县": "130637",
    "雄县": "130638",
    "涿州市": "130681",
    "定州市": "130682",
    "安国市": "130683",
    "高碑店市": "130684",
}


def seed_table() -> PublishedTable:
    return parse_published_tsv(SEED_FILE.read_text(encoding="utf-8"), "附件1")


def seed_counts() -> list[OfficeCounts]:
    """The seed's rows as raw counts (coverage left to be computed)."""
    out = []
    for name, v in seed_table().rows.items():
        out.append(
            OfficeCounts(
                code=CODES[name],
                name=name,
                institutions=v["institutions"],
                registered_units=v["registered_units"],
                domains=v["domains"],
                party_badges=v["party_badges"],
                institution_badges=v["institution_badges"],
            )
        )
    return out
