"""Registries in the import format of design.md; the baoding sample reproduces 附件1 of the seed."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from checks.reasons import REASONS
from simnet import scenarios as sc
from simnet.ident import USCC_ALPHABET, USCC_WEIGHTS, try_ascii
from simnet.runtime import SimNet

HEADERS = [
    "编办代码",
    "机构名称",
    "统一社会信用代码",
    "机构类别",
    "中文域名",
    "英文域名",
    "网站名称",
    "网站地址",
    "ICP备案号",
    "公安备案号",
    "政府网站标识码",
    "政府网站",
    "网站标识代码",
    "标识状态",
    "职能审核",
    "域名到期日",
    "联系邮箱",
    "联系手机",
]

# 附件1 as printed in the seed notice (地区, 机构数, 已注册, 已注册域名数, 党政机关通过, 事业单位通过).
ANNEX1 = """\
市直	545	210	39%	215	41	39
北市区	160	84	53%	93	52	101
南市区	152	111	73%	113	53	101
新市区	178	156	88%	157	50	13
安国市	291	187	64%	188	34	54
高碑店市	376	349	93%	352	63	267
满城县	403	2	0%	3	1	0
清苑县	535	76	14%	77	5	32
涞水县	390	267	68%	268	37	230
阜平县	368	328	89%	329	59	311
徐水县	320	135	42%	136	15	1
定兴县	450	426	95%	429	58	391
唐县	539	435	81%	436	74	170
高阳县	318	242	76%	243	27	6
容城县	262	247	94%	250	49	215
涞源县	331	293	89%	295	58	241
望都县	260	135	52%	137	22	0
安新县	400	382	96%	383	48	175
易县	543	557	103%	558	74	9
曲阳县	540	154	29%	156	66	24
顺平县	291	58	20%	59	48	6
蠡县	424	410	97%	411	53	16
博野县	258	92	36%	93	33	56
雄县	396	60	15%	61	27	10
"""
# Division codes of domain.md §8 (市直 is the city office itself).
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


def _annex() -> dict[str, tuple[int, int, int, int, int]]:
    out = {}
    for line in ANNEX1.splitlines():
        name, roster, reg, _pct, domains, party, inst = line.split("\t")
        out[CODES[name]] = (int(roster), int(reg), int(domains), int(party), int(inst))
    return out


def test_annex_matches_the_seed_file_when_present() -> None:
    seed = Path(__file__).resolve().parents[3] / "shared" / "seed"
    files = list(seed.glob("*.txt")) if seed.is_dir() else []
    if not files:
        pytest.skip("shared/seed not beside the repository")
    text = "".join(f.read_text(encoding="utf-8") for f in files)
    for line in ANNEX1.splitlines():
        assert line in text


def uscc_ok(code: str) -> bool:
    if len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(code[:17], USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


def test_uscc_examples_of_domain_md() -> None:
    for code in ("12310000425022547M", "12100000470095016Q", "11410182005291054B", "91110000600037341L"):
        assert uscc_ok(code)
    assert not uscc_ok("12310000425022547N")


def _read(path: str) -> tuple[list[str], list[dict[str, str]]]:
    raw = Path(path).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "CSV must be UTF-8 with BOM"
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _check_rows(rows: list[dict[str, str]], invalid_ok: set[str]) -> None:
    for n, row in enumerate(rows, 2):
        assert uscc_ok(row["统一社会信用代码"]), (n, row)
        cat = row["统一社会信用代码"][1]
        assert (cat == "1") == (row["机构类别"] == "党政机关"), (n, row)
        assert row["统一社会信用代码"][2:8] == row["编办代码"]
        for d in filter(None, row["中文域名"].split(";")):
            assert try_ascii(d) is not None or d in invalid_ok, (n, d)
        if row["网站地址"]:
            assert row["标识状态"] in ("已通过", "审核中", "未申请")
            # Sites of 党政机关 are government sites (they need a 标识码), said explicitly.
            assert row["政府网站"] == ("是" if row["机构类别"] == "党政机关" else "否"), (n, row)
        else:  # a unit without a website: site columns empty
            assert not any(row[h] for h in HEADERS[5:14]), (n, row)
        assert row["职能审核"] in ("是", "否")
        if row["网站标识代码"]:
            assert re.fullmatch(r"CA\d{21}", row["网站标识代码"])


def test_catalogue_registry_and_truth_cover_each_other(simnet: SimNet) -> None:
    headers, rows = _read(simnet.registry_path)
    assert headers == HEADERS
    truth = simnet.ground_truth
    invalid = {
        d["domain"]
        for d in truth["domains"]
        if d["checks"]["domain"]["reason"] in ("domain.invalid", "domain.label_too_long")
    }
    assert invalid, "the catalogue has invalid domains"
    _check_rows(rows, invalid)
    urls = [r["网站地址"] for r in rows if r["网站地址"]]
    assert sorted(urls) == sorted(s["url"] for s in truth["sites"])
    cn = [d for r in rows for d in r["中文域名"].split(";") if d]
    assert sorted(cn) == sorted(d["domain"] for d in truth["domains"] if d["kind"] != "english")
    assert {r["机构名称"] for r in rows} == {u["name"] for u in truth["units"]}


def test_catalogue_has_one_site_per_shape(simnet: SimNet) -> None:
    scenarios = {s["scenario"] for s in simnet.ground_truth["sites"]}
    for dim, options in (
        ("badge", sc.BADGE),
        ("icp", sc.ICP),
        ("police", sc.POLICE),
        ("site_code", sc.SITE_CODE),
        ("http", sc.HTTP),
    ):
        for opt in options:
            assert f"{dim}.{opt}" in scenarios or opt in ("embed_http", "plain", "meta_and_footer", "ok"), (
                dim,
                opt,
            )
    assert {"unit.red_page_only", "unit.parked_only", "domain.no_chinese"} <= {s.name for s in sc.CATALOGUE}


def _codes(obj: Any) -> list[str]:
    out: list[str] = []
    if isinstance(obj, dict):
        if "reason" in obj and isinstance(obj["reason"], str):
            out.append(obj["reason"])
            assert obj["status"] in ("pass", "fail", "warn", "unknown")
        for v in obj.values():
            out += _codes(v)
    elif isinstance(obj, list):
        for v in obj:
            out += _codes(v)
    return out


def test_every_reason_is_in_the_catalogue_with_its_status(simnet: SimNet) -> None:
    truth = simnet.ground_truth
    codes = _codes(truth)
    assert set(codes) <= set(REASONS), set(codes) - set(REASONS)
    for item in truth["sites"] + truth["domains"] + truth["units"]:
        for verdict in item["checks"].values():
            if verdict:
                assert REASONS[verdict["reason"]].status.value == verdict["status"], verdict
    # Every check named in the brief appears.
    checks = {k for item in truth["sites"] + truth["domains"] + truth["units"] for k in item["checks"]}
    assert checks == {"badge", "icp", "police", "site_code", "http", "dns", "usage", "domain"}


@pytest.fixture(scope="module")
def baoding(simnet_factory: Any) -> Any:
    """The baoding sample (the running instance shared with the other tests of the session)."""
    return simnet_factory("baoding").sample


def test_baoding_reproduces_annex1(baoding: Any) -> None:
    headers, rows = _read(str(baoding.registry_path))
    assert headers == HEADERS
    _, offices = _read(str(baoding.offices_path))
    annex = _annex()
    roster = {o["编办代码"]: int(o["机构数"]) for o in offices}
    units: dict[str, set[str]] = defaultdict(set)
    domains: Counter[str] = Counter()
    party: Counter[str] = Counter()
    inst: Counter[str] = Counter()
    for row in rows:
        code = row["编办代码"]
        cn = [d for d in row["中文域名"].split(";") if d]
        if cn:
            units[code].add(row["统一社会信用代码"])
            domains[code] += len(cn)
        if row["网站地址"] and row["标识状态"] == "已通过":
            (party if row["机构类别"] == "党政机关" else inst)[code] += 1
    for code, (r, reg, dom, p, i) in annex.items():
        got = (roster[code], len(units[code]), domains[code], party[code], inst[code])
        assert got == (r, reg, dom, p, i), (code, got)
    assert sum(len(u) for u in units.values()) == 5396
    assert sum(domains.values()) == 5442
    assert sum(party.values()) == 1047 and sum(inst.values()) == 2468
    _check_rows(rows, set())
    all_domains = [d for r in rows for d in r["中文域名"].split(";") if d]
    assert len(all_domains) == len(set(all_domains))


def test_baoding_mixes_scenarios(baoding: Any) -> None:
    import json

    truth = json.loads(Path(baoding.truth_path).read_text(encoding="utf-8"))
    scen = Counter(s["scenario"] for s in truth["sites"])
    compliant = sum(v for k, v in scen.items() if k.startswith("compliant."))
    assert compliant > 0.5 * len(truth["sites"])
    prefixes = {k.split(".")[0] for k in scen}
    assert {"badge", "icp", "police", "site_code", "http", "dns", "usage"} <= prefixes
    assert any(u["checks"]["domain"]["reason"] == "domain.no_chinese" for u in truth["units"])
    # One consolidation platform address serves hundreds of sites.
    per_address = Counter(s["address"] for s in truth["sites"])
    assert per_address.most_common(1)[0][1] >= 300


def test_xlsx_has_both_sheets(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from simnet.samples import load

    sample = load("catalogue", tmp_path, xlsx=True)
    assert sample.xlsx_path is not None
    wb = load_workbook(sample.xlsx_path, read_only=True)
    assert wb.sheetnames == ["机构", "编办"]
    units = list(wb["机构"].iter_rows(values_only=True))
    _, rows = _read(str(sample.registry_path))
    assert list(units[0]) == HEADERS and len(units) == len(rows) + 1
    offices = list(wb["编办"].iter_rows(values_only=True))
    assert list(offices[0]) == ["编办代码", "编办名称", "上级编办代码", "机构数", "联系邮箱", "联系手机"]
    assert len(offices) == 25
