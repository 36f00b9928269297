"""Helpers for scheduler tests: a mail server, a workspace on simnet, daemons in subprocesses.

Daemons and commands run as ``python -m badgewatch`` subprocesses, as an operator (or systemd) runs
them: signals, restarts and two daemons on one database need real processes.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

import scheduler
from storage.db import make_engine

ROOT = Path(__file__).resolve().parents[2]

# Short network limits keep the catalogue's hanging sites quick without changing what they test.
TEST_ENV = {
    "BADGEWATCH_TIMEOUT_S": "4",
    "BADGEWATCH_DNS_TIMEOUT_S": "3",
    "BADGEWATCH_CONCURRENCY": "32",
    # The catalogue's platform hosts ~80 sites on one address (see tests/crawler/scanning.py).
    "BADGEWATCH_PER_IP_RATE_PER_MIN": "0",
    "BADGEWATCH_BAN_BACKOFF_S": "1",
    "BADGEWATCH_BAN_MAX_S": "2",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """Every message a real SMTP server on loopback accepted."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        msg = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.messages.append(msg)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if str(m["To"]).lower() == address.lower()]


@contextmanager
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


@dataclass
class Workspace:
    """A database, evidence and report directories, pointed at a running simnet and mail server."""

    dir: Path
    db_url: str
    net_env: dict[str, str]
    smtp_port: int
    center: str = "center@example.gov.cn"
    extra: dict[str, str] = field(default_factory=dict)  # more BADGEWATCH_* settings for later commands
    daemons: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.net_env)
        env.update(TEST_ENV)
        env.update(
            {
                "BADGEWATCH_DATABASE_URL": self.db_url,
                "BADGEWATCH_EVIDENCE_DIR": str(self.dir / "evidence"),
                "BADGEWATCH_SMTP_HOST": "127.0.0.1",
                "BADGEWATCH_SMTP_PORT": str(self.smtp_port),
                "BADGEWATCH_CENTER_EMAIL": self.center,
                "PYTHONPATH": str(ROOT),
            }
        )
        env.update(self.extra)
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "badgewatch", *args],
            cwd=self.dir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"badgewatch {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def start_daemon(self, tag: str = "") -> subprocess.Popen[str]:
        log = open(self.dir / f"daemon{tag}-{len(self.daemons)}.log", "w", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "badgewatch", "schedule", "run", "--poll", "0.5"],
            cwd=self.dir,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        log.close()
        self.daemons.append(proc)
        return proc

    def stop_daemon(self, proc: subprocess.Popen[str], timeout: float = 60) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def daemon_log(self) -> str:
        return "\n".join(p.read_text(encoding="utf-8") for p in sorted(self.dir.glob("daemon*.log")))

    def schedules(self) -> list[dict[str, Any]]:
        """``schedule list --json``, read in this process (a CLI start costs seconds on a busy machine)."""
        engine = make_engine(self.db_url)
        try:
            return [
                {
                    "name": i.name,
                    "cron": i.cron,
                    "tz": i.tz,
                    "office": i.office,
                    "limit": i.limit,
                    "next_run_time": i.next_run_time,
                    "last": i.last,
                }
                for i in scheduler.list_schedules(engine)
            ]
        finally:
            engine.dispose()

    def add(self, name: str, cron: str, **options: Any) -> None:
        """``schedule add``, in this process so that "a few seconds ahead" stays ahead."""
        engine = make_engine(self.db_url)
        try:
            scheduler.add_schedule(engine, scheduler.JobSpec(name, cron, **options))
        finally:
            engine.dispose()

    def wait_running(self, count: int = 1) -> None:
        """Until ``count`` daemons have logged that they are up."""
        wait_for(
            f"{count} daemon(s)",
            lambda: self.daemon_log().count("scheduler running") >= count,
            timeout=60,
            log=self.daemon_log,
        )

    def query(self, sql: str, **params: Any) -> list[Any]:
        engine = make_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()

    def runs(self) -> list[Any]:
        """Rows of ``schedule_run`` (typed: timestamps come back as aware UTC on every database)."""
        engine = make_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.select(scheduler.RUNS).order_by(scheduler.RUNS.c.id)).all())
        finally:
            engine.dispose()

    def close(self) -> None:
        for proc in self.daemons:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def offices(path: str) -> dict[str, dict[str, str]]:
    """The simnet sample's offices file: code -> row (the ground truth for addresses)."""
    with open(path, encoding="utf-8-sig") as f:
        return {row["编办代码"]: row for row in csv.DictReader(f)}


def cron_in(seconds: float, tz: str = "UTC") -> tuple[str, dt.datetime]:
    """A 6-field cron (秒 分 时 日 月 周) firing once a day, ``seconds`` from now, and that moment."""
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).replace(microsecond=0)
    return f"{at.second} {at.minute} {at.hour} * * *", at


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float,
    every: float = 0.5,
    log: Callable[[], str] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{log()[-4000:]}" if log else ""))
