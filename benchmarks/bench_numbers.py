"""Speed of the number checks (ICP, 公安, 标识码) against a bare ``lxml.html.fromstring`` parse.

Generates N realistic government home pages of 30–60 KB (header, navigation, several news columns,
a footer in one of the shapes of docs/checks-numbers.md; a tenth minified onto one line, a tenth GBK with a
``<meta>`` charset, a tenth with the footer written by an inline script), then in one run:

- **baseline**: ``lxml.html.fromstring(body)`` (bytes in, tree out, nothing else);
- **page**: a fresh :class:`checks.page.Page` (charset decision, decoding, the shared tree);
- **checks**: ``check_icp`` + ``check_police`` + ``check_site_code`` on that page.

The three phases run page by page, interleaved, timed in CPU seconds of this process, so each sees the
same load on a shared machine; the best of ``--repeat`` passes counts per phase. The figure is checks /
baseline: what the number checks add to the suite's budget (the issue's bound is 3× the bare parse for
*all* checks together).
``--write`` writes the Markdown section to ``docs/bench/numbers.md``.
Usage::

    .venv/bin/python benchmarks/bench_numbers.py [--pages 2000] [--repeat 3] [--write]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lxml.html  # noqa: E402

from checks.expected import Expected, UnitKind  # noqa: E402
from checks.icp import check_icp  # noqa: E402
from checks.page import Page  # noqa: E402
from checks.police import check_police  # noqa: E402
from checks.rules import Rules  # noqa: E402
from checks.sitecode import check_site_code  # noqa: E402

WORDS = ("关于", "进一步", "做好", "全市", "党政机关", "网站", "开办", "审核", "工作", "通知",
         "召开", "会议", "部署", "推进", "政务公开", "信息", "公告", "年度", "报告", "实施",
         "意见", "办法", "专项", "检查")  # fmt: skip
MIIT = "https://beian.miit.gov.cn/"
MPS = "https://beian.mps.gov.cn/#/query/webSearch?code={}"
PORTAL = "http://www.beian.gov.cn/portal/registerSystemInfo?recordcode={}"


def _title(rnd: random.Random) -> str:
    return "".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 9)))


def footer(rnd: random.Random, i: int) -> str:
    icp = f"冀ICP备{13000000 + i:08d}号"
    pol = f"{130602:06d}02{i:06d}"
    shapes = [
        f'<a href="{MIIT}" target="_blank">{icp}</a>　<a href="{MPS.format(pol)}"><img src="/images/ga.png">'
        f"冀公网安备 {pol}号</a>",
        f'<a href="{MIIT}">冀<span>ICP</span>备<span>{13000000 + i:08d}</span>号</a>　'
        f'<a href="{PORTAL.format(pol)}">冀公网安备{pol}号</a>',
        f'<a href="http://www.miitbeian.gov.cn/">冀ICP备：{13000000 + i:08d}号</a><br>冀公网安备：{pol}号',
        f'<span>{icp}</span> <a href="{MPS.format(pol)}"><img src="/images/ga.png" alt="公安备案"></a>'
        f"冀公网安备 {pol}号",
        f'<a href="{MIIT}"><img src="/images/icp.png" alt="{icp}"></a> 冀公网安备 {pol}号',
        f'<!-- <a href="{MIIT}">冀ICP备09000001号</a> --><a href="{MIIT}">{icp}</a>',
    ]
    code = f"网站标识码：1306{i % 100:02d}{i % 10000:04d}" if i % 3 else ""
    return ('<div class="footer"><div class="links"><a href="/about/">关于我们</a> | '
            '<a href="/map/">网站地图</a></div>'
            f"<p>主办单位：保定市第{i % 50}局　地址：保定市东风中路{i % 300}号　电话：0312-{3000000 + i}</p>"
            f"<p>{rnd.choice(shapes)}</p><p>{code}</p>"
            '<script id="_jiucuo_" sitecode="1306000001" src="https://zfwzgl.www.gov.cn/exposure/jiucuo.js"></script>'
            "</div>")


def make_page(rnd: random.Random, i: int) -> tuple[bytes, str]:
    """One home page of 30–60 KB and its Content-Type."""
    target = rnd.randint(30_000, 60_000)
    cols: list[str] = []
    size = 0
    col = 0
    while size < target - 6000:
        items = "\n".join(
            f'<li><a href="/col/col{col}/art/{i}_{k}.html" title="{(t := _title(rnd))}" '
            f'target="_blank">{t}</a>'
            f'<span class="date">2024-{1 + k % 12:02d}-{1 + k % 28:02d}</span></li>'
            for k in range(rnd.randint(8, 15))
        )
        block = (f'<div class="column col{col}"><div class="hd"><h3>栏目{col}</h3><a class="more" '
                 f'href="/col/col{col}/">更多&gt;&gt;</a></div>\n<ul class="list">\n{items}\n</ul></div>\n')
        cols.append(block)
        size += len(block.encode())
        col += 1
    foot = footer(rnd, i)
    head_meta = '<meta charset="utf-8">'
    encoding, ctype = "utf-8", "text/html; charset=utf-8"
    if i % 10 == 3:
        head_meta = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
        encoding, ctype = "gb18030", "text/html"
    if i % 10 == 7:
        # As sites do: quotes escaped, and "</" written "<\\/" so the string does not end the script.
        lines = foot.replace('"', '\\"').replace("</", "<\\/")
        foot = f'<div id="ft"><script type="text/javascript">document.write("{lines}");</script></div>'
    html = (
        "<!DOCTYPE html>\n<html>\n<head>\n" + head_meta + "\n<title>保定市人民政府</title>\n"
        '<meta name="SiteIDCode" content="1306000001">\n<link rel="stylesheet" href="/css/index.css">\n'
        '<script src="https://hm.baidu.com/hm.js?abc"></script>\n'
        "<style>.list li{line-height:30px}</style>\n</head>\n<body>\n"
        '<div class="top">今天是：<script>var d=new Date();'
        'document.write(d.getFullYear()+"年");</script></div>\n'
        '<div class="nav"><ul>'
        + "".join(f'<li><a href="/col/col{n}/">栏目{n}</a></li>' for n in range(12))
        + "</ul></div>\n"
        '<div class="main">\n' + "".join(cols) + "</div>\n" + foot + "\n</body>\n</html>\n"
    )  # fmt: skip
    if i % 10 == 5:
        html = "".join(line.strip() for line in html.splitlines())
    return html.encode(encoding), ctype


EXPECTED = Expected(
    UnitKind.PARTY_GOV, division_code="130602", icp="冀ICP备13000001号", police_record="13060202000001",
    site_code="1306000001", is_government_site=True,
)  # fmt: skip
RULES = Rules()


def page_class(i: int) -> str:
    return {3: "GB2312-declared", 5: "minified", 7: "footer written by a script"}.get(i % 10, "ordinary")


def one_pass(pages: list[tuple[bytes, str]]) -> tuple[float, float, float, int, dict[str, float]]:
    """Per page, interleaved so each side sees the same machine load: bare parse, Page + shared
    tree, the three checks (CPU time of this process). Returns the three totals, the pages where an
    ICP number was read, and the checks' time per page class."""
    base = tree = checks = 0.0
    found = 0
    per_class: dict[str, float] = {}
    clock = time.process_time
    for i, (body, ctype) in enumerate(pages):
        t0 = clock()
        lxml.html.fromstring(body)
        t1 = clock()
        page = Page(url=f"http://www.site{i}.gov.cn/", body=body, headers={"Content-Type": ctype})
        page.home.tree  # noqa: B018
        t2 = clock()
        icp = check_icp(page, EXPECTED, RULES)
        check_police(page, EXPECTED, RULES)
        check_site_code(page, EXPECTED, RULES)
        t3 = clock()
        # Freeing the page (tree, text, what the checks kept in its memo) is the page's cost, as the
        # bare parse's free is in its own time: drop the page here, under the page phase.
        del page
        t4 = clock()
        base += t1 - t0
        tree += (t2 - t1) + (t4 - t3)
        checks += t3 - t2
        per_class[page_class(i)] = per_class.get(page_class(i), 0.0) + (t3 - t2)
        found += icp.data["number"] is not None
    return base, tree, checks, found, per_class


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    rnd = random.Random(11)
    pages = [make_page(rnd, i) for i in range(args.pages)]
    total_bytes = sum(len(b) for b, _ in pages)
    runs = []
    for _ in range(args.repeat):
        gc.collect()
        runs.append(one_pass(pages))
    # The pass with the fastest checks relative to its own baseline is as noisy as any other; take
    # each phase's best instead (the machine is shared, noise only ever adds time).
    t_base = min(r[0] for r in runs)
    t_tree = min(r[1] for r in runs)
    t_checks = min(r[2] for r in runs)
    found = runs[-1][3]
    best_run = min(runs, key=lambda r: r[2])
    counts: dict[str, int] = {}
    for i in range(len(pages)):
        counts[page_class(i)] = counts.get(page_class(i), 0) + 1
    base_per_page = t_base / len(pages)
    t_all = t_tree + t_checks
    n = len(pages)
    rows = [
        ("bare `lxml.html.fromstring(bytes)`", t_base),
        ("Page: charset decision, decoding, shared tree, freeing it (`checks/page.py`)", t_tree),
        ("ICP + 公安 + 标识码 checks on that tree", t_checks),
        ("Page + the three checks", t_all),
    ]
    lines = [
        "## Number checks (ICP, 公安, 标识码)",
        "",
        f"`benchmarks/bench_numbers.py --pages {n} --repeat {args.repeat}`, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs shared with other jobs (load average "
        f"{os.getloadavg()[0]:.1f}). {n} generated home pages of 30–60 KB (mean "
        f"{total_bytes / n / 1024:.1f} KB; a tenth minified onto one line, a tenth GB2312-declared, a tenth "
        "with the footer written by an inline script). Each page is parsed bare, then built as a `Page` "
        f"and checked, interleaved, timed in CPU seconds of the process; best of {args.repeat} passes "
        f"per phase. An ICP number was read on {found}/{n} pages.",
        "",
        "| run | total s | ms/page | pages/s | × bare parse |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, t in rows:
        lines.append(f"| {label} | {t:.2f} | {t / n * 1000:.2f} | {n / t:.0f} | {t / t_base:.2f} |")
    lines += ["", "| page class | pages | checks ms/page | × mean bare parse |", "|---|---:|---:|---:|"]
    for cls, count in counts.items():
        per = best_run[4][cls] / count
        lines.append(f"| {cls} | {count} | {per * 1000:.2f} | {per / base_per_page:.2f} |")
    lines += [
        "",
        f"The three number checks cost **{t_checks / t_base:.2f}×** a bare parse on top of the shared tree. "
        "They read only the contexts around trigger words (located through the tree by source line, or "
        "by text on minified pages) and never walk a whole ordinary page in Python; the pages whose "
        "footer a script writes cost most (the script is evaluated statically, once per page). Building "
        "the `Page` (charset decision, decoding, the one shared tree; freeing it) costs "
        f"{t_tree / t_base:.2f}× on its own and is shared with the badge check.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        out = ROOT / "docs" / "bench" / "numbers.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"written to {out}")


if __name__ == "__main__":
    main()
