"""The report commands through the real command line (click), on a real SQLite database."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

import badgewatch
from checks.reasons import describe

from .dbdata import add_scan, build_baoding, new_engine, small_world
from .seed import SEED_FILE, seed_table


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BADGEWATCH_")}
    env["BADGEWATCH_DATABASE_URL"] = url
    return env


@pytest.fixture
def baoding_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bd.db'}"
    engine = new_engine(url)
    build_baoding(engine)
    engine.dispose()
    return url


def test_coverage_in_every_format(baoding_db: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = _env(baoding_db)
    base = ["report", "coverage", "--office", "130600", "--as-of", "2015-03-31", "--compare", str(SEED_FILE)]
    text = runner.invoke(badgewatch.cli, base, env=env)
    assert text.exit_code == 0, text.output
    assert (
        "保定市域名注册及网站标识申请情况" in text.output and "103%" in text.output and "63%" in text.output
    )
    data = json.loads(runner.invoke(badgewatch.cli, [*base, "--format", "json"], env=env).output)
    published = seed_table()
    assert {r["name"]: r["coverage_pct"] for r in data["rows"]} == {
        n: v["coverage_pct"] for n, v in published.rows.items()
    }
    assert data["total"]["institutions"] == published.total["institutions"]
    for suffix in ("csv", "xlsx", "html"):
        out = tmp_path / f"coverage.{suffix}"
        res = runner.invoke(badgewatch.cli, [*base, "-o", str(out)], env=env)
        assert res.exit_code == 0, res.output
        assert out.exists() and not out.with_name(out.name + ".tmp").exists()
    rows = list(csv.reader(io.StringIO((tmp_path / "coverage.csv").read_text(encoding="utf-8-sig"))))
    assert rows[1][0] == "市直" and rows[1][1:4] == ["545", "210", "39%"]
    ws = load_workbook(tmp_path / "coverage.xlsx")["覆盖率"]
    assert ws["A3"].value == "市直" and ws["D3"].value == 39
    assert "<svg" in (tmp_path / "coverage.html").read_text(encoding="utf-8")
    bad = runner.invoke(badgewatch.cli, ["report", "coverage", "--as-of", "31.3.2015"], env=env)
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
    xlsx_no_file = runner.invoke(badgewatch.cli, ["report", "coverage", "--format", "xlsx"], env=env)
    assert xlsx_no_file.exit_code != 0 and "-o" in xlsx_no_file.output


def test_noncompliance_and_annual_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bw.db'}"
    engine = new_engine(url)
    small_world(engine)
    scan = add_scan(
        engine,
        dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
        [
            ("130600", "badge.wrong_kind", "fail", True),
            ("130633", "dns.timeout", "unknown", False),
            ("130621", "icp.link_outdated", "warn", False),
        ],
    )
    engine.dispose()
    runner, env = CliRunner(), _env(url)
    out = tmp_path / "list.xlsx"
    res = runner.invoke(
        badgewatch.cli,
        ["report", "noncompliance", "-o", str(out), "--base-url", "http://127.0.0.1:8000"],
        env=env,
    )
    assert res.exit_code == 0, res.output
    wb = load_workbook(out)
    assert wb.sheetnames == ["保定市", "满城县", "易县"]
    ws = wb["保定市"]
    assert ws["A1"].value == "保定市网站标识及域名不合规清单（2026年11月2日巡检）"
    assert f"巡检编号 {scan}" in ws["A2"].value
    assert ws.freeze_panes == "A4" and ws.auto_filter.ref is not None
    assert ws["G4"].value == describe("badge.wrong_kind").message
    headers = [c.value for c in ws[3]]
    assert headers[-3:] == ["首次发现", "连续发现", "证据编号"]
    link = ws.cell(row=4, column=len(headers))
    assert link.hyperlink is not None and link.hyperlink.target.startswith("http://127.0.0.1:8000/findings/")
    assert wb["易县"]["A4"].value == "无法判定" and wb["满城县"]["A4"].value == "提示"
    js = json.loads(
        runner.invoke(
            badgewatch.cli, ["report", "noncompliance", "--format", "json", "--office", "130633"], env=env
        ).output
    )
    assert [o["office"]["code"] for o in js["offices"]] == ["130633"]
    assert js["offices"][0]["unverified"][0]["reason"] == "dns.timeout" and js["offices"][0]["failures"] == []
    missing = runner.invoke(badgewatch.cli, ["report", "noncompliance", "--scan", "77"], env=env)
    assert missing.exit_code != 0 and "巡检 77 不存在" in missing.output
    bad_csv = tmp_path / "annual.csv"
    bad_csv.write_text("年度,开办主体名称\n2026,x\n", encoding="utf-8")
    res = runner.invoke(badgewatch.cli, ["annual", "import", str(bad_csv)], env=env)
    assert res.exit_code != 0 and "找不到表头" in res.output
    res = runner.invoke(badgewatch.cli, ["report", "annual", "--year", "2026", "--format", "json"], env=env)
    assert res.exit_code == 0 and json.loads(res.output)["reports"] == []


def test_uninitialised_database_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        badgewatch.cli, ["report", "coverage"], env=_env(f"sqlite:///{tmp_path / 'none.db'}")
    )
    assert res.exit_code != 0 and "badgewatch init" in res.output
