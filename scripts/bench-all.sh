#!/usr/bin/env bash
# `make bench`: every benchmark of docs/benchmarks.md with its defaults, one after the other (hours on a
# 2-core machine). Each script prints its figures and writes its write-up under docs/bench/ where it has
# one; run a single script to refresh one row.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
for script in bench_import bench_simnet bench_checks bench_numbers bench_reports bench_review bench_scheduler; do
    echo "== benchmarks/$script.py"
    "$PY" "benchmarks/$script.py"
done
echo "== benchmarks/bench_scan.py"
"$PY" benchmarks/bench_scan.py --memory --render-compare 500 --out docs/bench/crawler.md
echo "== benchmarks/bench_distributed.py"
"$PY" benchmarks/bench_distributed.py --out docs/bench/distributed.md
echo "== benchmarks/bench_politeness.py"
"$PY" benchmarks/bench_politeness.py --out docs/bench/politeness.md
