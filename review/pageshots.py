"""PNG screenshots of the console's main pages, for anyone to look at without a server.

``python -m review.pageshots [--config FILE] [-o demo-output/screenshots]`` (the demo calls
:func:`write_console_screenshots` after its scan): the console is started on a free loopback port over
the configured database, a temporary 域名中心 account signs in through the login form in headless
Chromium, and each main page is saved whole: the login page, the overview, the office with the most
confirmed problems, a unit with a confirmed problem, the annual reports, and a report with its
evidence (marked screenshots first). The temporary account is removed afterwards. An ``index.html``
beside the images lists them with their Chinese titles.
"""

from __future__ import annotations

import argparse
import html
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from review.accounts import create_user
from review.app import create_app
from storage.config import Config
from storage.db import make_engine
from storage.models import AnnualReport, Domain, Finding, Unit, User, Website

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
VIEWPORT_W, VIEWPORT_H = 1366, 900


@dataclass(frozen=True, slots=True)
class Shot:
    """One saved page: file name, Chinese title, console path."""

    file: str
    title: str
    path: str


@contextmanager
def serve(cfg: Config, engine: Engine) -> Iterator[str]:
    """The console on a free loopback port (a thread) for the duration of the block; its base URL."""
    app = create_app(cfg, engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the console did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def temporary_center_account(engine: Engine) -> Iterator[tuple[str, str]]:
    """A 域名中心 account with a random name and password, removed (or, if the database keeps a trace
    of it, deactivated) when the block ends."""
    name, password = f"pageshots-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    with Session(engine) as s:
        create_user(s, name, "center", password)
        s.commit()
    try:
        yield name, password
    finally:
        with Session(engine) as s:
            user = s.scalars(sa.select(User).where(User.name == name)).first()
            if user is not None:
                try:
                    s.delete(user)
                    s.commit()
                except SQLAlchemyError:
                    s.rollback()
                    s.execute(sa.update(User).where(User.name == name).values(active=False))
                    s.commit()


def main_pages(engine: Engine) -> list[Shot]:
    """The pages worth a look, found in the data: the office and the unit with confirmed problems, and
    a report with evidence (a unit with a confirmed problem when there is one)."""
    pages = [Shot("02-overview.png", "概览", "/")]
    with Session(engine) as s:
        confirmed = sa.and_(Finding.status == "fail", Finding.confirmed.is_(True))
        by_site = (
            sa.select(Unit.id, Unit.office_code)
            .join(Website, Website.unit_id == Unit.id)
            .join(Finding, Finding.website_id == Website.id)
            .where(confirmed)
        )
        by_domain = (
            sa.select(Unit.id, Unit.office_code)
            .join(Domain, Domain.unit_id == Unit.id)
            .join(Finding, Finding.domain_id == Domain.id)
            .where(confirmed)
        )
        rows = [*s.execute(by_site.limit(2000)).all(), *s.execute(by_domain.limit(2000)).all()]
        offices: dict[str, int] = {}
        for _unit_id, code in rows:
            offices[code] = offices.get(code, 0) + 1
        if offices:
            code = max(offices, key=lambda c: offices[c])
            pages.append(Shot("03-office.png", "编办页面（问题最多的编办）", f"/offices/{code}"))
        unit_ids = [u for u, _ in rows]
        if unit_ids:
            pages.append(Shot("04-unit.png", "单位页面（有确认问题的单位）", f"/units/{unit_ids[0]}"))
        pages.append(Shot("05-reports.png", "年度报告列表", "/reports"))
        report = None
        if unit_ids:
            report = s.scalars(
                sa.select(AnnualReport.id).where(AnnualReport.unit_id.in_(unit_ids[:500])).limit(1)
            ).first()
        report = report or s.scalars(sa.select(AnnualReport.id).limit(1)).first()
        if report is not None:
            pages.append(Shot("06-report-evidence.png", "年度报告审核与证据", f"/reports/{report}"))
    return pages


def write_console_screenshots(cfg: Config, out_dir: Path, chromium: str | None = None) -> list[Path]:
    """Save the main pages of the console over ``cfg``'s database as PNGs in ``out_dir``; their paths."""
    from playwright.sync_api import sync_playwright  # heavy: only when screenshots are wanted

    out_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(cfg.database_url)
    saved: list[tuple[Path, Shot]] = []
    try:
        pages = main_pages(engine)
        with (
            temporary_center_account(engine) as (name, password),
            serve(cfg, engine) as base,
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(
                executable_path=chromium or cfg.chromium_path, args=CHROMIUM_ARGS, headless=True
            )
            try:
                tab = browser.new_context(
                    viewport={"width": VIEWPORT_W, "height": VIEWPORT_H}, locale="zh-CN"
                ).new_page()
                tab.goto(base + "/login")
                login = Shot("01-login.png", "登录页面", "/login")
                tab.screenshot(path=str(out_dir / login.file), full_page=True)
                saved.append((out_dir / login.file, login))
                tab.fill("input[name=username]", name)
                tab.fill("input[name=password]", password)
                tab.click("button[type=submit]")
                tab.wait_for_load_state()
                for shot in pages:
                    tab.goto(base + shot.path)
                    tab.wait_for_load_state("networkidle")
                    tab.screenshot(path=str(out_dir / shot.file), full_page=True)
                    saved.append((out_dir / shot.file, shot))
            finally:
                browser.close()
    finally:
        engine.dispose()
    _index(out_dir, [s for _, s in saved])
    return [path for path, _ in saved]


def _index(out_dir: Path, shots: list[Shot]) -> None:
    items = "\n".join(
        f"<figure><figcaption>{html.escape(s.title)}（{html.escape(s.path)}）</figcaption>"
        f'<a href="{s.file}"><img src="{s.file}" alt="{html.escape(s.title)}" width="683"></a></figure>'
        for s in shots
    )
    (out_dir / "index.html").write_text(
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>审核台页面截图</title></head>'
        f"<body><h1>网标巡检审核台页面截图</h1>\n{items}\n</body></html>\n",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="审核台主要页面截图（PNG）")
    parser.add_argument("--config", default=None, help="配置文件（默认 ./badgewatch.toml）")
    parser.add_argument("-o", "--output", default="demo-output/screenshots", help="截图保存目录")
    args = parser.parse_args(argv)
    cfg = Config.load(args.config)
    paths = write_console_screenshots(cfg, Path(args.output))
    print(f"已保存 {len(paths)} 张审核台页面截图：{Path(args.output).resolve()}（index.html 为目录）")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
