"""The contexts of a document around trigger words: where the number checks read visible text.

Speed: walking a whole tree in Python costs more than parsing it, so only the *contexts* around trigger
words (``ICP``, ``公网安备``, ``标识码`` …) are read. Trigger words are found in the source (a few C-level
scans); those inside comments, scripts and styles are set aside by a cheap source reading; the element
holding each remaining one is located through the shared tree by source line (by text on minified
pages) and its enclosing block is walked, widening while the block's visible text lacks a word of that
line. What is derived from a document lives in its ``memo`` (freed with it, at once: a finished page in
a module cache was freed pages later, from a cold CPU cache, at a cost comparable to the checks).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from lxml import etree

from checks.numbers import normalise_char
from checks.page import Document
from checks.reading.lines import LineIndex, lines_of
from checks.reading.visible import _PHRASING, VisibleText, visible_text

#: Words that announce the identifiers the number checks read (raw, before normalisation).
TRIGGERS: tuple[str, ...] = ("ICP", "ＩＣＰ", "icp备", "Icp备", "icp证", "ｉｃｐ", "网安备", "公安网备",
                             "公安备案", "公安机关备案", "标识码", "识别码")  # fmt: skip
# Lines with trigger words that are read per document; beyond this the first quarter and the rest
# from the end are kept (footers close a page) and the result says it was cut.
_MAX_TRIGGER_LINES = 40
_MAX_SCAN_HITS = 200_000


_BODY_TAG = re.compile(r"<body[\s>]", re.I)


# Comments and raw-text elements of the source, found in one C-level pass when a page has triggers.
_RAW_SPANS = re.compile(r"<!--.*?(?:-->|\Z)|<(script|style)\b.*?(?:</\1\s*>|\Z)", re.S | re.I)


def _hidden_spans(text: str) -> tuple[list[int], list[int]]:
    """Starts and ends of the comments, scripts and styles of ``text`` (a cheap source reading).

    Only used to avoid walking wide contexts for triggers nobody sees; visibility itself is decided
    on the tree.
    """
    starts: list[int] = []
    ends: list[int] = []
    for m in _RAW_SPANS.finditer(text):
        starts.append(m.start())
        ends.append(m.end())
    return starts, ends


def _in_spans(spans: tuple[list[int], list[int]], pos: int) -> bool:
    i = bisect.bisect_right(spans[0], pos) - 1
    return i >= 0 and pos < spans[1][i]


# Scanning a 50 KB page costs ~20 µs per word, so the default triggers are found through a few
# probes: each probe hit is confirmed against the words it stands for (word, offset of the probe in it).
_PROBES: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
    ("ICP", (("ICP", 0),)),
    # One scan for every police label and one for both 标识码 labels: the few other "备" and "码" of a
    # page (备案, 二维码) cost a failed comparison each, less than a scan per label.
    ("备", (("网安备", 2), ("公安网备", 3), ("公安备案", 2), ("公安机关备案", 4))),
    ("码", (("标识码", 2), ("识别码", 2))),
)
# Rare spellings, scanned only when no "ICP" is in sight.
_RARE_PROBES: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
    ("ＩＣＰ", (("ＩＣＰ", 0),)),
    ("ｉｃｐ", (("ｉｃｐ", 0),)),
    ("cp", (("icp备", 1), ("Icp备", 1), ("icp证", 1))),
)


_Probe = tuple[str, tuple[tuple[str, int], ...]]


def _scan(text: str, probes: Iterable[_Probe], out: list[tuple[int, str]]) -> None:
    find, startswith = text.find, text.startswith
    for probe, words in probes:
        i = find(probe)
        while i >= 0 and len(out) < _MAX_SCAN_HITS:
            for word, offset in words:
                at = i - offset
                if at >= 0 and startswith(word, at):
                    out.append((at, word))
                    break
            i = find(probe, i + 1)


def _trigger_lines(
    text: str, triggers: Iterable[str], index: LineIndex
) -> tuple[dict[int, set[str]], dict[int, set[str]], bool]:
    """Trigger words by source line (1-based): ``(likely visible, likely hidden, cut)``."""
    hits: list[tuple[int, str]] = []
    default = tuple(triggers) == TRIGGERS
    if default:
        _scan(text, _PROBES, hits)
        if not any(w == "ICP" for _, w in hits):
            _scan(text, _RARE_PROBES, hits)
    else:
        _scan(text, ((w, ((w, 0),)) for w in triggers), hits)
    shown: dict[int, set[str]] = {}
    hidden: dict[int, set[str]] = {}
    if not hits:
        return shown, hidden, False
    # Titles and metas in <head> are not the footer.
    body = _BODY_TAG.search(text)
    body_at = body.start() if body else 0
    # Lines counted in page order: each count runs from the previous hit, not from the top.
    line_at = {p: index.line_of(p) for p in sorted({p for p, _ in hits if p >= body_at})}
    spans = _hidden_spans(text)
    for p, word in hits:
        if p < body_at:
            continue
        target = hidden if _in_spans(spans, p) else shown
        target.setdefault(line_at[p], set()).add(word)
    cut = False
    for group in (shown, hidden):
        if len(group) > _MAX_TRIGGER_LINES:
            lines = sorted(group)
            head = _MAX_TRIGGER_LINES // 4
            keep = set(lines[:head] + lines[head - _MAX_TRIGGER_LINES :])
            for line in lines:
                if line not in keep:
                    del group[line]
            cut = True
    return shown, hidden, cut


def _body(root: etree._Element) -> etree._Element:
    # Direct child scan: ElementPath's find() parses its path in Python on every call.
    for child in root:
        if child.tag == "body":
            return child
    return root


def _locate(root: etree._Element, line: int) -> etree._Element:
    """The deepest element that starts at or before ``line`` on the path of document order."""
    el = _body(root)
    while True:
        chosen = None
        for child in el:
            if not isinstance(child.tag, str):
                continue
            cl = child.sourceline
            if cl is None or cl <= line:
                chosen = child
            else:
                break
        if chosen is None:
            return el
        el = chosen


_LONG_LINE = 2000


def _descend(root: etree._Element, words: Iterable[str]) -> etree._Element:
    """The deepest element that alone holds every word (text or alt/title), from ``<body>`` down."""
    el = _body(root)
    while True:
        holders = [c for c in el if isinstance(c.tag, str) and _might_hold(c, words)]
        if len(holders) != 1:
            return el
        el = holders[0]


def _block_of(el: etree._Element) -> etree._Element:
    """The nearest block ancestor, one level further up so a label and value in sibling cells join."""
    node: etree._Element | None = el
    while node is not None and isinstance(node.tag, str) and node.tag.lower() in _PHRASING:
        node = node.getparent()
    if node is None:
        return el
    parent = node.getparent()
    if parent is not None and parent.tag not in ("body", "html"):
        return parent
    return node


@lru_cache(maxsize=256)
def _norm_word(word: str) -> str:
    return "".join(normalise_char(c) for c in word)


def _contains_any(text: str, triggers: Iterable[str]) -> bool:
    return any(_norm_word(t) in text for t in triggers)


def _contains_all(text: str, words: Iterable[str]) -> bool:
    return all(_norm_word(w) in text for w in words)


_ALT_TITLE = etree.XPath("descendant-or-self::*/@alt | descendant-or-self::*/@title")


def _might_hold(el: etree._Element, words: Iterable[str]) -> bool:
    """Cheap test (C-level text and attribute extraction) before a walk in Python."""
    attrs = _ALT_TITLE(el)
    raw = el.text_content() + (" ".join(map(str, attrs)) if isinstance(attrs, list) else "")
    return all(w in raw for w in words)


@dataclass(frozen=True, slots=True)
class DocText:
    """The visible text of every context of a document that holds a trigger word."""

    name: str
    contexts: tuple[VisibleText, ...]
    #: Too many lines held trigger words: only the first and the last were read.
    cut: bool = False


def _ancestors_or_self(el: etree._Element) -> set[etree._Element]:
    out = {el}
    out.update(el.iterancestors())
    return out


def trigger_contexts(doc: Document, name: str = "home", triggers: Sequence[str] = TRIGGERS) -> DocText:
    """The visible-text contexts around trigger words of ``doc`` (kept in ``doc.memo``)."""
    key = ("contexts", name, triggers if isinstance(triggers, tuple) else tuple(triggers))
    hit: DocText | None = doc.memo.get(key)
    if hit is None:
        hit = doc.memo[key] = _build_contexts(doc, name, triggers)
    return hit


@dataclass(slots=True)
class _Build:
    """The contexts of one document being chosen: the blocks and their visible text."""

    doc: Document
    name: str
    triggers: Sequence[str]
    root: etree._Element
    chosen: list[etree._Element] = field(default_factory=list)
    texts: dict[etree._Element, VisibleText] = field(default_factory=dict)


def _build_contexts(doc: Document, name: str, triggers: Sequence[str]) -> DocText:
    shown, hidden, cut = _trigger_lines(doc.text, triggers, lines_of(doc))
    if not shown and not hidden:
        return DocText(name, ())
    build = _Build(doc, name, triggers, doc.tree)
    _add_contexts(build, shown)
    if not build.chosen and hidden:
        # The cheap source test may be wrong (odd comment syntax): ask the tree where the words are.
        _add_tree_contexts(build, hidden)
    ordered = sorted(build.chosen, key=lambda e: e.sourceline or 0)
    return DocText(name, tuple(build.texts[e] for e in ordered), cut)


def _add_tree_contexts(build: _Build, lines: dict[int, set[str]]) -> None:
    """Second opinion for words the source test put in comments or scripts: follow the tree's text
    (C-level ``text_content``, which has no comments) down to the element that holds them, and read
    it. A word inside a script leads to the script's block, whose visible text does not show it."""
    root, chosen = build.root, build.chosen
    body = _body(root)
    for words in {frozenset(w) for w in lines.values()}:
        el = _block_of(_descend(root, words))
        if el is body or el is root or any(c in _ancestors_or_self(el) for c in chosen):
            continue
        vt = visible_text(build.doc, el, build.name)
        if _contains_any(vt.text, build.triggers):
            chosen.append(el)
            build.texts[el] = vt


def _add_contexts(build: _Build, lines: dict[int, set[str]]) -> None:
    """Add the context of each line: the smallest block around it whose visible text shows every
    trigger word of that line (words that sit in comments or scripts widen it up to the root)."""
    doc, root, chosen, texts = build.doc, build.root, build.chosen, build.texts
    index = lines_of(doc)
    for line in sorted(lines):
        words = lines[line]
        if index.length(line) > _LONG_LINE:
            # Minified markup: a line says little, the text itself says where the words are.
            el = _block_of(_descend(root, words))
        else:
            el = _block_of(_locate(root, line))
        cover = next((c for c in chosen if c in _ancestors_or_self(el)), None)
        if cover is not None and _contains_all(texts[cover].text, words):
            continue
        while True:
            parent = el.getparent()
            if parent is None or _might_hold(el, words):
                vt = visible_text(doc, el, build.name)
                if parent is None or _contains_all(vt.text, words):
                    break
            assert parent is not None
            el = parent
        if not _contains_any(vt.text, build.triggers):
            continue
        # A wider context replaces the narrower ones it contains.
        for c in list(chosen):
            if c is not el and el in _ancestors_or_self(c):
                chosen.remove(c)
                texts.pop(c, None)
        if el not in texts:
            chosen.append(el)
            texts[el] = vt
