"""Visible text of a document, with a map back to the source, and the page search of the number checks.

What a visitor reads: comments, scripts, styles, templates, ``<noscript>`` and hidden elements are
dropped; inline tags are joined without a gap (so ``京<span>ICP</span>备`` reads ``京ICP备``); block
boundaries and ``<br>`` read as a space; ``alt``/``title`` of images and links are read as text. The text
is normalised (:func:`checks.numbers.normalise_char`: full-width forms, spaces folded) and maps back to
the decoded source on demand, so a verdict can quote the exact markup it rests on.

Speed: walking a whole tree in Python costs more than parsing it, so only the *contexts* around trigger
words (``ICP``, ``公网安备``, ``标识码`` …) are read. Trigger words are found in the source (a few C-level
scans); those inside comments, scripts and styles are set aside by a cheap source reading; the element
holding each remaining one is located through the shared tree by source line (by text on minified
pages) and its enclosing block is walked, widening while the block's visible text lacks a word of that
line. Source offsets are computed only for the evidence a verdict quotes.

:func:`search_page` runs a pattern over the contexts of the home page, the rendered DOM and frames, then,
when nothing was found, over the markup the page's scripts write (:mod:`checks.badge_js`), and says
what could not be read (same-site scripts not captured, scripts only a browser can evaluate).
"""

from __future__ import annotations

import bisect
import html
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

from lxml import etree

from checks.badge_js import inserted_markup
from checks.landing import find_includes
from checks.numbers import normalise_char
from checks.page import Document, Need, NeedKind, Page
from checks.verdict import Evidence, Status, Verdict

#: Elements whose content is never shown as text.
_SKIP = frozenset({"script", "style", "template", "noscript", "head", "title", "textarea", "select",
                   "object", "embed", "svg", "math", "iframe"})  # fmt: skip
#: Inline elements: their boundaries do not separate words.
_INLINE = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "dfn", "em", "font", "i", "kbd",
    "label", "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt",
    "u", "var", "wbr", "nobr", "ins", "del", "acronym", "blink",
})  # fmt: skip
#: Inline elements and inline leaves (images, controls, scripts): what sits inside a line of text.
_PHRASING = _INLINE | {"img", "br", "input", "button", "select", "textarea", "object", "embed", "iframe",
                       "svg", "canvas", "video", "audio", "map", "area", "picture", "source", "script",
                       "noscript", "style", "template"}  # fmt: skip
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_ONCLICK_URL = re.compile(r"""(?:https?:)?//[^\s'"\\)]+""", re.I)

#: Words that announce the identifiers the number checks read (raw, before normalisation).
TRIGGERS: tuple[str, ...] = ("ICP", "ＩＣＰ", "icp备", "Icp备", "icp证", "ｉｃｐ", "网安备", "公安网备",
                             "公安备案", "公安机关备案", "标识码", "识别码")  # fmt: skip
# Lines with trigger words that are read per document; beyond this the first quarter and the rest
# from the end are kept (footers close a page) and the result says it was cut.
_MAX_TRIGGER_LINES = 40
_MAX_SCAN_HITS = 200_000


@dataclass(frozen=True, slots=True)
class Anchor:
    """A link in visible-text coordinates: ``[start, end)`` of its text, its target."""

    start: int
    end: int
    href: str


@dataclass(slots=True)
class _Segment:
    raw_start: int  # index into the raw joined text
    text: str
    line: int | None  # source line of the element it came from
    attr: bool  # an alt/title value (not text content)


@dataclass(slots=True)
class _Fold:
    """A whitespace run of the raw text: where it starts in the normalised text and in the raw text."""

    norm: int
    raw_start: int
    raw_end: int
    emitted: bool  # folded to one space (False: dropped at the start)


@dataclass(slots=True)
class VisibleText:
    """Normalised visible text of one context, with links, mapping back to the source on demand.

    ``text`` is normalised (NFKC, whitespace runs folded to one space); ``anchors`` are the links
    inside (in ``text`` coordinates). Source offsets are computed only when evidence is asked for.
    """

    name: str
    source: str
    text: str
    anchors: tuple[Anchor, ...]
    raw: str = ""
    segments: list[_Segment] = field(default_factory=list)
    folds: list[_Fold] = field(default_factory=list)
    n2r: list[int] | None = None  # explicit normalised → raw map (slow path), else ``folds``
    cursor0: int = 0
    line0: int = 0  # when set, ``cursor0`` is the start of this source line
    # Evidence support, built on first use: source offsets of the segments located so far (in
    # document order, by one finder), and the bisect keys of folds and segments.
    _seg_src: list[int | None] = field(default_factory=list)
    _finder: _Finder | None = None
    _fold_norms: list[int] | None = None
    _seg_starts: list[int] | None = None

    # --- coordinates -----------------------------------------------------------------------------
    def norm_to_raw(self, i: int) -> int:
        if self.n2r is not None:
            return self.n2r[min(i, len(self.n2r) - 1)] if self.n2r else 0
        if self._fold_norms is None:
            self._fold_norms = [f.norm for f in self.folds]
        k = bisect.bisect_right(self._fold_norms, i) - 1
        if k < 0:
            return i
        f = self.folds[k]
        if f.emitted and i == f.norm:
            return f.raw_start
        return f.raw_end + (i - f.norm - (1 if f.emitted else 0))

    def source_offset(self, i: int) -> int | None:
        """Source offset of ``text[i]`` (None when it cannot be located)."""
        if not self.segments or i < 0:
            return None
        r = self.norm_to_raw(i)
        if self._seg_starts is None:
            self._seg_starts = [sg.raw_start for sg in self.segments]
        k = bisect.bisect_right(self._seg_starts, r) - 1
        if k < 0:
            return None
        base = self._segment_source(k)
        if base is None:
            return None
        seg = self.segments[k]
        off = r - seg.raw_start
        if self.source.startswith(seg.text, base):
            return base + off
        where = _align(self.source, base, seg.text)
        pos = where[off] if off < len(where) else -1
        return pos if pos >= 0 else None

    def _segment_source(self, k: int) -> int | None:
        """Source offset of segment ``k``. Segments are located in document order by one finder (each
        search starts where the previous one ended), so only those up to ``k`` are located, once."""
        located = self._seg_src
        if len(located) <= k:
            finder = self._finder
            if finder is None:
                index = line_index(self.source)
                if self.line0:
                    at = index.start_or_none(self.line0)
                    self.cursor0 = index.table()[-1] if at is None else at
                    self.line0 = 0
                finder = self._finder = _Finder(self.source, index, self.cursor0)
            segments = self.segments
            for j in range(len(located), k + 1):
                sg = segments[j]
                located.append(finder.locate(sg.text, sg.line, sg.attr) if sg.text.strip() else None)
        return located[k]

    def source_span(self, start: int, end: int) -> tuple[int | None, int | None]:
        """Source offsets ``[s, e)`` of ``text[start:end]`` (None when not located)."""
        s = next((o for i in range(start, end) if (o := self.source_offset(i)) is not None), None)
        e = next((o for i in range(end - 1, start - 1, -1) if (o := self.source_offset(i)) is not None), None)
        if s is None or e is None:
            return None, None
        return s, e + 1

    def evidence(self, start: int, end: int, limit: int = 400) -> Evidence:
        """Evidence quoting the source markup of ``text[start:end]`` (the normalised text if unmapped)."""
        s, e = self.source_span(start, end)
        if s is None or e is None or e <= s or e - s > limit:
            return Evidence(self.name, self.text[start:end], s, e)
        return Evidence(self.name, self.source[s:e], s, e)

    def anchors_over(self, start: int, end: int) -> list[Anchor]:
        """Links whose text overlaps ``[start, end)``."""
        return [a for a in self.anchors if a.start < end and a.end > start]

    def anchors_near(self, start: int, end: int, window: int) -> list[Anchor]:
        """Links within ``window`` characters of ``[start, end)``, nearest first."""
        near = [a for a in self.anchors if a.start < end + window and a.end > start - window]
        return sorted(
            near,
            key=lambda a: (
                0 if (a.start < end and a.end > start) else min(abs(a.start - end), abs(start - a.end))
            ),
        )


@dataclass(slots=True)
class _Builder:
    """Collects the raw visible text of a walk (cheap: no source lookups here)."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    segments: list[_Segment] = field(default_factory=list)
    anchors: list[tuple[int, int, str]] = field(default_factory=list)

    def emit(self, text: str | None, line: int | None, attr: bool = False) -> None:
        if not text:
            return
        self.segments.append(_Segment(self.length, text, line, attr))
        self.parts.append(text)
        self.length += len(text)

    def sep(self) -> None:
        if self.parts and not self.parts[-1].endswith(" "):
            self.parts.append(" ")
            self.segments.append(_Segment(self.length, " ", None, False))
            self.length += 1


@dataclass(slots=True)
class _Finder:
    """Finds parsed text (entities decoded) in the source, in document order."""

    source: str
    lines: _Lines
    cursor: int = 0

    def locate(self, text: str, line: int | None, attr: bool) -> int | None:
        """Source offset of ``text`` at or after the cursor (and its element's line)."""
        lead = len(text) - len(text.lstrip())
        body = text[lead:].rstrip()
        start_at = self.cursor
        if line is not None and (at := self.lines.start_or_none(line)) is not None:
            start_at = max(start_at, at)
        # Most text is in the source verbatim (tried first, alone); else with the usual escapes; else
        # anchor on the longest entity-free prefix.
        first = body[:64]
        if first and (found := self._find(first, start_at, attr)) is not None:
            return found - lead
        run = _ENTITY_FREE.split(body, maxsplit=1)[0][:24]
        for needle in list(dict.fromkeys((first, html.escape(body, quote=attr)[:64], run)))[1:]:
            if not needle or (needle is run and len(run) < 2 and len(body) > 1):
                continue
            if (found := self._find(needle, start_at, attr)) is not None:
                return found - lead
        return None

    def _find(self, needle: str, start_at: int, attr: bool) -> int | None:
        pos = self.source.find(needle, start_at)
        if pos < 0 and start_at != self.cursor:
            pos = self.source.find(needle, self.cursor)
        if pos < 0:
            return None
        if not attr:
            self.cursor = pos + len(needle)
        return pos


_ENTITY_FREE = re.compile("[&<>\"'\u00a0\r]")


class _Lines:
    """Line numbers of a text as lxml counts them (see :func:`_compute_line_starts`), worked out
    near where they are asked for.

    The checks ask about a few places (trigger words, the blocks around them, a meta or two): a
    newline count from the nearest place already known, or a few ``find`` steps, costs less than a
    table of every line of the page, which is built only when a question lands far from all of them.
    ``start``/``size`` answer as ``_compute_line_starts(text)[line - 1]`` / ``len(...)`` would.
    """

    __slots__ = ("_last", "_lines", "_offsets", "_size", "_table", "text")
    _WALK = 48  # lines walked with find before the whole table is cheaper

    def __init__(self, text: str) -> None:
        self.text = text
        # Known line starts: line numbers and their offsets, both ascending.
        self._lines = [1]
        self._offsets = [0]
        self._table: list[int] | None = None
        self._size: int | None = None
        self._last = (0, 1)  # the last offset asked about and its line

    def table(self) -> list[int]:
        if self._table is None:
            self._table = _compute_line_starts(self.text)
        return self._table

    def size(self) -> int:
        """How many line starts the table has."""
        if self._table is not None:
            return len(self._table)
        if self._size is None:
            text = self.text
            self._size = 1 + text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        return self._size

    def _learn(self, line: int, offset: int) -> None:
        k = bisect.bisect_left(self._lines, line)
        if k == len(self._lines) or self._lines[k] != line:
            self._lines.insert(k, line)
            self._offsets.insert(k, offset)

    def line_of(self, pos: int) -> int:
        """The 1-based line of offset ``pos``."""
        if self._table is not None or not 0 <= pos < len(self.text):
            return bisect.bisect_right(self.table(), pos)
        k = bisect.bisect_right(self._offsets, pos) - 1
        base, line = self._offsets[k], self._lines[k]
        last_pos, last_line = self._last
        if base <= last_pos <= pos:
            base, line = last_pos, last_line  # counting on from the previous question, on a long line
        n = self.text.count("\n", base, pos)
        if n:
            self._learn(line + n, self.text.rfind("\n", base, pos) + 1)
        self._last = (pos, line + n)
        return line + n

    def start(self, line: int) -> int:
        """Offset of the first character of ``line`` (1-based, at most :meth:`size`)."""
        if self._table is None:
            k = bisect.bisect_right(self._lines, line) - 1
            known, offset = self._lines[k], self._offsets[k]
            if line == known:
                return offset
            text = self.text
            if k + 1 < len(self._lines) and self._lines[k + 1] - line < line - known:
                # Closer from above: step back over newlines.
                known, offset = self._lines[k + 1], self._offsets[k + 1]
                if known - line <= self._WALK:
                    for _ in range(known - line):
                        offset = text.rfind("\n", 0, offset - 1) + 1
                    self._learn(line, offset)
                    return offset
            elif line - known <= self._WALK:
                for _ in range(line - known):
                    nl = text.find("\n", offset)
                    if nl < 0:
                        break  # past the last newline: the table's last entry (or none)
                    offset = nl + 1
                else:
                    self._learn(line, offset)
                    return offset
        return self.table()[line - 1]

    def start_or_none(self, line: int) -> int | None:
        """:meth:`start`, or None for a line the table does not have."""
        if line < 1:
            return None
        try:
            return self.start(line)
        except IndexError:
            return None

    def length(self, line: int) -> int:
        """Characters from the start of ``line`` to the start of the next (the text's end)."""
        end = self.start_or_none(line + 1)
        return (len(self.text) if end is None else end) - self.start(line)


_STARTS_CACHE: OrderedDict[int, tuple[str, _Lines]] = OrderedDict()


def line_index(text: str) -> _Lines:
    """The line index of ``text`` (kept for the few documents being read)."""
    hit = _STARTS_CACHE.get(id(text))
    if hit is not None and hit[0] is text:
        return hit[1]
    lines = _Lines(text)
    _STARTS_CACHE[id(text)] = (text, lines)
    while len(_STARTS_CACHE) > _CACHE_SIZE:
        _STARTS_CACHE.popitem(last=False)
    return lines


def _compute_line_starts(text: str) -> list[int]:
    # libxml2 (fed a str) counts only "\n" in ``sourceline``: a lone CR, U+2028, form feed or U+0085
    # starts no line for it, so they must not here either (str.splitlines breaks at all of them and
    # shifted every later line). A one-character literal pattern is a C-level memchr-style scan.
    starts = [0]
    starts.extend(m.end() for m in _NEWLINE.finditer(text))
    if starts[-1] != len(text):
        starts.append(len(text))
    return starts


_NEWLINE = re.compile("\n")


def _link_target(el: etree._Element) -> str:
    href = (el.get("href") or "").strip()
    if href and not href.lower().startswith("javascript:") and href != "#":
        return html.unescape(href)
    # Links opened by script: <a href="javascript:;" onclick="window.open('https://beian.miit.gov.cn/')">
    for attr in ("onclick", "href"):
        m = _ONCLICK_URL.search(el.get(attr) or "")
        if m:
            return html.unescape(m.group(0))
    return ""


def _walk(b: _Builder, root: etree._Element) -> None:
    # The hot loop of every context: builder methods bound once, and an element's source line asked
    # for only when it has text to emit.
    open_anchors: list[tuple[int, str]] = []
    walker = etree.iterwalk(root, events=("start", "end", "comment", "pi"))
    skipped: set[etree._Element] = set()
    emit, sep = b.emit, b.sep
    hidden_style = _HIDDEN_STYLE.search
    for event, el in walker:
        if event == "comment" or event == "pi":
            # A comment is not text, but what follows it is.
            if el is not root and (tail := el.tail):
                emit(tail, el.sourceline)
            continue
        tag = el.tag
        is_elem = isinstance(tag, str)
        if event == "start":
            if (
                not is_elem
                or tag in _SKIP
                or el.get("hidden") is not None
                or ((style := el.get("style")) and hidden_style(style))
            ):
                skipped.add(el)
                walker.skip_subtree()
                continue
            tag = tag.lower()
            if tag not in _INLINE:
                sep()
            if tag == "a":
                if title := el.get("title"):
                    sep()
                    emit(title, el.sourceline, attr=True)
                    sep()
                open_anchors.append((b.length, _link_target(el)))
            elif tag in ("img", "input", "area"):
                sep()
                alt = el.get("alt")
                if alt:
                    emit(alt, el.sourceline, attr=True)
                sep()
                if (title := el.get("title")) and title != alt:
                    emit(title, el.sourceline, attr=True)
                    sep()
            elif tag == "br":
                sep()
            if text := el.text:
                emit(text, el.sourceline)
        else:
            if el in skipped:
                skipped.discard(el)
            elif is_elem:
                tag = tag.lower()
                if tag == "a" and open_anchors:
                    start, href = open_anchors.pop()
                    b.anchors.append((start, b.length, href))
                if tag not in _INLINE:
                    sep()
            if el is not root and (tail := el.tail):
                emit(tail, el.sourceline)


_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);?")


def _align(source: str, base: int, text: str) -> list[int]:
    """Source offset of each character of ``text`` (parsed, entities decoded) starting at ``base``."""
    out: list[int] = []
    p = base
    n = len(source)
    for ch in text:
        while p < n and source[p] == "\r" and ch != "\r":
            p += 1
        if p >= n:
            out.append(-1)
            continue
        m = _ENTITY.match(source, p) if source[p] == "&" else None
        if m and m.end() - p > 1 and html.unescape(m.group(0)).startswith(ch):
            out.append(p)
            p = m.end()
            continue
        if source[p] == ch:
            out.append(p)
            p += 1
            continue
        out.append(-1)
    return out


# Characters the per-character path must see: whitespace, invisible marks, and those normalise_char
# rewrites beyond NFKC.
_SPACE_RUN = re.compile(r" +")
_MULTI_SPACE = re.compile(r"  +")
_CHAR_CACHE: dict[str, str] = {}
# What _normalise knows of every character seen so far: those that normalise to one character (the
# table maps those that change), and those that expand or vanish. ASCII other than whitespace is left
# as it is.
_ASCII_KEPT = frozenset(chr(i) for i in range(128) if not chr(i).isspace())
_SIMPLE: set[str] = set(_ASCII_KEPT)
_SPECIAL: set[str] = set()
_TABLE: dict[int, str] = {}


def _classify(chars: Iterable[str]) -> None:
    if len(_SIMPLE) + len(_SPECIAL) > 50_000:
        _SIMPLE.clear()
        _SIMPLE.update(_ASCII_KEPT)
        _SPECIAL.clear()
        _TABLE.clear()
    for ch in chars:
        n = _norm_char(ch)
        (_SIMPLE if len(n) == 1 else _SPECIAL).add(ch)
        if n != ch:
            _TABLE[ord(ch)] = n


def _norm_char(ch: str) -> str:
    """:func:`normalise_char`, memoised (pages use a few thousand distinct characters)."""
    out = _CHAR_CACHE.get(ch)
    if out is None:
        if len(_CHAR_CACHE) > 50_000:
            _CHAR_CACHE.clear()
        out = _CHAR_CACHE[ch] = normalise_char(ch)
    return out


def _normalise(b: _Builder, name: str, source: str, cursor0: int) -> VisibleText:
    """Normalise the joined raw text (NFKC, spaces folded), keeping what maps it back.

    Text already in NFKC without special marks (nearly all) only has its whitespace folded, in C;
    anything else goes character by character through :func:`normalise_char`.
    """
    raw = "".join(b.parts)
    # Full-width forms, ideographic spaces and the like map to one character each (positions are
    # kept, str.translate does the work, with one table for every page); the rare character that
    # expands or vanishes (an ellipsis, a zero-width space) sends the text down the slow path. Only
    # characters never seen before are looked at one by one.
    chars = set(raw)
    if not chars <= _SIMPLE:
        _classify(chars - _SIMPLE)
    table = _TABLE
    one_to_one = _SPECIAL.isdisjoint(chars)
    if one_to_one:
        flat = raw.translate(table)
        # Space runs fold to one space (a leading run to none). A single space between words maps one
        # to one, like the characters around it, so only longer runs and a leading space are folds.
        folds: list[_Fold] = []
        removed = 0
        if flat.startswith(" ") and not flat.startswith("  "):
            folds.append(_Fold(0, 0, 1, False))
            removed = 1
        for m in _MULTI_SPACE.finditer(flat):
            start, end = m.start(), m.end()
            emitted = start > 0
            folds.append(_Fold(start - removed, start, end, emitted))
            removed += end - start - (1 if emitted else 0)
        text = _SPACE_RUN.sub(" ", flat)
        if text.startswith(" "):
            text = text[1:]
        vt = VisibleText(name, source, text, (), raw, b.segments, folds, None, cursor0)
        raw_to_norm = _fold_raw_to_norm(folds)
    else:
        out: list[str] = []
        n2r: list[int] = []
        r2n: list[int] = []
        last_space = True
        for r, ch in enumerate(raw):
            r2n.append(len(out))
            c = table.get(ord(ch), ch)
            if not c:
                continue
            if c == " ":
                if last_space:
                    continue
                last_space = True
            else:
                last_space = False
            out.extend(c)
            n2r.extend([r] * len(c))
        r2n.append(len(out))
        vt = VisibleText(name, source, "".join(out), (), raw, b.segments, [], n2r, cursor0)

        def raw_to_norm(r: int) -> int:
            return r2n[min(r, len(r2n) - 1)]

    vt.anchors = tuple(Anchor(raw_to_norm(s), raw_to_norm(e), h) for s, e, h in sorted(b.anchors))
    return vt


def _fold_raw_to_norm(folds: list[_Fold]) -> Callable[[int], int]:
    raw_starts = [f.raw_start for f in folds]

    def raw_to_norm(r: int) -> int:
        k = bisect.bisect_right(raw_starts, r) - 1
        if k < 0:
            return r
        f = folds[k]
        if r < f.raw_end:
            return f.norm
        return f.norm + (1 if f.emitted else 0) + (r - f.raw_end)

    return raw_to_norm


def visible_text(doc: Document, root: etree._Element | None = None, name: str = "home") -> VisibleText:
    """Visible text of ``root`` (default: the whole document)."""
    b = _Builder()
    node = doc.tree if root is None else root
    _walk(b, node)
    vt = _normalise(b, name, doc.text, 0)
    if root is not None and root.sourceline:
        vt.line0 = root.sourceline  # the evidence finder starts at this line (worked out on demand)
    return vt


# --- contexts around trigger words -----------------------------------------------------------------


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
    text: str, triggers: Iterable[str]
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
    index = line_index(text)
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


# What is derived from one document or page lives in its ``memo`` (freed with it, at once: a finished
# page in a module cache was freed pages later, from a cold CPU cache, at a cost comparable to the
# checks). Only line tables, which hold no tree, are kept here.
_CACHE_SIZE = 6


def clear_caches() -> None:
    """Drop this module's own caches (line tables; bounded). What is derived from a page lives in
    ``Page.memo``/``Document.memo`` and goes with it."""
    _STARTS_CACHE.clear()


def _build_contexts(doc: Document, name: str, triggers: Sequence[str]) -> DocText:
    shown, hidden, cut = _trigger_lines(doc.text, triggers)
    if not shown and not hidden:
        return DocText(name, ())
    root = doc.tree
    chosen: list[etree._Element] = []
    texts: dict[etree._Element, VisibleText] = {}
    _add_contexts(doc, name, triggers, root, shown, chosen, texts)
    if not chosen and hidden:
        # The cheap source test may be wrong (odd comment syntax): ask the tree where the words are.
        _add_tree_contexts(doc, name, triggers, root, hidden, chosen, texts)
    ordered = sorted(chosen, key=lambda e: e.sourceline or 0)
    return DocText(name, tuple(texts[e] for e in ordered), cut)


def _add_tree_contexts(
    doc: Document,
    name: str,
    triggers: Sequence[str],
    root: etree._Element,
    lines: dict[int, set[str]],
    chosen: list[etree._Element],
    texts: dict[etree._Element, VisibleText],
) -> None:
    """Second opinion for words the source test put in comments or scripts: follow the tree's text
    (C-level ``text_content``, which has no comments) down to the element that holds them, and read
    it. A word inside a script leads to the script's block, whose visible text does not show it."""
    body = _body(root)
    for words in {frozenset(w) for w in lines.values()}:
        el = _block_of(_descend(root, words))
        if el is body or el is root or any(c in _ancestors_or_self(el) for c in chosen):
            continue
        vt = visible_text(doc, el, name)
        if _contains_any(vt.text, triggers):
            chosen.append(el)
            texts[el] = vt


def _add_contexts(
    doc: Document,
    name: str,
    triggers: Sequence[str],
    root: etree._Element,
    lines: dict[int, set[str]],
    chosen: list[etree._Element],
    texts: dict[etree._Element, VisibleText],
) -> None:
    """Add the context of each line: the smallest block around it whose visible text shows every
    trigger word of that line (words that sit in comments or scripts widen it up to the root)."""
    index = line_index(doc.text)
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
                vt = visible_text(doc, el, name)
                if parent is None or _contains_all(vt.text, words):
                    break
            assert parent is not None
            el = parent
        if not _contains_any(vt.text, triggers):
            continue
        # A wider context replaces the narrower ones it contains.
        for c in list(chosen):
            if c is not el and el in _ancestors_or_self(c):
                chosen.remove(c)
                texts.pop(c, None)
        if el not in texts:
            chosen.append(el)
            texts[el] = vt


# --- searching a page: static documents, then footers written by JavaScript ------------------------

_JS_TYPES = frozenset({"", "text/javascript", "application/javascript", "module", "text/ecmascript",
                       "application/x-javascript", "text/jscript", "javascript"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Found:
    """One pattern match in visible text: where it was read and how."""

    match: re.Match[str]
    ctx: VisibleText
    via: str  # "static" (home, rendered DOM, frame) or "script" (markup a script writes)

    @property
    def start(self) -> int:
        return self.match.start()

    @property
    def end(self) -> int:
        return self.match.end()

    def evidence(self) -> Evidence:
        ev = self.ctx.evidence(self.start, self.end)
        if self.via == "script":
            # Offsets would point into the evaluated markup, not into the script: leave them out.
            return Evidence(ev.source, ev.excerpt, None, None)
        return ev


@dataclass(frozen=True, slots=True)
class Search:
    """Every match of a pattern on a page, and what could not be read."""

    found: tuple[Found, ...]
    #: Same-site scripts referenced by the page that were not captured (they may write the footer);
    #: listed only when nothing was found.
    unread_scripts: tuple[str, ...]
    #: Scripts whose written markup could not be evaluated statically, and scripts of other hosts
    #: that are not known to leave the page alone (only a browser can tell what they write).
    dynamic_scripts: tuple[str, ...]
    rendered: bool
    #: Some document had more trigger lines than are read (see ``DocText.cut``).
    cut: bool = False
    #: The home page was cut at the crawler's size limit (its footer may be missing).
    truncated: bool = False
    #: Fragments the page loads into itself (``$.load``, XHR, ``fetch``) that were not read.
    unread_includes: tuple[str, ...] = ()


_HOST = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)")


def _host(url: str) -> str:
    # A regex instead of urlsplit().hostname: this runs for every script of every page.
    m = _HOST.match(url.strip())
    return m.group(1).rstrip(".").lower() if m else ""


def _resolve(base: str, origin: str, ref: str) -> str:
    """``urljoin(base, ref)`` with fast paths for the forms script ``src`` takes."""
    if ref.startswith(("http://", "https://")):
        return ref
    if ref.startswith("//"):
        return base.split(":", 1)[0] + ":" + ref
    if ref.startswith("/") and origin:
        return origin + ref
    return urljoin(base, ref)


def same_site(url: str, page_url: str) -> bool:
    """Whether ``url`` is served by the page's own site (same host, or a sub-host of it without www)."""
    host, own = _host(url), _host(page_url)
    if not host or not own:
        return False
    base = own[4:] if own.startswith("www.") else own
    return host in (own, base) or host.endswith("." + base)


def _live_scripts(doc: Document) -> list[tuple[str, str]]:
    """``(src, inline_text)`` of every executable ``<script>`` in live markup (src absolute, or "")."""
    out: list[tuple[str, str]] | None = doc.memo.get("live_scripts")
    if out is None:
        out = doc.memo["live_scripts"] = _read_scripts(doc)
    return out


def _read_scripts(doc: Document) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    base = doc.base_url
    m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*", base)
    origin = m.group(0) if m else ""
    for el in doc.scripts_and_metas():
        if el.tag != "script":
            continue
        if (el.get("type") or "").strip().lower() not in _JS_TYPES:
            continue
        src = (el.get("src") or "").strip()
        if src:
            out.append((_resolve(base, origin, html.unescape(src) if "&" in src else src), ""))
        else:
            out.append(("", el.text or ""))
    return out


def unread_scripts(page: Page) -> tuple[str, ...]:
    """Same-site external scripts the page runs that were not captured (fetched or not), in page order."""
    seen: dict[str, None] = {}
    own = _host(page.url)
    base = own[4:] if own.startswith("www.") else own
    for src, _ in _live_scripts(page.home):
        if src and src not in page.scripts and own:
            host = _host(src)
            if host in (own, base) or host.endswith("." + base):
                seen.setdefault(src)
    return tuple(seen)


def script_needs(page: Page) -> tuple[str, ...]:
    """Same-site scripts worth fetching for the number checks: none when every identifier shows in
    the static page (or a rendered DOM exists), else the unread scripts not yet settled."""
    if page.exhausted or page.rendered is not None:
        return ()
    unread = [u for u in unread_scripts(page) if not page.settled(Need(NeedKind.SCRIPT, u))]
    if not unread or _shows_all_numbers(page.home):
        return ()
    return tuple(unread)


# Scripts of other hosts that never write a footer: analytics, CONAC's own badge and beacons, the
# 找错 widget, share buttons, and the libraries templates load from CDNs.
_INERT_HOSTS = re.compile(
    r"(?:^|\.)(?:conac\.cn|cnzz\.com|51\.la|baidu\.com|bdstatic\.com|bdimg\.com|google-analytics\.com|"
    r"googletagmanager\.com|kaipuyun\.cn|www\.gov\.cn|360\.cn|12377\.cn|growingio\.com|qq\.com)$",
    re.I,
)
_LIBRARY = re.compile(
    r"(?:^|/)(?:jquery|bootstrap|swiper|layer|laydate|echarts|html5shiv|respond|modernizr|polyfill|zepto|"
    r"lodash|moment|axios|popper|require|sea)(?:[-.][\w.-]*)?\.js$",
    re.I,
)


def foreign_scripts(page: Page) -> tuple[str, ...]:
    """External scripts of other hosts the page runs that may write into it (not analytics, CONAC or a
    known library): a platform's shared footer script, a bundle on a CDN. Not fetched: a rendering
    settles them."""
    hit: tuple[str, ...] | None = page.memo.get("foreign_scripts")
    if hit is not None:
        return hit
    own = _host(page.url)
    base = own[4:] if own.startswith("www.") else own
    found: dict[str, None] = {}
    for src, _ in _live_scripts(page.home):
        if not src:
            continue
        host = _host(src)
        if not host or host in (own, base) or host.endswith("." + base) or _INERT_HOSTS.search(host):
            continue
        if _LIBRARY.search(src.split("?", 1)[0]):
            continue
        found.setdefault(src)
    page.memo["foreign_scripts"] = result = tuple(found)
    return result


def opaque_scripts(page: Page) -> tuple[str, ...]:
    """Scripts whose effect on the page only a browser can tell: inline or captured scripts that
    write markup static evaluation cannot reproduce (not the date widget), and :func:`foreign_scripts`.
    A check that finds nothing must not call its item missing while any of them runs."""
    return (*_script_docs(page)[1], *foreign_scripts(page))


def include_needs(page: Page) -> list[Need]:
    """The fragments the page loads into itself, still to be fetched (as frames: they are documents)."""
    if page.exhausted or page.rendered is not None:
        return []
    return [n for url in find_includes(page.home) if not page.settled(n := Need(NeedKind.FRAME, url))]


def _shows_all_numbers(doc: Document) -> bool:
    """Whether the static text shows an ICP number, a 公安 number and a 标识码 (kept in ``doc.memo``)."""
    hit: bool | None = doc.memo.get("shows_all_numbers")
    if hit is not None:
        return hit
    from checks.numbers import ICP_PATTERN, POLICE_PATTERN, SITE_CODE_LABEL_PATTERN

    contexts = [c.text for c in trigger_contexts(doc).contexts]
    patterns = (ICP_PATTERN, POLICE_PATTERN, SITE_CODE_LABEL_PATTERN)
    shown = all(any(p.search(t) for t in contexts) for p in patterns)
    doc.memo["shows_all_numbers"] = shown
    return shown


# Dynamic writes that cannot carry a footer: the date/clock widget of every government header, and
# the loaders of analytics counters (CNZZ's document.write of its own script with the page's protocol).
_HARMLESS_WRITE = re.compile(
    r"\bDate\b|getFullYear|getMonth|getDay|getHours|toLocale\w*String|星期|week|"
    r"cnzz\.com|cnzz_|hm\.baidu\.com|51\.la|google-analytics\.com|googletagmanager\.com",
    re.I,
)


def _only_harmless(count: int, excerpts: Sequence[str]) -> bool:
    """Whether every dynamic write of a script is a clock or a counter's loader (all were quoted)."""
    return count == len(excerpts) and all(_HARMLESS_WRITE.search(e) for e in excerpts)


def script_documents(page: Page) -> list[tuple[str, Document]]:
    """``(source name, document)`` of the markup each live script of the page writes."""
    return _script_docs(page)[0]


_ScriptDocs = tuple[list[tuple[str, Document]], list[str]]


def _script_docs(page: Page) -> _ScriptDocs:
    """Markup written by the page's scripts (inline and captured external) as documents to read;
    evaluated once per page and set of captured scripts (the three checks share it)."""
    captured = frozenset(page.scripts)
    hit: tuple[frozenset[str], _ScriptDocs] | None = page.memo.get("script_docs")
    if hit is not None and hit[0] == captured:
        return hit[1]
    result = _evaluate_scripts(page)
    page.memo["script_docs"] = (captured, result)
    return result


def _evaluate_scripts(page: Page) -> _ScriptDocs:
    docs: list[tuple[str, Document]] = []
    dynamic: list[str] = []
    for n, (src, inline) in enumerate(_live_scripts(page.home)):
        code = page.scripts.get(src, "") if src else inline
        if not code:
            continue
        name = f"script:{src}" if src else "home"
        label = src or f"inline script #{n + 1}"
        out = inserted_markup(code)
        # A library's sinks are generic (jQuery's own .html()): only what the page's code does counts.
        library = bool(src) and bool(_LIBRARY.search(src.split("?", 1)[0]))
        if out.dynamic and not library and not _only_harmless(out.dynamic, out.dynamic_excerpts):
            dynamic.append(label)
        if out.markup:
            docs.append((name, Document(url=src or page.url, text=out.markup)))
    return docs, dynamic


def search_page(
    page: Page, pattern: re.Pattern[str], triggers: Sequence[str] = TRIGGERS, read_scripts: bool = True
) -> Search:
    """Matches of ``pattern`` in the visible text of the page (home, rendered DOM, frames); when none
    (and ``read_scripts``), in the markup its scripts write. Cached per page and capture state: a check
    and its needs function share one search (``pattern`` and ``triggers`` are module constants)."""
    key = ("search", pattern, triggers if isinstance(triggers, tuple) else tuple(triggers), read_scripts)
    state = (id(page.rendered), len(page.frames), len(page.scripts), page.incomplete, len(page.failed))
    hit: tuple[tuple[object, ...], Search] | None = page.memo.get(key)
    if hit is not None and hit[0] == state:
        return hit[1]
    result = _search(page, pattern, triggers, read_scripts)
    page.memo[key] = (state, result)
    return result


def _search(page: Page, pattern: re.Pattern[str], triggers: Sequence[str], read_scripts: bool) -> Search:
    docs: list[tuple[str, Document]] = [("home", page.home)]
    if page.rendered is not None:
        docs.append(("rendered", page.rendered))
    docs.extend((f"frame:{url}", d) for url, d in page.frames.items())
    found: list[Found] = []
    cut = False
    for name, doc in docs:
        dt = trigger_contexts(doc, name, triggers)
        cut = cut or dt.cut
        for ctx in dt.contexts:
            found.extend(Found(m, ctx, "static") for m in pattern.finditer(ctx.text))
    dynamic: list[str] = []
    if not found and read_scripts:
        script_docs, evaluated = _script_docs(page)
        dynamic = list(evaluated)  # the evaluation is shared: extend a copy
        for name, doc in script_docs:
            for ctx in trigger_contexts(doc, name, triggers).contexts:
                found.extend(Found(m, ctx, "script") for m in pattern.finditer(ctx.text))
    # Unread scripts and fragments matter only to a search that found nothing.
    unread = () if found else unread_scripts(page)
    includes: tuple[str, ...] = ()
    if not found:
        dynamic.extend(foreign_scripts(page))
        includes = tuple(u for u in find_includes(page.home) if u not in page.frames)
    return Search(
        tuple(found), unread, tuple(dynamic), page.rendered is not None, cut, page.incomplete, includes
    )


def needs_of(page: Page, search: Search) -> list[Need]:
    """What would settle a search that found nothing: unread same-site scripts not yet tried, or a
    rendering when a script writes markup static reading cannot evaluate. Empty once found."""
    if search.found or search.rendered or page.exhausted:
        return []
    out = [Need(NeedKind.SCRIPT, u) for u in search.unread_scripts]
    out += [Need(NeedKind.FRAME, u) for u in search.unread_includes]
    if search.dynamic_scripts:
        out.append(Need(NeedKind.RENDER, page.url))
    return [n for n in out if not page.settled(n)]


def missing_verdict(check: str, page: Page, search: Search, data: dict[str, Any]) -> Verdict:
    """The verdict when ``check``'s identifier was found nowhere that was read.

    ``{check}.missing`` (fail) only when nothing unread could hold it: a rendered DOM settles it;
    otherwise same-site scripts that were not read (not fetched yet, failed, or past the crawler's
    budget), scripts whose markup only a browser can produce, or a page cut at the size limit make it
    ``{check}.unconfirmed`` (unknown); ``data["needs"]`` lists what is still worth fetching.
    """
    issues = [f"{check}.unconfirmed"]
    if search.truncated or search.cut:
        why = "首页内容未能完整读取（超过巡检上限或标签嵌套过深），页脚可能未读到" if search.truncated else (
            "页面中相关字样过多，只读取了开头和结尾部分，未找到")  # fmt: skip
        return Verdict(check, Status.UNKNOWN, f"{check}.unconfirmed", why, (), dict(data, issues=issues))
    if not search.rendered and (search.unread_scripts or search.dynamic_scripts or search.unread_includes):
        parts = []
        if search.unread_includes:
            parts.append("页面加载的片段未读取：" + "、".join(search.unread_includes[:5]))
        if search.unread_scripts:
            failed = [u for u in search.unread_scripts if Need(NeedKind.SCRIPT, u).key in page.failed]
            parts.append("未读取的脚本：" + "、".join(search.unread_scripts[:5]))
            if failed:
                parts.append("其中获取失败：" + "、".join(failed[:5]))
        if search.dynamic_scripts:
            parts.append("需浏览器执行的脚本：" + "、".join(search.dynamic_scripts[:5]))
        needs = [{"kind": str(n.kind), "url": n.url} for n in needs_of(page, search)]
        return Verdict(
            check, Status.UNKNOWN, f"{check}.unconfirmed", "；".join(parts), (),
            dict(data, needs=needs, issues=issues),
        )  # fmt: skip
    return Verdict(check, Status.FAIL, f"{check}.missing", "", (), dict(data, issues=[f"{check}.missing"]))


def element_evidence(doc: Document, el: etree._Element, needle: str, name: str) -> Evidence:
    """Evidence quoting the tag of ``el`` that holds ``needle`` (an attribute value), with offsets."""
    src = doc.text
    line = el.sourceline or 0
    base = line_index(src).start_or_none(line) or 0
    i = src.find(needle, base) if needle else -1
    if i < 0 and needle:
        i = src.find(needle)
    if i < 0:
        markup = etree.tostring(el, encoding="unicode", with_tail=False)[:400]
        return Evidence(name, markup)
    lt = src.rfind("<", 0, i)
    gt = src.find(">", i)
    s = lt if lt >= 0 and i - lt < 2000 else i
    e = gt + 1 if gt >= 0 and gt - i < 2000 else i + len(needle)
    return Evidence(name, src[s:e], s, e)
