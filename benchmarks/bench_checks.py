"""Speed of the page checks: ``run_checks`` (decode + one shared parse + badge, ICP, 公安, 标识码) against
a bare ``lxml.html.fromstring`` of the same pages, measured in the same run.

Generates a few thousand realistic 30–60 KB government home pages (news columns, navigation, footers in
every badge shape of docs/checks.md, ICP/公安/标识码 variants, some GBK) and reports pages/s of both and
their ratio. The checks must cost at most 3× the bare parse.

    .venv/bin/python benchmarks/bench_checks.py [--pages 3000] [--repeat 3] [--markdown docs/bench/checks.md]
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import lxml.html

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checks.expected import Expected, UnitKind
from checks.page import Page
from checks.suite import run_checks

CODE = "CA051060000123456780001"
VID = "3F2A9C1B7D4E8F60A1B2C3D4E5F60718"
JS = f"//dcs.conac.cn/js/05/106/0000/12345678/{CODE}.js"
BSZS = f"//bszs.conac.cn/sitename?method=show&amp;id={VID}"

BADGES = [
    f'<script type="text/javascript">document.write(unescape("%3Cspan id=\'_ideConac\' %3E%3C/span%3E'
    f"%3Cscript src='http:{JS}' type='text/javascript'%3E%3C/script%3E\"));</script>",
    f'<span id="_ideConac"><a href="{BSZS}" target="_blank"><img id="imgConac" vspace="0" hspace="0" '
    f'border="0" src="//dcs.conac.cn/image/red.png" data-bd-imgshare-binded="1"></a></span>',
    f'<a href="https:{BSZS}" target="_blank"><img src="/uploads/2019/dzjg.png" alt="党政机关" /></a>',
    f'<a href="{BSZS}" target="_blank">党政机关</a>',
    "<script>var h='';h+='<a href=\"" + BSZS + "\">';h+='<img src=\"//dcs.conac.cn/image/red.png\"></a>';"
    "document.getElementById('ft').innerHTML=h;</script>",
    '<!-- <script type="text/javascript">document.write(unescape("%3Cspan id=\'_ideConac\'%3E"));'
    "</script> -->",
    '<a href="#"><img src="/images/dzjg.png" alt="党政机关" /></a>',
    "",
]
ICPS = [
    '<a href="https://beian.miit.gov.cn/" target="_blank">冀ICP备05007325号-1</a>',
    "冀ICP备<span>05007325</span>号",
    '<a href="http://www.miitbeian.gov.cn/">冀ICP备：2020012345号</a>',
    "",
]
POLICE = [
    '<a href="http://www.beian.gov.cn/portal/registerSystemInfo?recordcode=13060202000101">'
    '<img src="/images/gaba.png">冀公网安备 13060202000101号</a>',
    '<a href="https://beian.mps.gov.cn/#/query/webSearch?code=13060202000101">冀公网安备13060202000101号</a>',
    "",
]
WORDS = [
    "关于",
    "进一步",
    "推进",
    "党政机关",
    "网站",
    "开办",
    "审核",
    "资格复核",
    "标识管理",
    "工作",
    "通知",
    "全市",
    "机构编制",
    "会议",
    "召开",
    "政务公开",
    "信息",
    "年度报告",
    "事业单位",
    "法人",
    "公示",
]


EXPECTED = Expected(
    UnitKind.PARTY_GOV,
    unit_name="保定市机构编制委员会办公室",
    site_url="http://www.bdbb.gov.cn/",
    badge_code=CODE,
    division_code="130600",
    icp="冀ICP备05007325号-1",
    police_record="冀公网安备13060202000101号",
    site_code="1306000001",
    is_government_site=True,
)


def make_page(rng: random.Random, target: int) -> tuple[bytes, str, Expected]:
    """One home page of about ``target`` bytes, its Content-Type and its registry entry."""
    title = "保定市" + rng.choice(["人民政府", "机构编制网", "教育局", "卫生健康委员会", "第一中心医院"])
    parts = [
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="SiteIDCode" content="13060{rng.randint(10000, 99999)}">\n<title>{title}</title>\n'
        '<link rel="stylesheet" href="/css/style.css">\n<script src="/js/jquery-1.8.3.min.js"></script>\n'
        "</head>\n<body>\n",
        f'<div class="header"><h1><a href="/"><img src="/images/logo.png" alt="{title}"></a></h1></div>\n',
        '<div class="nav"><ul>'
        + "".join(f'<li><a href="/col/col{i}/index.html">栏目{i}</a></li>' for i in range(12))
        + "</ul></div>\n",
        "<script>var d=new Date();document.write(d.getFullYear()+'年');</script>\n",
    ]
    size = sum(len(p.encode()) for p in parts)
    col = 0
    while size < target - 3000:
        rows = []
        for i in range(rng.randint(8, 20)):
            text = "".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12)))
            rows.append(
                f'<li><span class="date">2015-0{rng.randint(1, 9)}-{rng.randint(10, 28)}</span>'
                f'<a href="/art/2015/{col}/{i:04d}.html" target="_blank" title="{text}">{text}</a></li>'
            )
        block = (
            f'<div class="column col{col}"><div class="title"><h3>栏目{col}</h3><a class="more" '
            f'href="/col/{col}/">更多&gt;&gt;</a></div>\n<ul>\n' + "\n".join(rows) + "\n</ul></div>\n"
        )
        parts.append(block)
        size += len(block.encode())
        col += 1
    footer = (
        '<div class="footer" id="footer"><p>主办单位：保定市机构编制委员会办公室　'
        "联系电话：0312-3022222</p>\n"
        f"<p>{rng.choice(ICPS)}　{rng.choice(POLICE)}　网站标识码：1306000001</p>\n"
        f'<div class="badges"><div id="ft"></div>{rng.choice(BADGES)}'
        "<script id=\"_jiucuo_\" sitecode='1306000001' src='https://zfwzgl.www.gov.cn/exposure/jiucuo.js'>"
        "</script></div></div>\n"
        "<script>var _hmt=_hmt||[];(function(){var hm=document.createElement('script');"
        "hm.src='https://hm.baidu.com/hm.js?0123';var s=document.getElementsByTagName('script')[0];"
        "s.parentNode.insertBefore(hm,s);})();</script>\n</body>\n</html>\n"
    )
    parts.append(footer)
    # Every site has its own badge code and verification id (no two pages share an embed script).
    n8, s4 = f"{rng.randrange(10**8):08d}", f"{rng.randrange(10**4):04d}"
    expected = replace(EXPECTED, badge_code=f"CA051060000{n8}{s4}")
    html = (
        "".join(parts)
        .replace("12345678/" + CODE, f"{n8}/CA051060000{n8}{s4}")
        .replace(VID, f"{rng.getrandbits(128):032X}")
    )
    if rng.random() < 0.2:
        return html.replace('charset="utf-8"', 'charset="gb2312"').encode("gb18030"), "text/html", expected
    return html.encode("utf-8"), "text/html; charset=utf-8", expected


def measure(pages: list[tuple[bytes, str, Expected]], repeat: int) -> dict[str, float]:
    """CPU seconds per variant, interleaved page by page.

    The machine is shared (other test runs): CPU time of this process, with the variants interleaved
    page by page (order alternating), lets every variant see the same load, so the ratio is stable even
    when the absolute rates are not.
    """
    clock = time.process_time
    spent = {"bare": 0.0, "all": 0.0, "badge": 0.0}

    def bare(body: bytes, ctype: str, expected: Expected) -> None:
        lxml.html.fromstring(body)

    def every(body: bytes, ctype: str, expected: Expected) -> None:
        result = run_checks(Page(url=SITE, body=body, headers={"Content-Type": ctype}), expected)
        if result.errors:
            raise SystemExit(f"check error: {result.errors}")

    def badge(body: bytes, ctype: str, expected: Expected) -> None:
        run_checks(Page(url=SITE, body=body, headers={"Content-Type": ctype}), expected, only=["badge"])

    variants: list[tuple[str, Callable[[bytes, str, Expected], None]]] = [
        ("bare", bare),
        ("all", every),
        ("badge", badge),
    ]
    for r in range(repeat):
        gc.collect()
        for i, (body, ctype, expected) in enumerate(pages):
            order = variants if (i + r) % 2 == 0 else variants[::-1]
            for name, fn in order:
                t0 = clock()
                fn(body, ctype, expected)
                spent[name] += clock() - t0
    return spent


SITE = "http://www.bdbb.gov.cn/"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20150430)
    ap.add_argument("--markdown", type=Path, default=None, help="write the results section here")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    pages = [make_page(rng, rng.randint(30_000, 60_000)) for _ in range(args.pages)]
    total = sum(len(b) for b, _, _ in pages)
    print(f"{len(pages)} pages, {total / len(pages) / 1024:.1f} KiB on average")

    ran = list(run_checks(Page(url=SITE, body=pages[0][0]), pages[0][2]).verdicts)
    wall = time.perf_counter()
    spent = measure(pages, args.repeat)
    wall = time.perf_counter() - wall
    n = len(pages) * args.repeat
    base, full, badge = (n / spent[k] for k in ("bare", "all", "badge"))
    ratio, ratio_badge = spent["all"] / spent["bare"], spent["badge"] / spent["bare"]
    verdict = "OK" if ratio <= 3 else "OVER BUDGET"
    print(f"  bare lxml.html.fromstring        {base:8.0f} pages/s")
    print(f"  run_checks ({', '.join(ran)}) {full:8.0f} pages/s")
    print(f"  run_checks (badge only)          {badge:8.0f} pages/s")
    print(
        f"cost ratio all checks / bare parse: {ratio:.2f}x ({verdict}; budget 3x); "
        f"badge only: {ratio_badge:.2f}x  [{wall:.0f} s wall]"
    )

    # Where the time goes: each check alone on pages whose tree is already built (CPU time), in units of
    # the bare parse of the same pages.
    subset = pages[: min(500, len(pages))]
    clock = time.process_time
    parse_cost = model_cost = 0.0
    for body, ctype, _ in subset:
        t0 = clock()
        lxml.html.fromstring(body)
        parse_cost += clock() - t0
        t0 = clock()
        Page(url=SITE, body=body, headers={"Content-Type": ctype}).home.tree  # noqa: B018
        model_cost += clock() - t0
    breakdown: dict[str, float] = {}
    for name in ran:
        prepared = [(Page(url=SITE, body=b, headers={"Content-Type": c}), e) for b, c, e in subset]
        for pg, _ in prepared:
            pg.home.tree  # noqa: B018  (decode + parse outside the timing)
        t0 = clock()
        for pg, e in prepared:
            run_checks(pg, e, only=[name])
        breakdown[name] = (clock() - t0) / parse_cost
    print(
        f"  page model (decode + parse) {model_cost / parse_cost:.2f}; per check, in bare-parse units: "
        + ", ".join(f"{k} {v:.2f}" for k, v in breakdown.items())
    )

    if args.markdown:
        statuses: dict[str, int] = {}
        for body, ctype, expected in pages[:500]:
            v = run_checks(
                Page(url=SITE, body=body, headers={"Content-Type": ctype}),
                expected,
                only=["badge"],
            ).verdicts["badge"]
            statuses[v.reason] = statuses.get(v.reason, 0) + 1
        reasons = ", ".join(f"`{k}` {v}" for k, v in sorted(statuses.items()))
        text = f"""## Checks (`benchmarks/bench_checks.py`)

Machine: {platform.machine()}, Python {platform.python_version()}, lxml {lxml.__version__}; one process.
{len(pages)} generated home pages, {total / len(pages) / 1024:.1f} KiB on average (30–60 KB, 20 % GB18030),
footers in every badge shape; {args.repeat} passes, CPU time of the process with the three variants
interleaved page by page (the machine is shared; this keeps the ratio stable), all in the same command:

| what | pages/s | cost vs bare parse |
|---|---:|---:|
| bare `lxml.html.fromstring(bytes)` | {base:.0f} | 1.00× |
| `run_checks` — {", ".join(ran)} (decode + one parse + all checks) | {full:.0f} | {ratio:.2f}× |
| `run_checks(only=["badge"])` (decode + parse + badge) | {badge:.0f} | {ratio_badge:.2f}× |

Each check alone, on pages already decoded and parsed, in units of the bare parse of the same pages
(first {len(subset)} pages, measured one after the other, so a little less load-proof than the table):
{", ".join(f"{k} {v:.2f}" for k, v in breakdown.items())}; the page model's decode + parse costs
{model_cost / parse_cost:.2f}.

Budget: all checks ≤ 3× the bare parse — **{verdict}**. First pass of the crawler loop (home page only, no
sub-resources yet). Badge reasons over the first 500 pages: {reasons}.

Reproduce: `.venv/bin/python benchmarks/bench_checks.py --pages {args.pages} --repeat {args.repeat}`.
"""
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
