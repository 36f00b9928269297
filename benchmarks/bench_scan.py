"""Benchmark: ``badgewatch scan`` against a bare, tuned Scrapy spider, in the same run.

On a generated simnet of N sites (default 20,000; failure rate 0 so that both crawlers do the same
work), measured in one command:

* **baseline**: a bare Scrapy spider that fetches only the home pages, tuned as Scrapy's broad-crawl
  advice says (cookies, robots, retries, telnet, memusage, log stats off; high concurrency). Names are
  resolved from a pre-computed table (no DNS cost at all), so the baseline is as fast as Scrapy gets.
* **badgewatch scan** (``--render auto``): DNS checks of every domain, home pages, Chinese-domain usage,
  the sub-resources the checks ask for, all checks, the evidence store and the database.

Both run as their own process (one crawler process each); the rate is HTTP requests per second of
crawling (from the first to the last request, process start-up excluded). The goal: ours ≥ 0.5 × the
baseline. ``--memory`` also scans registries of 10,000 and 100,000 sites (``--render never``) and
compares their peak RSS (goal: within 1.5×).

    python benchmarks/bench_scan.py [--sites 20000] [--memory] [--out docs/bench/crawler.md]
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from measure import UNPACED, bw, proc_kib, usage, wrapped  # noqa: E402
from twisted.internet.interfaces import IHostnameResolver  # noqa: E402
from zope.interface import implementer  # noqa: E402

# --- the bare baseline spider (runs in its own process: `bench_scan.py bare URLS HOSTS PORT`) --------


@implementer(IHostnameResolver)
class TableResolver:
    """Names from a table, port 80 mapped to simnet's port: zero DNS cost for the baseline."""

    def __init__(self, reactor: Any, hosts: dict[str, str], http_port: int) -> None:
        self.reactor = reactor
        self.hosts = hosts
        self.http_port = http_port

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> TableResolver:
        s = crawler.settings
        return cls(reactor, json.loads(Path(s["BENCH_HOSTS"]).read_text()), s.getint("BENCH_HTTP_PORT"))

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    def resolveHostName(
        self,
        receiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        from twisted.internet.address import IPv4Address

        receiver.resolutionBegan(None)
        ip = self.hosts.get(hostName)
        if ip:
            receiver.addressResolved(
                IPv4Address("TCP", ip, self.http_port if portNumber == 80 else portNumber)
            )
        receiver.resolutionComplete()
        return None


def run_bare(urls_file: str, hosts_file: str, http_port: int, concurrency: int) -> None:
    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess

    urls = Path(urls_file).read_text().split()

    stats: dict[str, float] = {"responses": 0, "first": 0.0, "last": 0.0}

    class Bare(Spider):
        name = "bare"

        async def start(self) -> Any:
            for url in urls:
                yield Request(url, callback=self.parse, errback=self.failed, dont_filter=True)

        def parse(self, response: Any) -> None:
            self._tick()

        def failed(self, failure: Any) -> None:
            self._tick()

        def _tick(self) -> None:
            now = time.perf_counter()
            if not stats["first"]:
                stats["first"] = now
            stats["last"] = now
            stats["responses"] += 1

    settings = {
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
        "CONCURRENT_ITEMS": 1,
        "COOKIES_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
        "RETRY_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "ERROR",
        "REACTOR_THREADPOOL_MAXSIZE": 20,
        "DOWNLOAD_TIMEOUT": 15,
        "TWISTED_DNS_RESOLVER": "__main__.TableResolver",
        "BENCH_HOSTS": hosts_file,
        "BENCH_HTTP_PORT": http_port,
        "EXTENSIONS": {
            "scrapy.extensions.telnet.TelnetConsole": None,
            "scrapy.extensions.memusage.MemoryUsage": None,
            "scrapy.extensions.logstats.LogStats": None,
            "scrapy.extensions.remote_control.RemoteControl": None,
        },
    }
    process = CrawlerProcess(settings)
    process.crawl(Bare)
    process.start()
    elapsed = stats["last"] - stats["first"]
    print(
        json.dumps(
            {
                "responses": int(stats["responses"]),
                "elapsed_s": round(elapsed, 3),
                "rate": round(stats["responses"] / elapsed, 1) if elapsed > 0 else 0.0,
            }
        )
    )


# --- helpers -------------------------------------------------------------------------------------------


def _env(net: Any, workdir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(net.env())
    env.update(
        {
            "BADGEWATCH_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "BADGEWATCH_EVIDENCE_DIR": str(workdir / "evidence"),
            "PYTHONPATH": str(ROOT),
            **UNPACED,
        }
    )
    env.update(extra)
    return env


def _measured(
    cmd: list[str], env: dict[str, str], cwd: Path
) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """Run ``cmd`` reporting its peak RSS (KiB) and CPU seconds.

    CPU seconds make the comparison robust on a shared machine: the crawler is CPU-bound, so its
    requests per CPU-second are what its requests per second would be with a core to itself."""
    proc = subprocess.run(wrapped(cmd), env=env, cwd=cwd, capture_output=True, text=True)
    peak, cpu = usage(proc.stderr)
    return proc, peak, cpu


def _prepare(net: Any, workdir: Path) -> float:
    env = _env(net, workdir)
    subprocess.run(bw("init"), env=env, cwd=workdir, check=True, capture_output=True)
    t0 = time.perf_counter()
    subprocess.run(
        bw("registry", "import", net.registry_path, "--offices", net.offices_path, "--skip-invalid"),
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def _scan(net: Any, workdir: Path, render: str, concurrency: int) -> tuple[dict[str, Any], int, float]:
    env = _env(net, workdir)
    proc, peak, cpu = _measured(
        bw("scan", "--json", "--render", render, "--concurrency", str(concurrency)), env, workdir
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-4000:])
    return json.loads(proc.stdout), peak, cpu


def _bare(net: Any, workdir: Path, concurrency: int) -> tuple[dict[str, Any], int, float]:
    truth = net.ground_truth
    urls, hosts = [], {}
    for site in truth["sites"]:
        urls.append(site["url"])
        for h in site.get("hosts", []):
            hosts[h] = site["address"]
    (workdir / "urls.txt").write_text("\n".join(urls))
    (workdir / "hosts.json").write_text(json.dumps(hosts))
    cmd = [
        sys.executable,
        __file__,
        "bare",
        str(workdir / "urls.txt"),
        str(workdir / "hosts.json"),
        str(net.http_port),
        str(concurrency),
    ]
    proc, peak, cpu = _measured(cmd, _env(net, workdir), workdir)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-4000:])
    return json.loads(proc.stdout.strip().splitlines()[-1]), peak, cpu


def bench_rate(sites: int, concurrency: int) -> dict[str, Any]:
    from simnet.runtime import SimNet

    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        work = Path(tmp)
        net = SimNet("generated", workdir=work / "net", options={"sites": sites, "failure_rate": 0.0}).start()
        try:
            import_s = _prepare(net, work)
            # The baseline runs before and after ours: a load change on the shared machine during the
            # run then weighs on both sides instead of on one.
            bare1 = _bare(net, work, concurrency)
            ours, ours_rss, ours_cpu = _scan(net, work, "auto", concurrency)
            bare2 = _bare(net, work, concurrency)
        finally:
            net.stop()
    c = ours["counters"]
    elapsed = float(c["elapsed_s"])
    our_rate = c["requests"] / elapsed if elapsed else 0.0
    bare_runs = [
        b | {"peak_rss_mb": round(rss / 1024), "cpu_s": round(cpu, 1)} for b, rss, cpu in (bare1, bare2)
    ]
    bare_rate = sum(b["rate"] for b in bare_runs) / 2
    bare_cpu_rate = sum(b["responses"] / b["cpu_s"] for b in bare_runs if b["cpu_s"]) / 2
    our_cpu_rate = c["requests"] / ours_cpu if ours_cpu else 0.0
    return {
        "sites": sites,
        "import_s": round(import_s, 1),
        "bare": bare_runs,
        "bare_rate": round(bare_rate, 1),
        "bare_requests_per_cpu_s": round(bare_cpu_rate, 1),
        "ours": {
            "status": ours["status"],
            "subjects": c["subjects"],
            "sites_done": c["sites"],
            "requests": c["requests"],
            "elapsed_s": elapsed,
            "request_rate": round(our_rate, 1),
            "cpu_s": round(ours_cpu, 1),
            "requests_per_cpu_s": round(our_cpu_rate, 1),
            "sites_per_s": round(sites / elapsed, 1) if elapsed else 0.0,
            "requests_per_site": round(c["requests"] / sites, 2),
            "renders": c.get("renders", 0),
            "dns_lookups": c.get("dns_lookups", 0),
            "peak_rss_mb": round(ours_rss / 1024),
        },
        "ratio": round(our_rate / bare_rate, 3) if bare_rate else 0.0,
        "ratio_cpu": round(our_cpu_rate / bare_cpu_rate, 3) if bare_cpu_rate else 0.0,
    }


def _findings_subjects(db_url: str) -> int:
    import sqlalchemy as sa

    from storage.db import make_engine
    from storage.models import Finding

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count(sa.distinct(Finding.subject)))).scalar_one())
    finally:
        engine.dispose()


def _sampled_scan(net: Any, work: Path, concurrency: int, budget_s: float | None) -> dict[str, Any]:
    """A ``--render never`` scan with its RSS sampled every 2 s (``/proc``); stopped after ``budget_s``."""
    env = _env(net, work)
    proc = subprocess.Popen(
        bw("scan", "--json", "--render", "never", "--concurrency", str(concurrency)),
        env=env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    t0 = time.monotonic()
    samples: list[tuple[float, int, int]] = []  # (seconds, subjects done, RSS KiB)
    peak = 0
    stopped = False
    while proc.poll() is None:
        time.sleep(2)
        peak = max(peak, proc_kib(proc.pid, "VmHWM"))
        elapsed = time.monotonic() - t0
        rss = proc_kib(proc.pid, "VmRSS")
        if rss and (not samples or elapsed - samples[-1][0] >= 20):  # 0: the scan has just exited
            samples.append((round(elapsed), _findings_subjects(env["BADGEWATCH_DATABASE_URL"]), rss))
        if budget_s is not None and elapsed > budget_s and proc.poll() is None:
            peak = max(peak, proc_kib(proc.pid, "VmHWM"))
            proc.kill()
            stopped = True
    proc.communicate()
    done = _findings_subjects(env["BADGEWATCH_DATABASE_URL"])
    return {
        "peak_rss_mb": round(peak / 1024),
        "elapsed_s": round(time.monotonic() - t0, 1),
        "subjects": done,
        "complete": not stopped,
        "samples": [{"s": s, "subjects": n, "rss_mb": round(r / 1024)} for s, n, r in samples],
    }


def bench_memory(sizes: tuple[int, ...], concurrency: int, budget_s: float | None = None) -> dict[str, Any]:
    """Peak RSS of a scan per registry size. With ``budget_s``, scans larger than the smallest run
    only that long (each still beyond the smallest scan's subject count, so every bounded cache has
    filled as far as in the smallest scan) and the peak RSS is of that partial run."""
    from simnet.runtime import SimNet

    out: dict[str, Any] = {}
    for i, n in enumerate(sizes):
        with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
            work = Path(tmp)
            t0 = time.perf_counter()
            net = SimNet("generated", workdir=work / "net", options={"sites": n, "failure_rate": 0.0}).start()
            try:
                import_s = _prepare(net, work)
                setup_s = time.perf_counter() - t0
                result = _sampled_scan(net, work, concurrency, None if i == 0 else budget_s)
            finally:
                net.stop()
        out[str(n)] = result | {"import_s": round(import_s, 1), "setup_s": round(setup_s, 1)}
        print(json.dumps({n: out[str(n)]}), flush=True)
    first, last = str(sizes[0]), str(sizes[-1])
    out["ratio"] = round(out[last]["peak_rss_mb"] / out[first]["peak_rss_mb"], 2)
    return out


def bench_render(limit: int, concurrency: int) -> dict[str, Any]:
    """``--render auto`` vs ``--render always`` on the baoding sample (its first ``limit`` websites and
    their domains; 0: the whole sample). ``auto`` runs before and after ``always`` (a load change on
    the shared machine then weighs on both sides); each run has its own database."""
    import sqlalchemy as sa

    from simnet.runtime import SimNet
    from storage.db import make_engine
    from storage.models import Finding

    out: dict[str, Any] = {"limit": limit}
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        net = SimNet("baoding", workdir=Path(tmp) / "net").start()
        out["sample_sites"] = len(net.ground_truth["sites"])
        try:
            verdicts: dict[str, dict[tuple[str, str], tuple[str, str]]] = {}
            for run, mode in (("auto", "auto"), ("always", "always"), ("auto_after", "auto")):
                work = Path(tmp) / run
                work.mkdir()
                _prepare(net, work)
                env = _env(net, work)
                args = ["scan", "--json", "--render", mode, "--concurrency", str(concurrency)]
                if limit:
                    args += ["--limit", str(limit)]
                t0 = time.perf_counter()
                proc, peak, cpu = _measured(bw(*args), env, work)
                wall = time.perf_counter() - t0
                result = json.loads(proc.stdout)
                c = result["counters"]
                out[run] = {
                    "elapsed_s": c["elapsed_s"],
                    "wall_s": round(wall, 1),
                    "cpu_s": round(cpu, 1),
                    "renders": c.get("renders", 0),
                    "subjects": c["subjects"],
                    "sites": c.get("sites", 0),
                    "status": result["status"],
                    "peak_rss_mb": round(peak / 1024),
                }
                print(json.dumps({run: out[run]}), flush=True)
                engine = make_engine(env["BADGEWATCH_DATABASE_URL"])
                with engine.connect() as conn:
                    rows = conn.execute(
                        sa.select(Finding.subject, Finding.check, Finding.status, Finding.reason).where(
                            Finding.scan_id == result["scan_id"], Finding.subject.like("site:%")
                        )
                    ).all()
                engine.dispose()
                verdicts[run] = {(r.subject, r.check): (r.status, r.reason) for r in rows}
        finally:
            net.stop()
    a, b = verdicts["auto"], verdicts["always"]
    out["same_verdicts"] = a == b == verdicts["auto_after"]
    out["differences"] = sorted(
        f"{k}: auto {a.get(k)} / always {b.get(k)}" for k in set(a) | set(b) if a.get(k) != b.get(k)
    )[:20]
    auto_s = (out["auto"]["elapsed_s"] + out["auto_after"]["elapsed_s"]) / 2
    out["speedup"] = round(out["always"]["elapsed_s"] / auto_s, 1) if auto_s else 0
    return out


def markdown(
    rate: dict[str, Any] | None, memory: dict[str, Any] | None, render: dict[str, Any] | None = None
) -> str:
    lines = ["## Crawler: `badgewatch scan` vs a bare tuned Scrapy spider", ""]
    lines.append(
        f"Machine: {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        "Scrapy on Twisted's asyncio reactor (the standard engine, not the experimental reactorless "
        "one). Measured by `python benchmarks/bench_scan.py` in one run, one crawler process each; "
        "simnet served both from a third process."
    )
    lines.append("")
    if rate:
        o = rate["ours"]
        lines += [
            f"Generated simnet, {rate['sites']:,} sites, failure rate 0 (both crawlers do the same work). "
            "The baseline ran before and after our scan; its rate is the mean of the two.",
            "",
            "| crawler | what it does | HTTP requests | time (s) | requests/s | CPU (s) | requests/CPU-s "
            "| sites/s | requests/site | peak RSS |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for i, b in enumerate(rate["bare"], 1):
            lines.append(
                f"| bare Scrapy, run {i} | home pages only, no DNS (table), no checks, no storage "
                f"| {b['responses']:,} | {b['elapsed_s']} | **{b['rate']}** | {b['cpu_s']} "
                f"| {round(b['responses'] / b['cpu_s'], 1) if b['cpu_s'] else '—'} | {b['rate']} | 1 "
                f"| {b['peak_rss_mb']} MB |"
            )
        lines += [
            f"| `badgewatch scan` | DNS of every domain, home pages, domain usage, sub-resources, checks, "
            f"evidence, database | {o['requests']:,} | {o['elapsed_s']} | **{o['request_rate']}** "
            f"| {o['cpu_s']} | {o['requests_per_cpu_s']} | {o['sites_per_s']} | {o['requests_per_site']} "
            f"| {o['peak_rss_mb']} MB |",
            "",
            f"**Ratio (our requests/s ÷ baseline requests/s): {rate['ratio']}**; per CPU-second "
            f"(robust to load from other processes): **{rate['ratio_cpu']}** (goal ≥ 0.5). "
            f"Subjects (sites, domains, units) stored: {o['subjects']:,}; DNS lookups: {o['dns_lookups']:,}; "
            f"pages rendered in Chromium (`--render auto`): {o['renders']}.",
            "",
        ]
    if memory:
        sizes = [k for k in memory if k != "ratio"]
        lines += [
            "Peak memory as the registry grows (`--render never`, same benchmark):",
            "",
            "| sites in the registry | subjects scanned | complete | time (s) | peak RSS |",
            "|---|---|---|---|---|",
        ]
        for k in sizes:
            m = memory[k]
            lines.append(
                f"| {int(k):,} | {m['subjects']:,} | {'yes' if m['complete'] else 'no (time budget)'} "
                f"| {m['elapsed_s']} | {m['peak_rss_mb']} MB |"
            )
        lines += ["", "RSS over time (seconds: subjects done, RSS):", ""]
        for k in sizes:
            series = ", ".join(
                f"{x['s']} s: {x['subjects']:,} / {x['rss_mb']} MB" for x in memory[k]["samples"]
            )
            lines.append(f"* {int(k):,} sites — {series}")
        lines += ["", f"**RSS ratio largest ÷ smallest: {memory['ratio']}** (goal ≤ 1.5).", ""]
    if render:
        scope = (
            f"first {render['limit']:,} websites (and their domains)"
            if render["limit"]
            else f"the whole sample ({render['sample_sites']:,} websites and their domains)"
        )
        lines += [
            f"Render tier on the `baoding` sample, {scope}; `auto` ran before and after `always`:",
            "",
            "| run | pages rendered | subjects | scan time (s) | CPU (s, incl. Chromium) | peak RSS |",
            "|---|---|---|---|---|---|",
        ]
        for run in ("auto", "always", "auto_after"):
            r = render[run]
            lines.append(
                f"| `--render {run.replace('_after', '')}`{' (after)' if run == 'auto_after' else ''} "
                f"| {r['renders']:,} | {r['subjects']:,} | {r['elapsed_s']} | {r['cpu_s']} "
                f"| {r['peak_rss_mb']} MB |"
            )
        lines += [
            "",
            f"**`auto` is {render['speedup']}× faster than `always`** (scan time of `always` ÷ mean of the "
            f"two `auto` runs; goal ≥ 20×); same site verdicts in all three runs: "
            f"{'yes' if render['same_verdicts'] else 'no — ' + '; '.join(render['differences'])}.",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "bare":
        run_bare(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sites", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--memory", action="store_true", help="also compare peak RSS at 10,000 and 100,000 sites")
    ap.add_argument("--memory-sizes", default="10000,100000")
    ap.add_argument(
        "--memory-budget-s",
        type=float,
        default=None,
        help="stop the scans of the larger registries after this many seconds (peak RSS of the partial run)",
    )
    ap.add_argument("--no-rate", action="store_true")
    ap.add_argument(
        "--render-compare",
        type=int,
        default=0,
        metavar="N",
        help="compare --render auto and always on the first N baoding sites (-1: the whole sample)",
    )
    ap.add_argument("--out", default="", help="write the Markdown section here")
    args = ap.parse_args()
    rate = None if args.no_rate else bench_rate(args.sites, args.concurrency)
    if rate:
        print(json.dumps(rate, indent=2))
    memory = None
    if args.memory:
        memory = bench_memory(
            tuple(int(x) for x in args.memory_sizes.split(",")), args.concurrency, args.memory_budget_s
        )
        print(json.dumps(memory, indent=2))
    render = bench_render(max(0, args.render_compare), args.concurrency) if args.render_compare else None
    if render:
        print(json.dumps(render, indent=2, ensure_ascii=False))
    md = markdown(rate, memory, render)
    print(md)
    if args.out:
        Path(args.out).write_text(md, encoding="utf-8")


if __name__ == "__main__":
    main()
