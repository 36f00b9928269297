"""Line numbers of a decoded document as libxml2 counts them, worked out near where they are asked for.

Kept per document (:func:`lines_of`, in ``Document.memo``, freed with the page): the trigger scan, the
contexts, the evidence finder and the badge's link finder ask about a few places of the same text.
"""

from __future__ import annotations

import bisect
import re

from checks.page import Document


class LineIndex:
    """Line numbers of a text as lxml counts them (see :func:`compute_line_starts`), worked out
    near where they are asked for.

    The checks ask about a few places (trigger words, the blocks around them, a meta or two): a
    newline count from the nearest place already known, or a few ``find`` steps, costs less than a
    table of every line of the page, which is built only when a question lands far from all of them.
    ``start``/``size`` answer as ``compute_line_starts(text)[line - 1]`` / ``len(...)`` would.
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
            self._table = compute_line_starts(self.text)
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


def lines_of(doc: Document) -> LineIndex:
    """The line index of ``doc.text`` (kept in ``doc.memo``)."""
    hit: LineIndex | None = doc.memo.get("lines")
    if hit is None:
        hit = doc.memo["lines"] = LineIndex(doc.text)
    return hit


def compute_line_starts(text: str) -> list[int]:
    # libxml2 (fed a str) counts only "\n" in ``sourceline``: a lone CR, U+2028, form feed or U+0085
    # starts no line for it, so they must not here either (str.splitlines breaks at all of them and
    # shifted every later line). A one-character literal pattern is a C-level memchr-style scan.
    starts = [0]
    starts.extend(m.end() for m in _NEWLINE.finditer(text))
    if starts[-1] != len(text):
        starts.append(len(text))
    return starts


_NEWLINE = re.compile("\n")
