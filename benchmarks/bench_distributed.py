"""Benchmark: a distributed scan with 1 worker vs 2 workers on one machine, in the same run.

Two generated simnets (failure rate 0), each scanned twice through ``scan --distributed --no-wait``
+ ``badgewatch worker`` processes, PostgreSQL and Redis on loopback:

* **CPU-bound**: no added latency; the workers' CPU is the bound (goal: 2 workers ≥ 1.7× the sites/s
  of 1 worker). simnet runs in its own process on the same two cores.
* **latency-bound**: every page ``--delay-ms`` late (default 300 ms) and a small per-worker
  concurrency, so the bound is concurrency, not CPU (goal: ≥ 1.8×).

The rate is subjects (sites + domains) and sites per second from the workers' start to the last
worker's exit (process start-up included, the same for both). Memory: peak RSS of each worker; Redis
``INFO memory used_memory`` and ``MEMORY USAGE`` of a frontier seeded with 100,000 sites' subjects (a
registry of 100k sites is not imported: the frontier holds subject strings only, so a synthetic
frontier of the same strings is measured).

    python benchmarks/bench_distributed.py [--sites 3000] [--delay-ms 300] [--out docs/bench/distributed.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("BADGEWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BADGEWATCH_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _bw(*args: str) -> list[str]:
    return [sys.executable, "-m", "badgewatch", *args]


RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)\n"
    "sys.stdout.write(p.stdout)\n"
    "sys.stderr.write('PEAK_RSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(p.returncode)\n"
)


class Database:
    """A fresh PostgreSQL database, dropped on exit."""

    def __init__(self) -> None:
        import sqlalchemy as sa

        self.name = "bw_bench_" + uuid.uuid4().hex[:10]
        self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name

    def drop(self) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def _env(net: Any, work: Path, db_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(net.env())
    env.update(
        {
            "BADGEWATCH_DATABASE_URL": db_url,
            "BADGEWATCH_EVIDENCE_DIR": str(work / "evidence"),
            "BADGEWATCH_REDIS_URL": REDIS_URL,
            "BADGEWATCH_REDIS_PREFIX": prefix,
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def run_profile(name: str, sites: int, delay_ms: int, concurrency: int) -> dict[str, Any]:
    from simnet.runtime import SimNet

    out: dict[str, Any] = {"profile": name, "sites": sites, "delay_ms": delay_ms, "concurrency": concurrency}
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        work = Path(tmp)
        options: dict[str, Any] = {"sites": sites, "failure_rate": 0.0}
        if delay_ms:
            options["delay_ms"] = delay_ms
        net = SimNet("generated", workdir=work / "net", options=options).start()
        db = Database()
        prefix = f"bwbench:{uuid.uuid4().hex[:8]}:"
        try:
            env = _env(net, work, db.url, prefix, BADGEWATCH_CONCURRENCY=str(concurrency))
            subprocess.run(_bw("init"), env=env, cwd=work, check=True, capture_output=True)
            subprocess.run(
                _bw("registry", "import", net.registry_path, "--offices", net.offices_path, "--skip-invalid"),
                env=env,
                cwd=work,
                check=True,
                capture_output=True,
            )
            for n in (1, 2):
                out[str(n)] = _run(env, work, n)
        finally:
            net.stop()
            db.drop()
    one, two = out["1"], out["2"]
    out["ratio"] = round(two["subjects_per_s"] / one["subjects_per_s"], 2) if one["subjects_per_s"] else 0.0
    return out


def _run(env: dict[str, str], work: Path, workers: int) -> dict[str, Any]:
    opened = subprocess.run(
        _bw("scan", "--distributed", "--no-wait", "--json", "--render", "never"),
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    )
    scan = json.loads(opened.stdout)
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RSS_WRAPPER, *_bw("worker", "--json", "--scan", str(scan["scan_id"]))],
            env=env,
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    results = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    peaks = []
    statuses = []
    for p, (stdout, stderr) in zip(procs, results, strict=True):
        if p.returncode != 0:
            raise RuntimeError(stderr[-4000:])
        peaks.append(next(int(x.split("=")[1]) for x in stderr.splitlines() if x.startswith("PEAK_RSS_KB=")))
        statuses.append(json.loads(stdout)["scan_status"])
    counters = _scan_counters(env["BADGEWATCH_DATABASE_URL"], int(scan["scan_id"]))
    subjects = int(scan["seeded"])
    return {
        "workers": workers,
        "scan_status": counters.get("_status"),
        "subjects": subjects,
        "sites": counters.get("sites", 0),
        "requests": counters.get("requests", 0),
        "wall_s": round(wall, 1),
        "subjects_per_s": round(subjects / wall, 1),
        "sites_per_s": round(counters.get("sites", 0) / wall, 1),
        "worker_peak_rss_mb": [round(k / 1024) for k in peaks],
    }


def _scan_counters(db_url: str, scan_id: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from storage.db import make_engine
    from storage.models import Scan

    engine = make_engine(db_url)
    with engine.connect() as conn:
        status, counters = conn.execute(sa.select(Scan.status, Scan.counters).where(Scan.id == scan_id)).one()
    engine.dispose()
    return {**dict(counters or {}), "_status": str(status)}


def redis_memory(sites: int) -> dict[str, Any]:
    """A frontier seeded with the subjects of ``sites`` websites and 2 domains each (the generated
    registries' ratio), measured with INFO and MEMORY USAGE; then a batch leased, then deleted."""
    import redis

    from crawler.distributed import Frontier

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"bwbench:{uuid.uuid4().hex[:8]}:"
    frontier = Frontier(client, prefix, 1)
    before = int(client.info("memory")["used_memory"])
    subjects = [f"site:{i}" for i in range(1, sites + 1)]
    subjects += [f"domain:{i}" for i in range(1, 2 * sites + 1)]
    frontier.seed(iter(subjects), total=len(subjects), done_before=0)
    seeded = int(client.info("memory")["used_memory"])
    keys_seeded = frontier.memory_bytes()
    for _ in range(8):  # 8 workers × 512 subjects in flight
        frontier.take(f"w{_}", 512)
    keys_leased = frontier.memory_bytes()
    frontier.delete()
    after = int(client.info("memory")["used_memory"])
    client.close()
    return {
        "sites": sites,
        "subjects": len(subjects),
        "used_memory_delta_mb": round((seeded - before) / 2**20, 2),
        "keys_mb": round(keys_seeded / 2**20, 2),
        "keys_with_4096_leases_mb": round(keys_leased / 2**20, 2),
        "left_after_delete_mb": round((after - before) / 2**20, 2),
    }


def markdown(results: list[dict[str, Any]], memory: dict[str, Any]) -> str:
    lines = [
        "## Distributed scan: 1 worker vs 2 workers on one machine",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}; "
        "PostgreSQL and Redis on loopback; simnet in its own process on the same cores. Measured by "
        "`python benchmarks/bench_distributed.py` in one run; `--render never`.",
        "",
        "| simnet | workers | subjects | wall (s) | subjects/s | sites/s | requests | worker peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        label = (
            f"{r['profile']} ({r['sites']:,} sites, delay {r['delay_ms']} ms, "
            f"concurrency {r['concurrency']}/worker)"
        )
        for n in ("1", "2"):
            x = r[n]
            rss = ", ".join(f"{m} MB" for m in x["worker_peak_rss_mb"])
            lines.append(
                f"| {label} | {n} | {x['subjects']:,} | {x['wall_s']} | **{x['subjects_per_s']}** | "
                f"{x['sites_per_s']} | {x['requests']:,} | {rss} |"
            )
        lines.append(f"| {label} | **ratio 2/1** | | | **{r['ratio']}×** | | | |")
    m = memory
    lines += [
        "",
        f"Redis memory of a frontier seeded with the subjects of {m['sites']:,} sites ({m['subjects']:,} "
        f"subjects: sites and two domains each): `used_memory` +{m['used_memory_delta_mb']} MB; "
        f"`MEMORY USAGE` of the scan's keys {m['keys_mb']} MB, {m['keys_with_4096_leases_mb']} MB with "
        f"4,096 subjects leased; {m['left_after_delete_mb']} MB left after the scan's keys are deleted.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=3000)
    ap.add_argument("--latency-sites", type=int, default=1500)
    ap.add_argument("--delay-ms", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--latency-concurrency", type=int, default=16)
    ap.add_argument("--memory-sites", type=int, default=100_000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    results = [
        run_profile("CPU-bound", args.sites, 0, args.concurrency),
        run_profile("latency-bound", args.latency_sites, args.delay_ms, args.latency_concurrency),
    ]
    memory = redis_memory(args.memory_sites)
    print(json.dumps({"results": results, "redis": memory}, indent=2))
    if args.out:
        Path(args.out).write_text(markdown(results, memory) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
