"""The simnet ``baoding`` sample, imported through the registry import, reproduces 附件1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from reports.source import coverage_from_db

from .dbdata import new_engine
from .seed import seed_table

pytestmark = pytest.mark.slow


def test_baoding_sample_reproduces_every_row(tmp_path: Path) -> None:
    from simnet.samples import load
    from storage.registry import import_registry

    sample = load("baoding", tmp_path / "sample")
    engine = new_engine(f"sqlite:///{tmp_path / 'bd.db'}")
    # The whole sample must import: any refused row would move a figure of 附件1.
    report = import_registry(engine, sample.registry_path, sample.offices_path)
    assert report.bad_lines == [], report.bad_lines
    published = seed_table()
    with Session(engine) as s:
        table = coverage_from_db(s, "130600", dt.date(2015, 3, 31), published=published)
    rows = {r.name: r for r in table.rows}
    assert set(rows) == set(published.rows)
    for name, printed in published.rows.items():
        for key, value in printed.items():
            assert rows[name].value(key) == value, (name, key)
    assert rows["满城县"].coverage_pct == 0 and rows["北市区"].coverage_pct == 53
    assert rows["易县"].coverage_pct == 103 and "coverage_over_100" in {f.code for f in rows["易县"].flags}
    assert table.total.coverage_pct == 62
    assert [n for n in table.notes if n.startswith("附件1")] == [
        n for n in table.notes if "合计行注册单位覆盖率为63%" in n
    ]
    engine.dispose()
