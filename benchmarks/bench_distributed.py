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

from measure import UNPACED, bw, proc_kib, usage, wrapped  # noqa: E402

PG_ADMIN_URL = os.environ.get("BADGEWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BADGEWATCH_TEST_REDIS", "redis://127.0.0.1:6379/15")


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
            **UNPACED,
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
            subprocess.run(bw("init"), env=env, cwd=work, check=True, capture_output=True)
            subprocess.run(
                bw("registry", "import", net.registry_path, "--offices", net.offices_path, "--skip-invalid"),
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
    out["ratio_wall"] = (
        round(two["subjects_per_s_wall"] / one["subjects_per_s_wall"], 2)
        if one["subjects_per_s_wall"]
        else 0.0
    )
    return out


def _open_scan(env: dict[str, str], work: Path) -> dict[str, Any]:
    """``scan --distributed --no-wait``: the scan opened and its frontier seeded; its JSON summary."""
    opened = subprocess.run(
        bw("scan", "--distributed", "--no-wait", "--json", "--render", "never"),
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    )
    out: dict[str, Any] = json.loads(opened.stdout)
    return out


def _run(env: dict[str, str], work: Path, workers: int) -> dict[str, Any]:
    scan = _open_scan(env, work)
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            wrapped(bw("worker", "--json", "--scan", str(scan["scan_id"]))),
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
        peaks.append(usage(stderr)[0])
        statuses.append(json.loads(stdout)["scan_status"])
    counters = _scan_counters(env["BADGEWATCH_DATABASE_URL"], int(scan["scan_id"]))
    active = _active_s(env["BADGEWATCH_DATABASE_URL"], int(scan["scan_id"]))
    subjects = int(scan["seeded"])
    return {
        "workers": workers,
        "scan_status": counters.get("_status"),
        "subjects": subjects,
        "sites": counters.get("sites", 0),
        "requests": counters.get("requests", 0),
        "wall_s": round(wall, 1),
        "active_s": round(active, 1),
        "subjects_per_s": round(subjects / active, 1) if active else 0.0,
        "sites_per_s": round(counters.get("sites", 0) / active, 1) if active else 0.0,
        "subjects_per_s_wall": round(subjects / wall, 1),
        "worker_peak_rss_mb": [round(k / 1024) for k in peaks],
    }


def _active_s(db_url: str, scan_id: int) -> float:
    """Seconds from the first to the last finding written (worker start-up and shutdown excluded, as
    in ``bench_scan.py``; findings are written in batches at most a second apart)."""
    import sqlalchemy as sa

    from storage.db import make_engine
    from storage.models import Finding

    engine = make_engine(db_url)
    with engine.connect() as conn:
        first, last = conn.execute(
            sa.select(sa.func.min(Finding.created_at), sa.func.max(Finding.created_at)).where(
                Finding.scan_id == scan_id
            )
        ).one()
    engine.dispose()
    return (last - first).total_seconds() if first is not None and last is not None else 0.0


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


def at_scale(sites: int, budget_s: float, concurrency: int) -> dict[str, Any]:
    """A real registry of ``sites`` websites: the scan's frontier in Redis (``MEMORY USAGE`` of its
    keys), and one worker's RSS sampled every 5 s while it works for ``budget_s`` seconds."""
    import redis
    import sqlalchemy as sa

    from crawler.distributed import Frontier
    from simnet.runtime import SimNet
    from storage.db import make_engine
    from storage.models import Finding

    out: dict[str, Any] = {"sites": sites, "budget_s": budget_s}
    with tempfile.TemporaryDirectory(prefix="bench-dist-scale-") as tmp:
        work = Path(tmp)
        net = SimNet("generated", workdir=work / "net", options={"sites": sites, "failure_rate": 0.0}).start()
        db = Database()
        prefix = f"bwbench:{uuid.uuid4().hex[:8]}:"
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            env = _env(net, work, db.url, prefix, BADGEWATCH_CONCURRENCY=str(concurrency))
            subprocess.run(bw("init"), env=env, cwd=work, check=True, capture_output=True)
            t0 = time.perf_counter()
            subprocess.run(
                bw("registry", "import", net.registry_path, "--offices", net.offices_path, "--skip-invalid"),
                env=env,
                cwd=work,
                check=True,
                capture_output=True,
            )
            out["import_s"] = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            scan = _open_scan(env, work)
            out["seed_s"] = round(time.perf_counter() - t0, 1)
            out["seeded"] = int(scan["seeded"])
            frontier = Frontier(client, prefix, int(scan["scan_id"]))
            out["frontier_mb"] = round(frontier.memory_bytes() / 2**20, 2)
            worker = subprocess.Popen(
                bw("worker", "--scan", str(scan["scan_id"])),
                env=env,
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            start = time.monotonic()
            samples: list[dict[str, Any]] = []
            peak = 0
            engine = make_engine(db.url)
            while worker.poll() is None and time.monotonic() - start < budget_s:
                time.sleep(5)
                peak = max(peak, proc_kib(worker.pid, "VmHWM"))
                with engine.connect() as conn:
                    done = conn.execute(
                        sa.select(sa.func.count(sa.distinct(Finding.subject))).where(
                            Finding.scan_id == int(scan["scan_id"])
                        )
                    ).scalar_one()
                samples.append(
                    {
                        "s": round(time.monotonic() - start),
                        "subjects": int(done),
                        "rss_mb": round(proc_kib(worker.pid, "VmRSS") / 1024),
                        "frontier_mb": round(frontier.memory_bytes() / 2**20, 2),
                    }
                )
            worker.kill()
            worker.wait()
            engine.dispose()
            out["worker_peak_rss_mb"] = round(peak / 1024)
            out["samples"] = samples
            frontier.delete()
        finally:
            client.close()
            net.stop()
            db.drop()
    return out


def markdown(
    results: list[dict[str, Any]], memory: dict[str, Any], scale: dict[str, Any] | None = None
) -> str:
    lines = [
        "## Distributed scan: 1 worker vs 2 workers on one machine",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}; "
        "PostgreSQL and Redis on loopback; simnet in its own process on the same cores. Measured by "
        "`python benchmarks/bench_distributed.py` in one run; `--render never`.",
        "",
        "Rates are over the active crawl: from the first to the last finding written (process start-up "
        "and shutdown excluded, as in `bench_scan.py`); the wall-clock rate, start-up included, is "
        "beside it. Subjects are websites, domains and units.",
        "",
        "| simnet | workers | subjects | active (s) | subjects/s | sites/s | wall (s) | subjects/s (wall) "
        "| requests | worker peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
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
                f"| {label} | {n} | {x['subjects']:,} | {x['active_s']} | **{x['subjects_per_s']}** | "
                f"{x['sites_per_s']} | {x['wall_s']} | {x['subjects_per_s_wall']} | {x['requests']:,} "
                f"| {rss} |"
            )
        lines.append(f"| {label} | **ratio 2/1** | | | **{r['ratio']}×** | | | {r['ratio_wall']}× | | |")
    m = memory
    lines += [
        "",
        f"Redis memory of a frontier seeded with the subjects of {m['sites']:,} sites ({m['subjects']:,} "
        f"subjects: sites and two domains each): `used_memory` +{m['used_memory_delta_mb']} MB; "
        f"`MEMORY USAGE` of the scan's keys {m['keys_mb']} MB, {m['keys_with_4096_leases_mb']} MB with "
        f"4,096 subjects leased; {m['left_after_delete_mb']} MB left after the scan's keys are deleted.",
        "",
    ]
    if scale:
        last = scale["samples"][-1] if scale["samples"] else {"subjects": 0}
        series = ", ".join(
            f"{x['s']} s: {x['subjects']:,} / {x['rss_mb']} MB / {x['frontier_mb']} MB"
            for x in scale["samples"]
        )
        lines += [
            f"At scale: a registry of {scale['sites']:,} generated sites imported into PostgreSQL "
            f"({scale['import_s']} s), `scan --distributed` seeded {scale['seeded']:,} subjects in "
            f"{scale['seed_s']} s; the scan's Redis keys then held **{scale['frontier_mb']} MB**. One worker "
            f"then ran for {scale['budget_s']:.0f} s ({last['subjects']:,} subjects done): peak RSS "
            f"**{scale['worker_peak_rss_mb']} MB**.",
            "",
            f"Samples (seconds: subjects done / worker RSS / Redis keys): {series}.",
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
    ap.add_argument(
        "--scale-sites",
        type=int,
        default=0,
        help="also run one worker on a registry of N sites (e.g. 100000)",
    )
    ap.add_argument("--scale-budget-s", type=float, default=300.0)
    ap.add_argument("--no-ratio", action="store_true", help="skip the 1-vs-2-worker runs")
    ap.add_argument("--only", choices=["cpu", "latency"], default=None, help="run one of the two simnets")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    results = []
    if not args.no_ratio:
        if args.only in (None, "cpu"):
            results.append(run_profile("CPU-bound", args.sites, 0, args.concurrency))
        if args.only in (None, "latency"):
            results.append(
                run_profile("latency-bound", args.latency_sites, args.delay_ms, args.latency_concurrency)
            )
        print(json.dumps({"results": results}, indent=2), flush=True)
    memory = redis_memory(args.memory_sites)
    scale = at_scale(args.scale_sites, args.scale_budget_s, args.concurrency) if args.scale_sites else None
    print(json.dumps({"redis": memory, "scale": scale}, indent=2))
    if args.out:
        Path(args.out).write_text(markdown(results, memory, scale) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
