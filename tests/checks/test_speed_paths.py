"""The fast paths of the page checks give what the plain ones give (issue 4, speed bound).

Each shortcut taken for the ≤3× budget is compared here with the straightforward computation it
replaces: the lazy line index with the full line table, the parse of UTF-8 bytes with the parse of the
decoded text, the links found from where the CONAC hosts occur with a walk over every link, the text
normalisation with the per-character reference. The badge verdicts for CONAC hosts in odd places are
those the checks gave before the fast paths (uppercase, mixed case, character references, percent
encoding, ``<noscript>``, JavaScript concatenation, multi-line tags with ``>`` in attributes).
"""

from __future__ import annotations

import bisect
import gc
import random
import weakref
from pathlib import Path
from urllib.parse import urljoin

import pytest
from lxml import etree

from checks.expected import Expected, UnitKind
from checks.numbers import normalise_char
from checks.page import Document, Page, parse_html
from checks.reading import badge_hosts as hosts_mod
from checks.reading import lines as lines_mod
from checks.reading import visible as visible_mod
from checks.rules import DEFAULT_RULES
from checks.suite import run_checks

ROOT = Path(__file__).resolve().parents[1]
URL = "http://www.bdbb.gov.cn/"
VID = "3F2A9C1B7D4E8F60A1B2C3D4E5F60718"
EXPECTED = Expected(
    UnitKind.PARTY_GOV,
    unit_name="保定市机构编制委员会办公室",
    site_url=URL,
    division_code="130600",
    icp="冀ICP备05007325号-1",
    police_record="冀公网安备13060202000101号",
    site_code="1306000001",
    is_government_site=True,
)


def _fixtures() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.htm*") if p.is_file())


# --- line index ------------------------------------------------------------------------------------


@pytest.mark.parametrize("walk", [3, 48])
def test_line_index_answers_as_the_full_table(walk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lines_mod.LineIndex, "_WALK", walk)
    rng = random.Random(walk)
    for _ in range(1500):
        text = "".join(rng.choice("ab\n\r\u2028\x0c") for _ in range(rng.randint(0, 300)))
        table = lines_mod.compute_line_starts(text)
        index = lines_mod.LineIndex(text)
        for _ in range(rng.randint(1, 25)):
            op = rng.random()
            if op < 0.4 and text:
                pos = rng.randrange(len(text))
                assert index.line_of(pos) == bisect.bisect_right(table, pos)
            elif op < 0.8:
                line = rng.randint(-1, len(table) + 2)
                want = table[line - 1] if 1 <= line <= len(table) else None
                assert index.start_or_none(line) == want
            elif op < 0.9:
                line = rng.randint(1, len(table))
                end = table[line] if line < len(table) else len(text)
                assert index.length(line) == end - table[line - 1]
            else:
                assert index.size() == len(table)


def test_line_index_on_one_huge_line_stays_linear() -> None:
    text = "x" * 2_000_000 + "\n" + "y" * 10
    index = lines_mod.LineIndex(text)
    # Thousands of questions on one long line: each count goes on from the previous answer.
    assert all(index.line_of(p) == 1 for p in range(0, 2_000_000, 200))
    assert index.line_of(len(text) - 1) == 2


# --- parsing UTF-8 bytes ---------------------------------------------------------------------------


def _shape(root: etree._Element) -> tuple[str, list[tuple[str, int | None]]]:
    lines = [(el.tag if isinstance(el.tag, str) else "#", el.sourceline) for el in root.iter()]
    return etree.tostring(root, encoding="unicode"), lines


def test_utf8_bytes_parse_to_the_same_tree_as_the_text() -> None:
    bodies = [p.read_bytes() for p in _fixtures()]
    pieces = [
        b"<p>", b"</p>", b"<div id=a>", b"\x00", b"\r", b"\r\n", b"\n", "\u2028".encode(),
        "\U0001f600".encode(), b"<!--", b"-->", b"<script>", b"</script>", b"&amp;", b"&#0;",
        b"&#xD800;", b"\xef\xbb\xbf", b"<?xml version='1.0' encoding='gbk'?>", "中文".encode(),
        b"<meta charset=gbk>", b"\x0c", b"\x1f", b"<a href='x'>", b"\xc2\x85", b"\xef\xbf\xbe", b"\t",
    ]  # fmt: skip
    rng = random.Random(1)
    bodies += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(1500)]
    fast = 0
    for body in bodies:
        doc = Document.from_bytes(URL, body, "text/html")
        if doc.utf8 is not None:
            fast += 1
            assert doc.utf8.decode("utf-8") == doc.text
        assert _shape(parse_html(doc.text, doc.utf8)) == _shape(parse_html(doc.text)), body[:200]
    assert fast > len(bodies) // 2  # the comparison did exercise the bytes path


def test_only_error_free_utf8_is_parsed_as_bytes() -> None:
    assert Document.from_bytes(URL, "冀ICP备".encode(), "text/html; charset=utf-8").utf8 is not None
    assert Document.from_bytes(URL, "冀ICP备".encode("gbk"), "text/html; charset=gbk").utf8 is None
    broken = "<p>冀ICP备</p>".encode() * 50 + b"\xff"
    assert Document.from_bytes(URL, broken, "text/html; charset=utf-8").utf8 is None


# --- links found from the host's occurrences -------------------------------------------------------

_LINK_PIECES = [
    f'<a href="http://bszs.conac.cn/sitename?method=show&amp;id={VID}">t</a>',
    '<a\nhref="//BSZS.Conac.CN/y"\n>t</a>',
    '<a href="//bszs.conac.cn/z" onclick="if(a>b)x()"\n title="q">t</a>',
    '<a title="a>b" \n href="https://bszs.conac.cn/q"\n>x</a>',
    "\n", "<p>", "</p>", "<table>", "<tr><td>", "</td></tr>", "</table>", "<div>", "</div>",
    '<!-- <a href="//bszs.conac.cn/c">c</a> -->', '<script>var u="bszs.conac.cn";</script>',
    "<a href=//bszs.conac.cn/n>n</a>", "<span>", "</span>", '<area href="//bszs.conac.cn/ar" alt="a">',
    "<map name=m>", "</map>", '<a href="#">x</a>', "text bszs.conac.cn text",
    '<a href="http://bszs.conac.cn/\n2">s</a>', '<img src="//dcs.conac.cn/image/red.png">', "<li>",
    '<a href="x">in</a>', '<noscript><a href="//bszs.conac.cn/ns">n</a></noscript>',
    '<a href="//bszs.conac.cn/u"><a href="//bszs.conac.cn/v">v</a></a>',
    '<textarea><a href="//bszs.conac.cn/ta">t</a></textarea>', "<title>bszs.conac.cn</title>",
    "<head>", "<body>", '<iframe src="//bszs.conac.cn/if"></iframe>',
]  # fmt: skip


def _matching(elements: list[etree._Element]) -> list[etree._Element]:
    match = hosts_mod._host_pattern(DEFAULT_RULES.conac_verify_hosts).search
    return [el for el in elements if (h := el.get("href")) and match(h)]


def _walked(root: etree._Element) -> list[etree._Element]:
    return _matching(list(root.iter("a"))) + _matching(list(root.iter("area")))


def test_links_near_hosts_are_the_links_a_full_walk_finds() -> None:
    rng = random.Random(20150430)
    texts = [Page(url=URL, body=p.read_bytes()).home.text for p in _fixtures()]
    texts += ["".join(rng.choice(_LINK_PIECES) for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    compared = 0
    for text in texts:
        root = parse_html(text)
        near = hosts_mod._links_near(root, text, DEFAULT_RULES.conac_verify_hosts)
        if near is None:
            continue
        compared += 1
        links = [el for el in near if el.tag == "a"]
        areas = [el for el in near if el.tag == "area"]
        assert _matching(links) + _matching(areas) == _walked(root), text
    assert compared > 2500


def test_links_near_hosts_leave_odd_sources_to_the_walk() -> None:
    hosts = DEFAULT_RULES.conac_verify_hosts
    entity = f'<html><body><a href="//bszs&#46;conac&#46;cn/?id={VID}">x</a></body></html>'
    assert hosts_mod._links_near(parse_html(entity), entity, hosts) is None
    many = "<html><body>" + '<a href="//bszs.conac.cn/">x</a>\n' * 100 + "</body></html>"
    assert hosts_mod._links_near(parse_html(many), many, hosts) is None
    one_line = "<html><body>" + "<p>filler</p>" * 3000 + '<a href="//bszs.conac.cn/">x</a></body></html>'
    assert hosts_mod._links_near(parse_html(one_line), one_line, hosts) is None
    # A host whose tail holds a letter a case-blind pattern also matches outside ASCII ("ſ" for "s").
    text = '<a href="//a.bszs.cn/">x</a>'
    assert hosts_mod._links_near(parse_html(text), text, ("a.bszs.cn",)) is None


def test_char_ref_scan_matches_substring_test() -> None:
    rng = random.Random(2)
    for _ in range(5000):
        text = "".join(rng.choice("&#a&b#") for _ in range(rng.randint(0, 300)))
        assert hosts_mod._has_char_ref(text) == ("&#" in text)


# --- text normalisation ----------------------------------------------------------------------------


def _reference_normalise(raw: str) -> tuple[str, list[int]]:
    """Normalised text and normalised → raw offsets, one character at a time (the plain definition)."""
    out: list[str] = []
    n2r: list[int] = []
    last_space = True
    for r, ch in enumerate(raw):
        c = ch if ch.isascii() and not ch.isspace() else normalise_char(ch)
        for piece in c:
            if piece == " ":
                if last_space:
                    continue
                last_space = True
            else:
                last_space = False
            out.append(piece)
            n2r.append(r)
    return "".join(out), n2r


def test_normalised_text_and_offsets_match_the_reference() -> None:
    rng = random.Random(7)
    alphabet = [*"ab 1.\n\t　ＩＣＰ京备号…\u200b\u00ad\u3002—码", "  ", "   "]
    for _ in range(5000):
        parts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(6)]
        raw = "".join(parts)
        builder = visible_mod._Builder()
        for part in parts:
            builder.emit(part, None)
        vt = visible_mod._normalise(builder, "home", raw, 0)
        want, n2r = _reference_normalise(raw)
        assert vt.text == want, raw
        # Where a character maps one to one the offsets agree (an expansion maps its pieces anywhere
        # inside the character it came from).
        for i, r in enumerate(n2r):
            if raw[r] == want[i] or normalise_char(raw[r]) == want[i]:
                assert vt.norm_to_raw(i) == r, (raw, i)


# --- verdicts for CONAC hosts in odd places --------------------------------------------------------

_FOOT = "<p>冀ICP备05007325号-1 冀公网安备13060202000101号 网站标识码：1306000001</p>"
_SHOW = f"sitename?method=show&amp;id={VID}"


_ODD = [
    (
        f'<a href="HTTP://BSZS.CONAC.CN/{_SHOW}"><img src="/d.png" alt="党政机关"></a>',
        "badge.ok",
        "custom_image",
    ),
    (f'<a href="//Bszs.Conac.Cn/{_SHOW}">党政机关</a>', "badge.ok", "text_link"),
    (
        f'<a\n title="a>b"\n href="//bszs.conac.cn/{_SHOW}"\n onclick="if(a>b)c()"\n>党政机关</a>',
        "badge.ok",
        "text_link",
    ),
    (
        '<!-- <a href="//bszs.conac.cn/old">党政机关</a> -->\n'
        f'<a href="https://bszs.conac.cn/{_SHOW}">党政机关</a>',
        "badge.ok",
        "text_link",
    ),
    (
        '<img src="/f.png" usemap="#m"><map name="m">'
        f'<area href="//bszs.conac.cn/{_SHOW}" alt="党政机关"></map>',
        "badge.ok",
        "custom_image",
    ),
    (
        "<script>document.write('<a href=\"//bszs.' + 'conac.cn/sitename?method=show&id="
        + VID
        + "\">党政机关</a>');</script>",
        "badge.ok",
        "script_built",
    ),
    # Not recognised before the fast paths either: a character reference or percent-encoding in the
    # host, a link inside <noscript>, a script loaded from the verification host.
    (f'<a href="//bszs&#46;conac&#46;cn/{_SHOW}">党政机关</a>', "badge.missing", None),
    (f'<a href="//bszs%2Econac%2Ecn/{_SHOW}">党政机关</a>', "badge.missing", None),
    (f'<noscript><a href="//bszs.conac.cn/{_SHOW}">党政机关</a></noscript>', "badge.missing", None),
    ('<script src="//bszs.conac.cn/x.js"></script>', "badge.missing", None),
    ('<iframe src="/foot.html"></iframe>', "badge.script_unavailable", None),
]


@pytest.mark.parametrize(("markup", "reason", "shape"), _ODD)
def test_badge_hosts_in_odd_places(markup: str, reason: str, shape: str | None) -> None:
    body = (
        "<html><head><meta charset='utf-8'></head><body>\n<div class='nav'><a href='/a'>a</a></div>\n"
        f"{_FOOT}\n{markup}\n</body></html>"
    ).encode()
    verdict = run_checks(Page(url=URL, body=body, exhausted=True), EXPECTED).verdicts["badge"]
    assert (verdict.reason, verdict.data["shape"]) == (reason, shape)
    if reason == "badge.ok":
        assert verdict.data["verify_id"] == VID


# --- what a page leaves behind ---------------------------------------------------------------------


def test_a_checked_page_is_freed_at_once() -> None:
    """What the checks derive from a page lives in its memo and refers to nothing that refers back:
    dropping the page frees it (and its tree) without the cycle collector."""
    body = (
        f'<html><body>{_FOOT}<script>document.write(unescape(\'%3Ca href="//bszs.conac.cn/{_SHOW}"%3E'
        "党政机关%3C/a%3E'));</script><script src='/js/foot.js'></script></body></html>"
    ).encode()
    gc.collect()
    gc.disable()
    try:
        page = Page(url=URL, body=body)
        run_checks(page, EXPECTED)
        assert page.memo and page.home.memo
        ref = weakref.ref(page)
        del page
        assert ref() is None
    finally:
        gc.enable()


def test_absolute_urls_are_what_urljoin_gives() -> None:
    bases = [
        "http://www.bdbb.gov.cn/",
        "https://a.gov.cn/x/y.html",
        "http://a.gov.cn",
        "https://b.cn/?q=1#f",
        "ftp://x/",
        "http://[::1]:80/p",
        "HTTP://x.cn/",
    ]
    parts = [
        "http://",
        "https://",
        "//",
        "/",
        "a",
        "b.cn",
        ".",
        "..",
        "?",
        "#",
        ";",
        "x=1",
        "&amp;",
        " ",
        "\t",
        "\n",
        "\\",
        "HTTP://",
        "%2e",
        ":",
        "@",
        "[",
        "]",
        "dcs.conac.cn",
        "/js/x.js",
        "\x00",
        "\x7f",
        "é",
        "Ａ",
        "http:",
        "https:",
    ]
    rng = random.Random(5)
    for _ in range(50_000):
        raw = "".join(rng.choice(parts) for _ in range(rng.randint(1, 6)))
        base = rng.choice(bases)
        cleaned = hosts_mod.clean_url(raw)
        want: str | None
        if (
            not cleaned
            or cleaned.startswith("#")
            or cleaned.lower().startswith(("javascript:", "mailto:", "data:", "tel:"))
        ):
            want = None
        else:
            try:
                want = urljoin(base, cleaned)
            except ValueError:
                want = None
        assert hosts_mod.absolute_url(base, raw) == want, (base, raw)
