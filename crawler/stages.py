"""The crawler's stages of the nightly chain (``scheduler.py``): the scan, its second pass and the recheck.

A scan runs in a child process (``badgewatch scan --json``): Scrapy's reactor runs once per process,
and a daemon runs many nights. :class:`ScanChild` starts it, passes its progress into the daemon's log
as it comes, asks it once to stop when the daemon stops, and turns its outcome into the stage's detail
or a :class:`storage.chain.StageFailed` / :class:`storage.chain.Interrupted`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import socket
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crawler.checking import rules_from_config
from crawler.screenshots import shoot_confirmed
from storage.chain import Interrupted, StageFailed
from storage.config import Config
from storage.evidence import EvidenceStore
from storage.models import Scan, ScanLock, ScanStatus
from storage.streaks import confirm, due_at
from storage.timefmt import fmt_time
from storage.types import utcnow

log = logging.getLogger("badgewatch.scheduler")
child_log = logging.getLogger("badgewatch.scheduler.scan")  # what a scan child writes to stderr


def scan_status(engine: Engine, scan_id: int) -> str | None:
    with engine.connect() as conn:
        status = conn.execute(sa.select(Scan.status).where(Scan.id == scan_id)).scalar_one_or_none()
    return None if status is None else str(status)


def finished_scan(engine: Engine, scan_id: int | None) -> int:
    """``scan_id``, refusing to go on unless that scan finished (every stage after the scan)."""
    if scan_id is None:
        raise StageFailed("本次运行没有巡检记录，后续步骤不能执行", retry=False)
    status = scan_status(engine, scan_id)
    if status != ScanStatus.FINISHED:
        raise StageFailed(f"巡检 #{scan_id} 的状态是 {status}，未完成，后续步骤不能执行", retry=False)
    return scan_id


@dataclass
class ScanChild:
    """How the chain runs ``badgewatch scan`` in a child process.

    ``command`` is the ``badgewatch`` invocation (interpreter, ``--config``, ``-v``); ``stop`` is the
    daemon's stop request; ``children`` (guarded by ``lock``) is where the daemon keeps the children it
    has to wait for; ``on_scan_id`` records the scan id a child reports (the run's checkpoint)."""

    engine: Engine
    command: list[str]
    stop: threading.Event
    on_scan_id: Callable[[int], None]
    children: set[subprocess.Popen[str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def scan(self, scan_id: int | None, office: str | None, limit: int | None, render: str) -> dict[str, Any]:
        """The ``scan`` stage: a new scan of the scope, or resume the run's unfinished one."""
        args = ["scan", "--json"]
        if scan_id is not None:
            if scan_status(self.engine, scan_id) == ScanStatus.FINISHED:
                return {"scan_id": scan_id, "status": "finished", "resumed": False}
            args += ["--resume", str(scan_id)]
        else:
            if office:
                args += ["--office", office]
            if limit is not None:
                args += ["--limit", str(limit)]
            args += ["--render", render]
        return self.run(args, scan_id)

    def second_pass(self, scan_id: int | None, config: Config, same_night_h: float) -> dict[str, Any]:
        """The ``second_pass`` stage: with a confirmation interval shorter than ``same_night_h``, wait
        until the scan's first pending failure is due and visit the pending subjects again, so the
        night's lists hold failures seen on two visits that far apart. Nothing to do otherwise."""
        sid = finished_scan(self.engine, scan_id)
        hours = config.confirm_interval_h
        if hours <= 0 or hours >= same_night_h:
            return {"scan_id": sid, "skipped": f"confirm_interval_h = {hours:g}"}
        due = due_at(self.engine, sid, dt.timedelta(hours=hours))
        if due is None:
            return {"scan_id": sid, "pending": 0}
        wait = (due - utcnow()).total_seconds()
        if wait > 0:
            log.info("second pass of scan #%s at %s (in %.0f s)", sid, due, wait)
            if self.stop.wait(wait):
                when = fmt_time(due, config.timezone, label=True)
                raise Interrupted(f"等待第二遍巡检（{when}）时守护进程停止")
        detail = self.run(["scan", "--json", "--second-pass", str(sid)], sid)
        return {**detail, "second_pass_of": sid}

    def run(self, args: list[str], scan_id: int | None) -> dict[str, Any]:
        """Run ``badgewatch <args>`` (a scan) in a child process and follow it; its summary."""
        started = utcnow()
        proc = subprocess.Popen(
            self.command + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Its own session: a terminal's Ctrl-C reaches the daemon only, which asks the scan to stop
            # once (a second SIGINT would make Scrapy stop uncleanly).
            start_new_session=True,
        )
        with self.lock:
            self.children.add(proc)
        # Its progress and errors go to the daemon's log as they come (the journal shows a night's
        # progress); the last lines are kept for the stage's error message, the JSON summary from stdout.
        out_lines: list[str] = []
        err_tail: deque[str] = deque(maxlen=20)

        def pump(stream: IO[str], sink: Callable[[str], None]) -> None:
            for line in stream:
                sink(line.rstrip("\n"))

        def to_log(line: str) -> None:
            err_tail.append(line)
            child_log.info("%s", line)

        readers = [
            threading.Thread(target=pump, args=(proc.stdout, out_lines.append), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, to_log), daemon=True),
        ]
        for r in readers:
            r.start()
        asked = False
        try:
            while True:
                try:
                    proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    if self.stop.is_set() and not asked:
                        log.info("asking scan (pid %s) to stop and keep its progress", proc.pid)
                        proc.send_signal(signal.SIGINT)
                        asked = True
            for r in readers:
                r.join(timeout=10)
        finally:
            with self.lock:
                self.children.discard(proc)
        summary = json_tail("\n".join(out_lines))
        reported = summary.get("scan_id")
        if reported is None:
            reported = scan_id or self._scan_of_child(proc.pid, started if asked else None)
        if reported is not None and reported != scan_id:
            scan_id = int(reported)
            self.on_scan_id(scan_id)  # the checkpoint: a later attempt resumes this scan
        status = summary.get("status")
        if proc.returncode == 0 and status == ScanStatus.FINISHED:
            return {"scan_id": scan_id, "status": status, "counters": summary.get("counters", {})}
        if summary.get("error") == "vantage_failed" and not asked:
            # The vantage check failed (crawler/vantage.py): no scan was opened, nothing was written.
            # Retried as any failed stage (a network outage may pass), then the center gets the message.
            raise StageFailed(str(summary.get("message") or "巡检未开始：参照网站检查失败"))
        tail = "\n".join(err_tail).strip().splitlines()[-5:]
        message = "；".join(tail) or f"退出码 {proc.returncode}"
        if asked:
            raise Interrupted(f"巡检 #{scan_id} 已按停止请求中断并保存进度：{message}")
        if status == ScanStatus.FINISHED:
            raise StageFailed(f"巡检 #{scan_id} 退出码 {proc.returncode}：{message}")
        raise StageFailed(f"巡检{'' if scan_id is None else f' #{scan_id}'}未完成（{status}）：{message}")

    def _scan_of_child(self, pid: int, since: dt.datetime | None) -> int | None:
        """The scan a child opened but could not report: its locks name the child (killed hard); or,
        when we stopped it ourselves, an unfinished scan opened since it started (it released its locks
        on the way out, and no overlapping scan can have started meanwhile)."""
        with self.engine.connect() as conn:
            sid = conn.execute(
                sa.select(sa.func.max(ScanLock.scan_id)).where(
                    ScanLock.holder == f"{socket.gethostname()}:{pid}"
                )
            ).scalar_one_or_none()
            if sid is None and since is not None:
                sid = conn.execute(
                    sa.select(sa.func.max(Scan.id)).where(
                        Scan.started_at >= since, Scan.status != ScanStatus.FINISHED
                    )
                ).scalar_one_or_none()
        return int(sid) if sid is not None else None


def confirm_stage(engine: Engine, scan_id: int, config: Config) -> dict[str, Any]:
    """Settle which failures of the night are confirmed (``storage/streaks.py``), then take the evidence
    of record: marked screenshots of the confirmed page-check failures (``crawler/screenshots.py``)."""
    out = confirm(engine, scan_id, config).to_dict()
    return {**out, "screenshots": shoot_confirmed(engine, config, scan_id).to_dict()}


def recheck_stage(engine: Engine, scan_id: int | None, config: Config) -> dict[str, Any]:
    """The ``recheck`` stage: re-derive the scan's findings from its stored evidence with the current
    rules (as ``badgewatch recheck``)."""
    # Here, not at the top: recheck brings Scrapy and Twisted (through crawler.errors), and this module
    # is imported by scheduler.py, which loads with every command of the command line.
    from crawler.recheck import recheck_scan

    sid = finished_scan(engine, scan_id)
    s = recheck_scan(engine, sid, EvidenceStore(config.evidence_dir), rules_from_config(config))
    if s.missing_evidence:
        log.warning("scan #%s: evidence of %s subjects is missing", sid, s.missing_evidence)
    return {
        "scan_id": sid,
        "subjects": s.subjects,
        "changed": s.changed,
        "missing_evidence": s.missing_evidence,
    }


def json_tail(text: str | None) -> dict[str, Any]:
    """The JSON object ``scan --json`` prints last (empty if there is none)."""
    if not text:
        return {}
    start = text.find("{")
    while start != -1:
        try:
            value = json.loads(text[start:])
            return value if isinstance(value, dict) else {}
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    return {}
