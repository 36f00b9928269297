"""What the person at the terminal reads during and after a scan: Chinese, no codes; what it waits for
at the end; Scrapy's English records kept in the scan's log file."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import click
from click.testing import CliRunner

from checks.reasons import REASONS
from crawler.cli import _print_summary
from crawler.progress import IN_FLIGHT, MemoryStats, Progress
from crawler.scanlog import log_path, scan_log
from crawler.scanrun import ScanSummary
from storage.config import Config

STATUS = re.compile(r"\b(pass|fail|warn|unknown|finished|interrupted)\b")


def test_progress_says_what_the_end_of_a_scan_waits_for() -> None:
    stats = MemoryStats()
    progress = Progress(10, done=4, stream=io.StringIO(), stats=stats, timeout_s=15)
    stats.inc_value("badgewatch/subjects", 2)
    stats.inc_value(IN_FLIGHT, 2)
    assert "等待" not in progress.line()  # 6 done and 2 running of 10: subjects are still starting
    stats.inc_value("badgewatch/subjects", 2)  # 8 done, the last 2 running
    assert progress.line().startswith("8/10 (80.0%)")
    assert progress.line().endswith("  等待最后 2 个网站或域名的回应，每个请求最长 15 秒")
    stats.inc_value("badgewatch/subjects", 2)
    stats.inc_value(IN_FLIGHT, -2)
    assert "等待" not in progress.line() and progress.line().startswith("10/10")


def test_the_scan_summary_is_chinese(tmp_path: Path) -> None:
    problems = {code: n for n, code in enumerate(sorted(REASONS)[:25], start=1)}
    summary = ScanSummary(
        7,
        "interrupted",
        {
            "sites": 3,
            "by_status": {"pass": 5, "fail": 2, "unknown": 1, "warn": 1},
            "problems": problems,
            "confirmation": {"failures": 2, "confirmed": 1, "pending": 1},
        },
        str(tmp_path / "scan-7.log"),
        4,
    )

    @click.command()
    def show() -> None:
        _print_summary(summary, Config())

    out = CliRunner().invoke(show).output
    assert "巡检 #7：已中断（可续扫）" in out
    assert "结论：合规 5 项，不合规 2 项，提示 1 项，无法判定 1 项" in out
    assert f"详细日志：{tmp_path / 'scan-7.log'}" in out and "英文记录 4 条" in out
    text = out.replace(str(tmp_path / "scan-7.log"), "")
    assert [code for code in REASONS if code in text] == []
    assert STATUS.search(text) is None, STATUS.search(text)
    # The reasons are counted in words: the 20 largest, each with its catalogue text.
    largest = sorted(problems.items(), key=lambda kv: -kv[1])[0]
    assert f"{REASONS[largest[0]].message}：{largest[1]} 项" in out


def test_library_records_go_to_the_log_not_the_terminal(tmp_path: Path) -> None:
    root = logging.getLogger()
    terminal = io.StringIO()
    handler = logging.StreamHandler(terminal)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    config = Config(evidence_dir=str(tmp_path / "evidence"))
    try:
        with scan_log(config, 12) as log:
            logging.getLogger("scrapy.core.downloader").warning("Dropped: connection lost")
            logging.getLogger("twisted").warning("Unhandled error in Deferred")
            logging.getLogger("crawler.flow").warning("render of http://x/ failed")
            logging.getLogger("scrapy.core.engine").error("Error while obtaining start requests")
        logging.getLogger("scrapy.core.downloader").warning("after the scan")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert log.path == log_path(config, 12) == tmp_path / "evidence" / "logs" / "scan-12.log"
    assert log.library_records == 2
    written = log.path.read_text(encoding="utf-8")
    for line in ("Dropped: connection lost", "Unhandled error", "render of", "Error while obtaining"):
        assert line in written
    assert "after the scan" not in written
    shown = terminal.getvalue()
    assert "Dropped" not in shown and "Unhandled" not in shown
    assert "render of" in shown and "Error while obtaining" in shown and "after the scan" in shown
