"""``simnet up`` in a subprocess: serves, and leaves nothing listening after Ctrl-C (SIGINT) or SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import badgewatch


def _listening(pid: int) -> list[str]:
    """Sockets held by ``pid`` (from /proc: listening TCP and bound UDP inodes)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    if not fd_dir.exists():
        return []
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return sorted(inodes)


def _port_free(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except OSError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_and_cleans_up(tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simnet",
            "up",
            "--sample",
            "catalogue",
            "--ephemeral",
            "--json",
            "--workdir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = json.loads(line)
        assert _listening(proc.pid), "no sockets open while running"
        host, port = info["nameserver"].rsplit(":", 1)
        import dns.message
        import dns.query

        r = dns.query.udp(dns.message.make_query("dcs.conac.cn", "A"), host, port=int(port), timeout=2)
        addr = r.answer[0][0].to_text()
        with socket.create_connection((addr, info["http_port"]), timeout=2) as s:
            s.sendall(b"GET /image/red.png HTTP/1.1\r\nHost: dcs.conac.cn\r\nConnection: close\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
        # Hold a connection open while stopping: it must not keep anything alive.
        held = socket.create_connection((addr, info["http_port"]), timeout=2)
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
        held.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _port_free(addr, info["http_port"])
    assert _port_free(addr, info["https_port"])
    assert _port_free(host, int(port))
    # Nothing else of ours is still bound to the farm's port on any address.
    out = subprocess.run(["ss", "-Htln", f"sport = :{info['http_port']}"], capture_output=True, text=True)
    assert "127.6" not in out.stdout


def test_badgewatch_lists_simnet_up() -> None:
    result = CliRunner().invoke(badgewatch.cli, ["simnet", "up", "--help"])
    assert result.exit_code == 0, result.output
    assert "--sample" in result.output and "--spec" in result.output


def test_generate_writes_registry(tmp_path: Path) -> None:
    result = CliRunner().invoke(badgewatch.cli, ["simnet", "generate", "--sites", "50", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "generated-50-registry.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(rows) == 51
    truth = json.loads((tmp_path / "generated-50-truth.json").read_text(encoding="utf-8"))
    assert truth["meta"]["counts"]["sites"] == 50


def test_generate_refuses_bad_size(tmp_path: Path) -> None:
    result = CliRunner().invoke(badgewatch.cli, ["simnet", "generate", "--sites", "0", "-o", str(tmp_path)])
    assert result.exit_code != 0 and "sites must be" in result.output


def test_startup_is_quick() -> None:
    from simnet.runtime import SimNet

    start = time.monotonic()
    net = SimNet("catalogue").start()
    elapsed = time.monotonic() - start
    net.stop()
    assert elapsed < 6, elapsed
