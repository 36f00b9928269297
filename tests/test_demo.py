"""``badgewatch demo``: the whole job on the simulated internet, checked against what simnet built.

One run of the demo with ``--serve``: while its console runs, a reviewer logs in with the account the
demo printed and finds the seeded annual reports; after Ctrl-C, the command the demo printed opens the
console on the same data again.
"""

from __future__ import annotations

import csv
import email
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from email import policy
from pathlib import Path

import httpx
import openpyxl
import sqlalchemy as sa
from sqlalchemy.orm import Session

from reports.annual import disagreements
from storage.db import describe_database, make_engine
from storage.models import AnnualReport, Unit

ROOT = Path(__file__).resolve().parents[1]
READY = "审核台已启动：http://127.0.0.1:"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def login(base: str, name: str, password: str) -> httpx.Client:
    """A client signed in through the console's real login form."""
    c = httpx.Client(base_url=base, timeout=30.0, follow_redirects=False)
    form = c.get("/login")
    assert form.status_code == 200, form.text[:500]
    marker = 'name="csrf_token" value="'
    at = form.text.index(marker) + len(marker)
    token = form.text[at : form.text.index('"', at)]
    r = c.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token, "next": "/"},
        headers={"Origin": base},
    )
    assert r.status_code == 303, r.text[:500]
    return c


def wait_until_served(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the console exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port}")


def test_demo_runs_the_whole_job_on_the_catalogue(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BADGEWATCH_")}
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    stderr_file = tmp_path / "demo-stderr.txt"
    demo = subprocess.Popen(
        [sys.executable, "-m", "badgewatch", "demo", "--sample", "catalogue", "--output", str(out),
         "--serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr_file.open("w"), text=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 600
    while not any(READY in line for line in seen):
        line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
        assert line is not None, "".join(seen)[-3000:] + stderr_file.read_text()[-3000:]
        seen.append(line)
    # The accounts the demo printed let a reviewer in, and the seeded reports are there to review.
    accounts = dict(re.findall(r"用户名 (\S+)\s+密码 (\S+)", "".join(seen)))
    assert set(accounts) == {"bianban", "zhongxin"}
    base = f"http://127.0.0.1:{port}"
    reports_page = login(base, "bianban", accounts["bianban"]).get("/reports")
    assert reports_page.status_code == 200
    # The command printed to open the console again later.
    while not (reopen := [line for line in seen if line.startswith("以后再打开：")]):
        line = lines.get(timeout=30)
        assert line is not None
        seen.append(line)
    demo.send_signal(signal.SIGINT)  # Ctrl-C: the console stops, the demo ends normally
    demo.wait(timeout=60)
    errors = stderr_file.read_text()
    while (line := lines.get(timeout=30)) is not None:
        seen.append(line)
    stdout = "".join(seen)
    assert demo.returncode == 0, stdout[-3000:] + errors[-3000:]
    assert "审核台已关闭" in stdout
    proc = subprocess.CompletedProcess(demo.args, demo.returncode, stdout, errors)
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

    # The demo says which database it works on, and every output is described in its index.
    db_url = f"sqlite:///{out / 'badgewatch.db'}"
    assert f"演示数据库：{describe_database(db_url)}" in proc.stdout
    index = (out / "index.html").read_text(encoding="utf-8")
    for path in out.iterdir():
        assert f'href="{path.name}{"/" if path.is_dir() else ""}"' in index, path.name
    assert "其他文件" not in index  # nothing in the folder without a description

    # Seeded annual reports: some agree with the scan and some do not (by the findings in the database).
    with Session(make_engine(db_url)) as session:
        reports = list(session.scalars(sa.select(AnnualReport)))
        differing = [r for r in reports if disagreements(r)]
        names = {session.get(Unit, r.unit_id).name for r in reports}  # type: ignore[union-attr]
    assert len(reports) >= 4 and differing and len(differing) < len(reports)
    assert str(len(differing)) + "份与巡检结果不一致" in proc.stdout
    assert any(name in reports_page.text for name in names)
    wb = openpyxl.load_workbook(out / "annual.xlsx", read_only=True)
    annual_cells = {
        str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c
    }
    assert names <= annual_cells  # annual.xlsx lists every seeded report

    # The printed command opens the console on the demo's data (run as printed, on another port).
    command = reopen[0].removeprefix("以后再打开：").strip()
    argv = shlex.split(command)
    config = Path(argv[argv.index("--config") + 1])
    assert config.parent == out and argv[-1] == "serve"
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    assert settings["database_url"] == db_url and settings["evidence_dir"] == str(out / "evidence")
    assert command in index
    port = free_port()
    console = subprocess.Popen([*argv, "--port", str(port)], cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_until_served(port, console)
        again = login(f"http://127.0.0.1:{port}", "zhongxin", accounts["zhongxin"]).get("/reports")
        assert again.status_code == 200 and any(name in again.text for name in names)
    finally:
        console.terminate()
        console.wait(timeout=30)
    assert not (tmp_path / "badgewatch.db").exists()  # no stray database in the working directory

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
