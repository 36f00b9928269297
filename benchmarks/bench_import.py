"""Registry import speed: ``badgewatch registry import`` against a bare ``csv.reader`` + ``executemany``.

Generates a registry of N rows (default 100,000: one unit, one website, a Chinese and an English
domain per row, over ~200 offices), then in one run, each into a fresh database with the schema at
head:

- **baseline**: ``csv.reader`` over the same file and one ``executemany`` per table (office, unit,
  website, domain) of the raw values, ids assigned in Python, no validation at all;
- **import**: :func:`storage.registry.import_registry` (decoding, header mapping, every validation
  rule, IDNA encoding, duplicate detection, the upsert diff, bulk statements).

The figure is the ratio import / baseline (the issue requires at most 3). ``--write`` writes the
Markdown section to ``docs/bench/import.md``. Usage::

    .venv/bin/python benchmarks/bench_import.py [--rows 100000] [--postgres URL] [--write]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from checks.registry import OFFICE_COLUMNS, REGISTRY_COLUMNS  # noqa: E402
from checks.uscc import check_char  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from storage.registry import import_registry, validate_file, write_rows  # noqa: E402
from storage.tables import write_csv  # noqa: E402

# Characters for generated unit names: common in real names, varied enough that labels stay valid.
NAME_CHARS = "东南西北中华新安平和兴永丰宁康泰福长青山河川林水石金玉光明文武德仁信义礼智春秋"
KINDS = (
    ("党政机关", "11", ".政务", ("局", "委员会", "办公室", "人民政府")),
    ("事业单位", "12", ".公益", ("中学", "小学", "医院", "卫生院", "图书馆", "中心")),
)
ICP_PROVINCE = "冀"


def generate(path: Path, rows: int, seed: int = 7) -> tuple[Path, int]:
    """A registry CSV of ``rows`` rows plus its 编办 CSV; returns (offices file, office count)."""
    rnd = random.Random(seed)
    offices = [("130000", "河北省编办", "")]
    for c in range(1, 12):
        city = f"13{c:02d}00"
        offices.append((city, f"第{c}市编办", "130000"))
        for d in range(1, 19):
            offices.append((f"13{c:02d}{d:02d}", f"第{c}市第{d}县编办", city))
    header = [c.header for c in REGISTRY_COLUMNS[:17]]
    out = []
    for i in range(rows):
        office = offices[1 + i % (len(offices) - 1)][0]
        kind, prefix, suffix, endings = KINDS[i % 2]
        # A unique, varied name: a base-40 spelling of i plus a random prefix and a kind ending.
        n, word = i, ""
        while True:
            word += NAME_CHARS[n % len(NAME_CHARS)]
            n //= len(NAME_CHARS)
            if not n:
                break
        name = "".join(rnd.choice(NAME_CHARS) for _ in range(2)) + word + rnd.choice(endings)
        org = f"{i:08d}{i % 10}"
        body = prefix + office + org
        uscc = body + check_char(body)
        host = f"s{i}.example{'.gov' if prefix == '11' else ''}.cn"
        out.append(
            [
                office,
                name,
                uscc,
                kind,
                name + suffix,
                host,
                name + "网站",
                f"http://{host}/",
                f"{ICP_PROVINCE}ICP备{10000000 + i}号",
                f"冀公网安备 {office}{i:08d}号",
                f"{office}{i % 10000:04d}" if prefix == "11" else "",
                f"CA05{i:019d}",
                "已通过",
                "是",
                "2027-12-31",
                f"u{i}@example.cn",
                f"138{i:08d}",
            ]
        )
    write_csv(path, header, out)
    office_path = path.with_name(f"{path.stem}.编办.csv")
    write_csv(
        office_path,
        [c.header for c in OFFICE_COLUMNS[:6]],
        [[code, name, parent, "100", "", ""] for code, name, parent in offices],
    )
    return office_path, len(offices)


def baseline(engine: sa.Engine, path: Path, office_path: Path) -> None:
    """The bare minimum: csv.reader and one executemany per table, no validation."""
    now = datetime.now(UTC).replace(tzinfo=None) if engine.dialect.name == "sqlite" else datetime.now(UTC)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        ph = "?" if engine.dialect.name == "sqlite" else "%s"
        with office_path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            cur.executemany(
                "INSERT INTO office (code, name, parent_code, level, roster_count, email, mobile,"
                f" former_names) VALUES ({ph}, {ph}, {ph}, 'county', {ph}, '', '', '[]')",
                [(r[0], r[1], r[2] or None, int(r[3])) for r in reader],
            )
        units: list[tuple[object, ...]] = []
        sites: list[tuple[object, ...]] = []
        domains: list[tuple[object, ...]] = []
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            for i, r in enumerate(reader, start=1):
                units.append((i, r[1], r[2], r[3], r[0], r[13] == "是", r[15], r[16], now, now))
                sites.append(
                    (i, i, r[6], r[7], r[8], r[9], r[10], r[11], "", r[12], False, bool(r[10]), now, now)
                )
                kind = ".政务" if r[4].endswith("政务") else ".公益"
                domains.append((2 * i, r[4], r[4], kind, i, i, r[14], now, now))
                domains.append((2 * i + 1, r[5], r[5], "英文", i, i, None, now, now))
        cur.executemany(
            "INSERT INTO unit (id, name, uscc, kind, office_code, functions_reviewed, email, mobile,"
            f" created_at, updated_at) VALUES ({', '.join([ph] * 10)})",
            units,
        )
        cur.executemany(
            "INSERT INTO website (id, unit_id, name, url, icp, police_record, site_code, badge_code,"
            " badge_verify_id, badge_status, red_page, is_government_site, created_at, updated_at)"
            f" VALUES ({', '.join([ph] * 14)})",
            sites,
        )
        cur.executemany(
            "INSERT INTO domain (id, name, ascii, kind, unit_id, website_id, expiry, created_at, updated_at)"
            f" VALUES ({', '.join([ph] * 9)})",
            domains,
        )
        raw.commit()
    finally:
        raw.close()


def fresh_sqlite(tmp: Path, name: str) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp / name}")
    upgrade(engine)
    return engine


def fresh_postgres(admin_url: str) -> tuple[sa.Engine, str]:
    name = "bw_bench_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(admin_url.rsplit("/", 1)[0] + "/" + name)
    upgrade(engine)
    return engine, name


def drop_postgres(admin_url: str, name: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def count(engine: sa.Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        u, w, d = (
            int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("unit", "website", "domain")
        )
        return u, w, d


@dataclass
class Result:
    target: str
    counts: tuple[int, int, int]
    wall: dict[str, float]  # best wall-clock seconds per contender
    cpu: dict[str, float]  # best CPU seconds (user + system, worker processes included)


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run(rows: int, postgres: str | None, repeat: int) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "registry.csv"
        t0 = time.perf_counter()
        office_path, _ = generate(path, rows)
        print(f"generated {rows} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        targets = ["sqlite"] + (["postgresql"] if postgres else [])
        for target in targets:
            wall: dict[str, float] = {}
            cpu: dict[str, float] = {}
            counts = {}
            # Interleaved repeats, best of each: the machine is shared, the best run is the least disturbed.
            for n in range(repeat):
                for which in ("baseline", "import", "write"):
                    if target == "sqlite":
                        engine, pg_name = fresh_sqlite(tmp, f"{which}{n}.db"), ""
                    else:
                        assert postgres is not None
                        engine, pg_name = fresh_postgres(postgres)
                    try:
                        c0, t0 = cpu_seconds(), time.perf_counter()
                        if which == "baseline":
                            baseline(engine, path, office_path)
                        elif which == "import":
                            import_registry(engine, path, office_path)
                        else:
                            # The database half of the import alone: rows validated first, untimed.
                            with engine.begin() as conn:
                                report, offices, valid, _ = validate_file(conn, path, office_path)
                                c0, t0 = cpu_seconds(), time.perf_counter()
                                write_rows(conn, report, offices, valid)
                        w, c = time.perf_counter() - t0, cpu_seconds() - c0
                        wall[which] = min(wall.get(which, w), w)
                        cpu[which] = min(cpu.get(which, c), c)
                        counts[which] = count(engine)
                    finally:
                        engine.dispose()
                        if pg_name:
                            drop_postgres(postgres or "", pg_name)
                    print(
                        f"{target} {which} #{n + 1}: wall {w:.2f} s, cpu {c:.2f} s, rows {counts[which]}",
                        file=sys.stderr,
                    )
            assert counts["baseline"] == counts["import"] == counts["write"], counts
            results.append(Result(target, counts["import"], wall, cpu))
    return results


# What the figures mean (kept with the generator so that --write reproduces the whole section).
NOTES = (
    "### Notes",
    "",
    "- **write / baseline** is the database half alone: the bulk statements (one driver-level",
    "  `executemany` per table, constant timestamps bound once, no per-row statement objects) cost about",
    "  what the bare baseline costs, CSV reading included (measured with the garbage collector running,",
    "  unlike the import).",
    "- The rest of the import is validating every row in Python: IDNA encoding of the Chinese names",
    "  (about a quarter; an in-house RFC 3492 encoder for CJK labels, checked against `idna` by a property",
    "  test), the ICP / 公安 / badge-code grammar of `checks/numbers.py` (about a fifth), the USCC check,",
    "  URL normalisation, dates and the whole-file duplicate rules.",
    "- The cyclic garbage collector is paused during an import: with 100,000 rows of live objects its",
    "  repeated full scans cost more than the database writes (3.13 → 2.25 on SQLite when it was",
    "  introduced).",
    "- Forked validation workers were tried and dropped: on this shared 2-core machine they were slower",
    "  and spent ~35 % more CPU moving rows between processes.",
)


def markdown(rows: int, repeat: int, results: list[Result]) -> str:
    lines = [
        "## Registry import",
        "",
        f"`benchmarks/bench_import.py --rows {rows} --repeat {repeat}`: a generated registry of {rows:,}",
        "rows (one unit, one website, one Chinese and one English domain each, ~200 offices). The",
        "contenders run in the same command, interleaved, each into a fresh database at schema head; the",
        f"best of {repeat} runs of each is kept.",
        "",
        "- **baseline**: `csv.reader` + one `executemany` per table of the raw values (no encoding",
        "  detection, no validation, ids assigned in Python);",
        "- **import**: `badgewatch registry import` as a whole (decoding, every validation rule, IDNA",
        "  encoding, duplicate checks, upsert diff, bulk statements);",
        "- **write**: the database half of the import alone (`storage.registry.write_rows` on rows",
        "  validated beforehand): what the bulk statements cost against the bare `executemany`.",
        "",
        "| database | units / websites / domains | baseline (s) | import (s) | **import / baseline** |"
        " write (s) | write / baseline | CPU: baseline / import (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        u, w, d = r.counts
        b, i, wr = r.wall["baseline"], r.wall["import"], r.wall["write"]
        lines.append(
            f"| {r.target} | {u:,} / {w:,} / {d:,} | {b:.2f} | {i:.2f} | **{i / b:.2f}** | {wr:.2f} | "
            f"{wr / b:.2f} | {r.cpu['baseline']:.2f} / {r.cpu['import']:.2f} |"
        )
    lines += [
        "",
        f"Wall-clock seconds. Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work",
        f"(load average {os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()},",
        f"SQLAlchemy {sa.__version__}; measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        *NOTES,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BADGEWATCH_BENCH_PG"),
        help="admin URL of a PostgreSQL server to measure too (a database is created and dropped)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="interleaved runs of each; the best is kept")
    parser.add_argument("--write", action="store_true", help="write docs/bench/import.md")
    args = parser.parse_args()
    results = run(args.rows, args.postgres, args.repeat)
    text = markdown(args.rows, args.repeat, results)
    print(text)
    if args.write:
        out = ROOT / "docs" / "bench" / "import.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    worst = max(r.wall["import"] / r.wall["baseline"] for r in results)
    if worst > 3:
        print(f"ratio {worst:.2f} exceeds 3", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
