"""Helpers that build registry files for the storage tests."""

from __future__ import annotations

import csv
from pathlib import Path

from checks.registry import OFFICE_COLUMNS, REGISTRY_COLUMNS
from checks.uscc import check_char
from storage.tables import write_csv


def uscc(prefix: str, division: str, serial: int) -> str:
    """A well-formed USCC: authority+category ``prefix``, division code, 9-digit serial, check char."""
    body = f"{prefix}{division}{serial:09d}"
    return body + check_char(body)


HEADER = [c.header for c in REGISTRY_COLUMNS]
KEYS = [c.key for c in REGISTRY_COLUMNS]
OFFICE_HEADER = [c.header for c in OFFICE_COLUMNS[:6]]

OFFICES = [
    ["130600", "保定市编办", "", "412", "bb@bd.example.cn", "13903120001"],
    ["130602", "竞秀区编办", "130600", "96", "", ""],
    ["130681", "涿州市编办", "130600", "142", "", ""],
]


def row(**values: str) -> list[str]:
    """A registry row in :data:`HEADER` order from column keys (others empty)."""
    unknown = set(values) - set(KEYS)
    assert not unknown, unknown
    return [values.get(k, "") for k in KEYS]


def good_rows() -> list[list[str]]:
    """Five valid rows: party and institution units, with and without websites, two sites of one unit."""
    return [
        row(
            office_code="130600",
            unit_name="保定市人民政府办公室",
            uscc=uscc("11", "130600", 1),
            unit_kind="党政机关",
            cn_domains="保定市人民政府.政务",
            en_domains="www.bd.gov.cn",
            site_name="保定市人民政府网",
            site_url="http://www.bd.gov.cn/",
            icp="冀ICP备05003092号",
            police_record="冀公网安备 13060202000101号",
            site_code="1306000001",
            badge_code="CA050060000413060010001",
            badge_status="已通过",
            functions_reviewed="是",
            domain_expiry="2027-12-12",
            email="office@bd.example.cn",
            mobile="13803120001",
        ),
        row(
            office_code="130600",
            unit_name="保定市第一中心医院",
            uscc=uscc("12", "130600", 2),
            unit_kind="事业单位",
            cn_domains="保定市第一中心医院.公益",
            en_domains="www.bdsdyzxyy.cn",
            site_name="保定市第一中心医院",
            site_url="www.bdsdyzxyy.cn",
            icp="冀ICP备12004512号-1",
            badge_status="审核中",
            functions_reviewed="否",
            domain_expiry="2027/6/30",
        ),
        row(
            office_code="130602",
            unit_name="竞秀区教育局",
            uscc=uscc("11", "130602", 3),
            unit_kind="党政机关",
            cn_domains="竞秀区教育局.政务",
        ),
        row(
            office_code="130681",
            unit_name="涿州市人民政府",
            uscc=uscc("11", "130681", 4),
            unit_kind="党政机关",
            cn_domains="涿州市人民政府.政务;涿州.政务",
            en_domains="www.zhuozhou.gov.cn",
            site_name="涿州市人民政府网",
            site_url="https://www.zhuozhou.gov.cn/",
            icp="冀ICP备05009911号",
            site_code="1306810001",
        ),
        row(
            office_code="130681",
            unit_name="涿州市人民政府",
            uscc=uscc("11", "130681", 4),
            unit_kind="党政机关",
            site_name="涿州政务服务",
            site_url="http://zwfw.zhuozhou.gov.cn/",
            icp="冀ICP备05009911号-2",
        ),
    ]


def write_registry(
    tmp: Path,
    rows: list[list[str]],
    *,
    name: str = "registry.csv",
    offices: bool = True,
    encoding: str = "utf-8-sig",
    header: list[str] | None = None,
) -> Path:
    """Write a registry CSV (and, beside it, its 编办 CSV) and return its path."""
    path = tmp / name
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header or HEADER)
        w.writerows(rows)
    if offices:
        write_csv(tmp / f"{path.stem}.编办.csv", OFFICE_HEADER, OFFICES)
    return path
