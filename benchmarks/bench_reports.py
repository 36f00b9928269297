"""Reports benchmark: coverage table and list rendering, each as a ratio against a baseline run here.

1. Coverage of a 保定-sized registry ×SCALE (附件1's figures, SCALE copies of every office):
   ``coverage_from_db`` (SQL aggregates) against a naive baseline that loads every unit, domain and
   website through the ORM and counts in Python.
2. A non-compliance list of N lines rendered to text, CSV, XLSX and HTML, against a baseline of
   ``csv.writer`` writing the same cells.

Usage: ``python benchmarks/bench_reports.py [--scale 3] [--lines 20000] [--markdown docs/bench/reports.md]``.
Everything is local (a SQLite file in a temporary directory); nothing touches the network.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reports.documents import noncompliance_document
from reports.noncompliance import FindingRecord, build_noncompliance
from reports.render import render_csv, render_html, render_text, render_xlsx
from reports.source import coverage_from_db
from storage.db import make_engine, upgrade
from storage.models import Domain, Office, Unit, Website

# 附件1 rows: name, roster, registered, domains, party badges, institution badges.
ROWS = [
    ("市直", 545, 210, 215, 41, 39),
    ("北市区", 160, 84, 93, 52, 101),
    ("南市区", 152, 111, 113, 53, 101),
    ("新市区", 178, 156, 157, 50, 13),
    ("安国市", 291, 187, 188, 34, 54),
    ("高碑店市", 376, 349, 352, 63, 267),
    ("满城县", 403, 2, 3, 1, 0),
    ("清苑县", 535, 76, 77, 5, 32),
    ("涞水县", 390, 267, 268, 37, 230),
    ("阜平县", 368, 328, 329, 59, 311),
    ("徐水县", 320, 135, 136, 15, 1),
    ("定兴县", 450, 426, 429, 58, 391),
    ("唐县", 539, 435, 436, 74, 170),
    ("高阳县", 318, 242, 243, 27, 6),
    ("容城县", 262, 247, 250, 49, 215),
    ("涞源县", 331, 293, 295, 58, 241),
    ("望都县", 260, 135, 137, 22, 0),
    ("安新县", 400, 382, 383, 48, 175),
    ("易县", 543, 557, 558, 74, 9),
    ("曲阳县", 540, 154, 156, 66, 24),
    ("顺平县", 291, 58, 59, 48, 6),
    ("蠡县", 424, 410, 411, 53, 16),
    ("博野县", 258, 92, 93, 33, 56),
    ("雄县", 396, 60, 61, 27, 10),
]


def build(engine: sa.Engine, scale: int) -> int:
    units, domains, sites = [], [], []
    uid = 0
    with Session(engine) as s:
        s.add(Office(code="130600", name="保定市", level="city", roster_count=545 * scale))
        s.flush()
        for k in range(scale):
            for i, row in enumerate(ROWS[1:], start=1):
                s.add(
                    Office(
                        code=f"1306{k:02d}{i:02d}"[:12],
                        name=f"{row[0]}{k}",
                        parent_code="130600",
                        roster_count=row[1],
                    )
                )
        s.commit()
    for k in range(scale):
        for i, (name, roster, reg, dom, party, inst) in enumerate(ROWS):
            code = "130600" if i == 0 else f"1306{k:02d}{i:02d}"
            n = max(roster, reg)
            ids = list(range(uid + 1, uid + n + 1))
            uid += n
            for j, u in enumerate(ids):
                units.append(
                    {
                        "id": u,
                        "name": f"{name}{k}-{j}",
                        "kind": "党政机关" if j % 2 == 0 else "事业单位",
                        "office_code": code,
                    }
                )
            for j, u in enumerate(ids[:reg]):
                for extra in range(1 + (1 if j < dom - reg else 0)):
                    domains.append(
                        {
                            "name": f"u{u}-{extra}.政务",
                            "ascii": f"u{u}-{extra}.xn--zfr164b",
                            "kind": ".政务",
                            "unit_id": u,
                        }
                    )
            for count, owners in ((party, ids[0::2]), (inst, ids[1::2])):
                for j in range(count):
                    o = owners[j % len(owners)]
                    sites.append({"unit_id": o, "url": f"http://s{o}-{j}.example/", "badge_status": "已通过"})
    with engine.begin() as conn:
        conn.execute(sa.insert(Unit), units)
        conn.execute(sa.insert(Domain), domains)
        conn.execute(sa.insert(Website), sites)
    return len(units)


def naive_coverage(session: Session) -> dict[str, tuple[int, int, int, int, int]]:
    """Baseline: every object through the ORM, counted in Python (what a first version would do)."""
    out: dict[str, tuple[int, int, int, int, int]] = {}
    units = session.scalars(sa.select(Unit).options(selectinload(Unit.domains), selectinload(Unit.websites)))
    for u in units:
        reg, dom, party, inst, n = out.get(u.office_code, (0, 0, 0, 0, 0))
        cn = [d for d in u.domains if d.kind in (".政务", ".公益")]
        ok = [w for w in u.websites if w.badge_status == "已通过" and not w.red_page]
        out[u.office_code] = (
            reg + bool(cn),
            dom + len(cn),
            party + (len(ok) if u.kind == "党政机关" else 0),
            inst + (len(ok) if u.kind == "事业单位" else 0),
            n + 1,
        )
    return out


def timed(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def records(n: int) -> list[FindingRecord]:
    reasons = ["badge.missing", "icp.missing", "http.timeout", "icp.link_outdated", "dns.nxdomain"]
    statuses = {
        "badge.missing": "fail",
        "icp.missing": "fail",
        "http.timeout": "unknown",
        "icp.link_outdated": "warn",
        "dns.nxdomain": "fail",
    }
    out = []
    for i in range(n):
        r = reasons[i % len(reasons)]
        office = f"13062{i % 8}"
        out.append(
            FindingRecord(
                i,
                1,
                office,
                f"第{i % 8}县",
                i // 3,
                f"某某县人民政府某某局{i // 3}",
                "党政机关",
                f"site:{i}",
                r.split(".")[0],
                statuses[r],
                r,
                confirmed=True,
                site_name=f"某某局网站{i}",
                site_url=f"http://www{i}.example.gov.cn/",
                capture_id=i,
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=3)
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    lines: list[str] = ["## Reports (`benchmarks/bench_reports.py`)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        n_units = build(engine, args.scale)
        with Session(engine) as s:
            ours = timed(lambda: coverage_from_db(s, "130600", dt.date(2015, 3, 31)), args.repeat)
            s.expunge_all()

            def baseline() -> None:
                naive_coverage(s)
                s.expunge_all()  # each run loads from the database, as the first one did

            base = timed(baseline, args.repeat)
        engine.dispose()
    lines += [
        f"Coverage table, {n_units} units (附件1 ×{args.scale}), SQLite, median of {args.repeat}:",
        "",
        "| variant | seconds | ratio to baseline |",
        "|---|---|---|",
        f"| baseline: ORM load + count in Python | {base:.3f} | 1.00 |",
        f"| `coverage_from_db` (SQL aggregates) | {ours:.3f} | {base / ours:.1f}× faster |",
        "",
    ]
    report = build_noncompliance(1, records(args.lines))
    doc = noncompliance_document(report)
    rows = [row for sheet in doc.sheets for row in sheet.rows]

    def baseline_csv() -> bytes:
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return buf.getvalue().encode("utf-8")

    b = timed(baseline_csv, args.repeat)
    lines += [
        f"Non-compliance list, {args.lines} lines over {len(doc.sheets)} office sheets, median of "
        f"{args.repeat}:",
        "",
        "| renderer | seconds | ratio to plain csv.writer | output bytes |",
        "|---|---|---|---|",
        f"| baseline: csv.writer | {b:.3f} | 1.0 | {len(baseline_csv())} |",
    ]
    renderers: tuple[tuple[str, Callable[[], bytes]], ...] = (
        ("CSV (BOM, injection-safe)", lambda: render_csv(doc)),
        ("XLSX (styles, filters, links)", lambda: render_xlsx(doc)),
        ("HTML", lambda: render_html(doc).encode()),
        ("text (rich ≤60 rows, plain layout above)", lambda: render_text(doc).encode()),
    )
    for name, fn in renderers:
        t = timed(fn, args.repeat)
        lines.append(f"| {name} | {t:.3f} | {t / b:.1f}× | {len(fn())} |")
    lines += [
        "",
        f"Machine: {sys.platform}, Python {sys.version.split()[0]}; "
        f"run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
