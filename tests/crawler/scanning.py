"""Helpers for crawler tests: a registry imported from a simnet sample and `badgewatch` subprocesses.

Scans run in subprocesses: Scrapy's reactor runs once per process, and `kill -9` needs a process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from storage.db import make_engine
from storage.models import Finding

ROOT = Path(__file__).resolve().parents[2]

# Short limits keep the failure scenarios (hanging, endless, huge bodies) quick without changing what
# they test: a hang still times out, an endless body still passes the limit.
TEST_ENV = {
    "BADGEWATCH_TIMEOUT_S": "4",
    "BADGEWATCH_DNS_TIMEOUT_S": "5",
    "BADGEWATCH_MAX_BODY_BYTES": str(1024 * 1024),
    "BADGEWATCH_CONCURRENCY": "64",
    # One scan per test: the quick retry confirms (tests of confirmation over time set their own).
    "BADGEWATCH_CONFIRM_INTERVAL_H": "0",
    # The catalogue's consolidation platform hosts ~80 sites on one address: at a real platform's rate
    # one scan would take minutes. Tests of politeness set their own rate (tests/crawler/test_politeness*).
    "BADGEWATCH_PER_IP_RATE_PER_MIN": "0",
    # The catalogue's rate-limit notices ban their address (one answers 429 with Retry-After: 3600):
    # seconds, not minutes.
    "BADGEWATCH_BAN_BACKOFF_S": "1",
    "BADGEWATCH_BAN_MAX_S": "2",
}


@dataclass
class Workspace:
    """A database and evidence directory, pointed at a running simnet."""

    dir: Path
    net_env: dict[str, str]

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.dir / 'badgewatch.db'}"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.net_env)
        env.update(TEST_ENV)
        env.update(
            {
                "BADGEWATCH_DATABASE_URL": self.db_url,
                "BADGEWATCH_EVIDENCE_DIR": str(self.dir / "evidence"),
                "PYTHONPATH": str(ROOT),
            }
        )
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "badgewatch", *args]

    def run(
        self, *args: str, timeout: float = 600, check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.command(*args),
            cwd=self.dir,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"badgewatch {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc

    def popen(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            cwd=self.dir,
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def import_registry(self, registry: str, offices: str) -> None:
        self.run("init")
        self.run("registry", "import", registry, "--offices", offices, "--skip-invalid")

    def scan(self, *args: str, timeout: float = 600, **extra: str) -> dict[str, Any]:
        proc = self.run("scan", "--json", *args, timeout=timeout, **extra)
        out: dict[str, Any] = json.loads(proc.stdout)
        return out

    def findings(self, scan_id: int) -> dict[tuple[str, str], tuple[str, str, int]]:
        engine = make_engine(self.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(
                        Finding.subject, Finding.check, Finding.status, Finding.reason, Finding.attempts
                    ).where(Finding.scan_id == scan_id)
                ).all()
        finally:
            engine.dispose()
        out = {(r.subject, r.check): (r.status, r.reason, r.attempts) for r in rows}
        assert len(out) == len(rows), "a (subject, check) stored twice"
        return out


def workspace(tmp: Path, net: Any) -> Workspace:
    ws = Workspace(tmp, net.env())
    ws.import_registry(net.registry_path, net.offices_path)
    return ws


@dataclass
class PgWorkspace(Workspace):
    """A :class:`Workspace` whose database is a PostgreSQL database (distributed scans need one)."""

    pg_url: str = ""

    @property
    def db_url(self) -> str:
        return self.pg_url


def pg_workspace(tmp: Path, net: Any, pg_url: str) -> PgWorkspace:
    ws = PgWorkspace(tmp, net.env(), pg_url)
    ws.import_registry(net.registry_path, net.offices_path)
    return ws
