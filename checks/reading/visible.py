"""Visible text of a document, with a map back to the source.

What a visitor reads: comments, scripts, styles, templates, ``<noscript>`` and hidden elements are
dropped; inline tags are joined without a gap (so ``京<span>ICP</span>备`` reads ``京ICP备``); block
boundaries and ``<br>`` read as a space; ``alt``/``title`` of images and links are read as text. The text
is normalised (:func:`checks.numbers.normalise_char`: full-width forms, spaces folded) and maps back to
the decoded source on demand, so a verdict can quote the exact markup it rests on. Source offsets are
computed only for the evidence a verdict quotes.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lxml import etree

from checks.numbers import normalise_char
from checks.page import Document
from checks.reading.lines import LineIndex, lines_of
from checks.verdict import Evidence

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
    lines: LineIndex | None = None  # the source's line index (the document's, shared)
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
                index = self.lines if self.lines is not None else LineIndex(self.source)
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
    lines: LineIndex
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
    vt.lines = lines_of(doc)
    if root is not None and root.sourceline:
        vt.line0 = root.sourceline  # the evidence finder starts at this line (worked out on demand)
    return vt
