"""``badgewatch demo``: the whole job on the simulated internet, checked against what simnet built."""

from __future__ import annotations

import csv
import email
import json
import os
import subprocess
import sys
from email import policy
from pathlib import Path

import openpyxl
import sqlalchemy as sa

from storage.db import make_engine

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_whole_job_on_the_catalogue(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BADGEWATCH_")}
    proc = subprocess.run(
        [sys.executable, "-m", "badgewatch", "demo", "--sample", "catalogue", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Step 8: the same scope scanned again by two worker processes through PostgreSQL and Redis, with
    # findings identical to the single-process scan (skipped, saying so, only where neither runs).
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        assert "完全一致" in proc.stdout, proc.stdout[-3000:]
    else:
        assert "完全一致" in proc.stdout or "已跳过" in proc.stdout, proc.stdout[-3000:]

    truth = json.loads((out / "simnet" / "catalogue-truth.json").read_text(encoding="utf-8"))
    with (out / "simnet" / "catalogue-offices.csv").open(encoding="utf-8-sig", newline="") as f:
        offices = {row["编办代码"]: row for row in csv.DictReader(f)}

    engine = make_engine(f"sqlite:///{out / 'badgewatch.db'}")
    try:
        with engine.connect() as conn:
            status = conn.execute(sa.text("SELECT status FROM scan")).scalars().all()
            site_subjects = conn.execute(
                sa.text("SELECT count(DISTINCT subject) FROM finding WHERE subject LIKE 'site:%'")
            ).scalar_one()
            websites = conn.execute(sa.text("SELECT count(*) FROM website")).scalar_one()
    finally:
        engine.dispose()
    assert status == ["finished"]
    # Every registered site of the sample got findings (the sample's registry is imported whole).
    assert websites == site_subjects
    # Rows the import refused (the catalogue's invalid domains) are written beside the registry.
    registry = out / "simnet" / "catalogue-registry.csv"
    rejected = registry.with_name(registry.stem + ".rejected.csv")
    with rejected.open(encoding="utf-8-sig", newline="") as f:
        refused_sites = {r["网站地址"] for r in csv.DictReader(f) if r["网站地址"]}
    assert refused_sites, "the catalogue's invalid-domain rows were not refused"
    assert websites == len({s["url"] for s in truth["sites"] if s.get("url")} - refused_sites)

    wb = openpyxl.load_workbook(out / "coverage.xlsx", read_only=True)
    cells = {str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c}
    assert any(o["编办名称"] in cells for o in offices.values())

    mails = sorted((out / "mail").glob("*.eml"))
    assert mails, "notify sent nothing"
    office_addresses = {o["联系邮箱"] for o in offices.values() if o["联系邮箱"]}
    attachments = 0
    for path in mails:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg["To"] in office_addresses | {"center@yumingzhongxin.example.cn"}
        attachments += sum(1 for part in msg.iter_attachments() if part.get_filename().endswith(".xlsx"))
    assert attachments >= 1

    # Every confirmed failure of a page check has its marked screenshot, and the console's main pages are
    # saved as PNGs for anyone to look at without a server (issue 16).
    engine = make_engine(f"sqlite:///{out / 'badgewatch.db'}")
    try:
        with engine.connect() as conn:
            shots = conn.execute(
                sa.text(
                    "SELECT capture.shots FROM finding JOIN capture ON capture.id = finding.capture_id "
                    "WHERE finding.status = 'fail' AND finding.confirmed "
                    "AND finding.\"check\" IN ('badge', 'icp', 'police', 'site_code')"
                )
            ).scalars().all()
    finally:
        engine.dispose()
    assert shots, "the demo confirmed no page-check failure"
    assert all(json.loads(s).get("full") for s in shots)
    pages = sorted(p.name for p in (out / "screenshots").glob("*.png"))
    assert pages[:2] == ["01-login.png", "02-overview.png"] and len(pages) >= 4, pages
    assert all((out / "screenshots" / p).read_bytes().startswith(b"\x89PNG") for p in pages)
