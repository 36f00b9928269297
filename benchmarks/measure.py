"""What the benchmark scripts share to measure a child process: ``badgewatch`` command lines, a
wrapper that reports a command's peak RSS and CPU seconds, and a process's RSS read from ``/proc``."""

from __future__ import annotations

import sys
from pathlib import Path

# These benchmarks measure the crawler's CPU and concurrency against a baseline with no politeness:
# simnet's generated sample puts ~300 sites on each address, which a real platform's rate would spread
# over minutes. The politeness bound has its own benchmark (bench_politeness.py).
UNPACED = {"BADGEWATCH_PER_IP_RATE_PER_MIN": "0", "BADGEWATCH_CONAC_RATE_PER_MIN": "0"}

# Run ``python -c USAGE_WRAPPER CMD...``: runs CMD, passes its stdout through, and writes its peak RSS
# (KiB) and CPU seconds (user + system, its children included) to stderr as PEAK_RSS_KB= / CPU_S=.
USAGE_WRAPPER = (
    "import resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)\n"
    "sys.stdout.write(p.stdout)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "sys.stderr.write('PEAK_RSS_KB=%d\\n' % u.ru_maxrss)\n"
    "sys.stderr.write('CPU_S=%.3f\\n' % (u.ru_utime + u.ru_stime))\n"
    "sys.exit(p.returncode)\n"
)


def wrapped(cmd: list[str]) -> list[str]:
    """``cmd`` run through :data:`USAGE_WRAPPER`."""
    return [sys.executable, "-c", USAGE_WRAPPER, *cmd]


def usage(stderr: str) -> tuple[int, float]:
    """(peak RSS in KiB, CPU seconds) from the stderr of a :func:`wrapped` command."""
    peak, cpu = 0, 0.0
    for line in stderr.splitlines():
        if line.startswith("PEAK_RSS_KB="):
            peak = int(line.split("=", 1)[1])
        elif line.startswith("CPU_S="):
            cpu = float(line.split("=", 1)[1])
    return peak, cpu


def bw(*args: str) -> list[str]:
    """A ``badgewatch`` command line run with this interpreter."""
    return [sys.executable, "-m", "badgewatch", *args]


def proc_kib(pid: int, field: str) -> int:
    """``VmRSS`` / ``VmHWM`` (KiB) of a running process; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
