"""``badgewatch demo``: the registry part (init, import of the bundled sample, what it holds)."""

from __future__ import annotations

import csv
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

import badgewatch
from storage.db import make_engine

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample-registry.csv"


def test_demo_imports_the_sample_and_shows_it(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {"COLUMNS": "160"}
    result = CliRunner().invoke(badgewatch.cli, ["demo", "--output", str(out)], env=env)
    assert result.exit_code == 0, result.output
    with SAMPLE.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    engine = make_engine(f"sqlite:///{out / 'badgewatch.db'}")
    try:
        with engine.connect() as conn:
            units = conn.execute(sa.text("SELECT count(*) FROM unit")).scalar_one()
            offices = conn.execute(sa.text("SELECT code FROM office")).scalars().all()
    finally:
        engine.dispose()
    assert units == len({r["统一社会信用代码"] for r in rows})
    # Every office that has units appears in the printed table, with its unit count.
    for code in {r["编办代码"] for r in rows}:
        count = sum(1 for r in rows if r["编办代码"] == code)
        cells = next(
            [c.strip() for c in ln.split("│")[1:-1]]
            for ln in result.output.splitlines()
            if ln.startswith("│") and ln.split("│")[1].strip() == code
        )
        assert cells[3] == str(count)  # 代码, 编办, 编制机构数, 登记机构, ...
    assert "130603" in offices  # the dissolved office is stored, though not shown
    # A second run finds everything unchanged.
    again = CliRunner().invoke(badgewatch.cli, ["demo", "--output", str(out)], env=env)
    assert again.exit_code == 0 and f"未变 {units}" in again.output
