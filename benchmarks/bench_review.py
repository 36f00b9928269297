"""Cost of the review page's evidence view against the bare minimum of showing a captured source.

For captured pages of several sizes (a 40 KB home page up to a 4 MB one), the evidence view
(:func:`review.evidence.capture_view`: read the blob, decode as the checks do, mark the badge snippet and
ICP line, cut long pages to windows) is timed against a baseline that only reads the blob, decodes it
and HTML-escapes it, in the same run. The full review page over HTTP (uvicorn on loopback, signed in,
real checks' findings) is timed against the console's login page in the same server.

    .venv/bin/python benchmarks/bench_review.py [--repeat 30] [--markdown docs/bench/review.md]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from markupsafe import escape

from checks.page import decode_body
from review.evidence import FindingView, capture_view
from storage.evidence import EvidenceStore
from storage.models import Capture, Finding

FILLER = (
    '<div class="news"><a href="/art/2024/{i}.html">关于开展第{i}批政务公开工作的通知</a>'
    "<span>2024-05-{d:02d}</span></div>\n"
)
FOOTER = (
    '<script type="text/javascript">document.write(unescape("%3Cspan id=\'_ideConac\' %3E%3C/span%3E'
    "%3Cscript src='http://dcs.conac.cn/js/05/106/0000/12345678/CA051060000123456780001.js' "
    "type='text/javascript'%3E%3C/script%3E\"));</script>"
    '<p><a href="https://beian.miit.gov.cn/">冀ICP备12345678号-1</a></p>'
)


def page_of(size: int) -> str:
    parts, i = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>某局</title></head><body>"], 0
    while sum(len(p) for p in parts) < size:
        parts.append(FILLER.format(i=i, d=i % 28 + 1))
        i += 1
    parts.append(FOOTER + "</body></html>")
    return "".join(parts)


def timed(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def evidence_rows(repeat: int) -> list[tuple[str, float, float]]:
    store = EvidenceStore(tempfile.mkdtemp(prefix="bw-bench-review-"))
    rows = []
    for size in (40_000, 400_000, 4_000_000):
        text = page_of(size)
        body = text.encode("utf-8")
        ctype = "text/html; charset=utf-8"
        key = store.put(body)
        headers = store.put_json({"headers": {"Content-Type": ctype}})
        cap = Capture(id=1, scan_id=1, url="http://x/", body_blob=key, headers_blob=headers)
        b, i = text.index("<script"), text.index("冀ICP")
        findings = [
            Finding(
                id=1,
                check="badge",
                status="pass",
                reason="badge.ok",
                subject="site:1",
                evidence=[
                    {
                        "source": "home",
                        "excerpt": text[b : text.index("</script>", b) + 9],
                        "start": b,
                        "end": text.index("</script>", b) + 9,
                    }
                ],
            ),
            Finding(
                id=2,
                check="icp",
                status="pass",
                reason="icp.ok",
                subject="site:1",
                evidence=[{"source": "home", "excerpt": "冀ICP备12345678号-1", "start": i, "end": i + 16}],
            ),
        ]

        def view(cap: Capture = cap, findings: list[Finding] = findings) -> object:
            return capture_view(store, cap, [FindingView(f, "", "", False) for f in findings])

        def baseline(key: str = key, ctype: str = ctype) -> object:
            return str(escape(decode_body(store.get(key), ctype)[0]))

        view()  # warm-up
        rows.append((f"{len(body) // 1000} KB", timed(baseline, repeat), timed(view, repeat)))
    return rows


def http_rows(repeat: int) -> tuple[float, float]:
    import httpx

    from tests.review.conftest import Served, serve  # the same world and server as the tests
    from tests.review.world import build_world

    world = build_world(Path(tempfile.mkdtemp(prefix="bw-bench-review-")))
    gen = serve(world)
    base = next(gen)
    served = Served(world, base)
    client = served.login("zhuozhou")
    rid = world.ids["report:edu"]
    assert client.get(f"/reports/{rid}").status_code == 200
    with httpx.Client(base_url=base) as anon:
        login = timed(lambda: anon.get("/login"), repeat)
    review = timed(lambda: client.get(f"/reports/{rid}"), repeat)
    client.close()
    for _ in gen:  # stop the server
        pass
    return login, review


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    ev = evidence_rows(args.repeat)
    login, review = http_rows(args.repeat)
    lines = [
        "## Review console (`benchmarks/bench_review.py`)",
        "",
        f"Python {platform.python_version()}, {platform.machine()}; median of {args.repeat} runs each, "
        "baseline and subject measured in the same run.",
        "",
        "Evidence view of one capture (read blob, decode, mark badge and ICP, window long pages) against "
        "read + decode + escape of the same page:",
        "",
        "| captured page | baseline | evidence view | ratio |",
        "|---|---|---|---|",
    ]
    for label, base, view in ev:
        lines.append(f"| {label} | {base * 1000:.2f} ms | {view * 1000:.2f} ms | {view / base:.2f}× |")
    lines += [
        "",
        "Pages over 400,000 characters are shown as windows around the marks, which is why the view of the "
        "large pages costs less than escaping them whole.",
        "",
        "Review page over HTTP (signed in, real findings, re-derivation of fields 3 and 5) against the "
        "login page of the same server:",
        "",
        "| login page | review page | ratio |",
        "|---|---|---|",
        f"| {login * 1000:.1f} ms | {review * 1000:.1f} ms | {review / login:.1f}× |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
