"""Static evaluation of the JavaScript that writes footers: what markup a script would insert.

Government CMSs build footers (and so the badge) with ``document.write(ln)``, ``unescape("%3C…")``,
``.innerHTML =``, jQuery ``.append/.html/.after/.prepend/.before``, ``insertAdjacentHTML`` and ``+``
concatenation of string literals, often through a variable (``var s = ''; s += '…'; document.write(s)``).
This module evaluates exactly that subset without running anything: string literals (all escapes),
template literals without substitutions, ``unescape``/``decodeURI(Component)``, ``String.fromCharCode``
of numbers, ``[…].join(…)`` of literals, and string variables assigned in the same script. Any other
expression makes the sink *dynamic*: the caller then knows that only a browser could tell.

Cost is linear in the script (one compiled tokenising regex); scripts without a sink are skipped
before tokenising.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*|<!--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<str>"(?:[^"\\\n]|\\.|\\\n)*"|'(?:[^'\\\n]|\\.|\\\n)*')
  | (?P<tpl>`(?:[^`\\]|\\.)*`)
  | (?P<id>[A-Za-z_$][\w$]*)
  | (?P<num>0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?)
  | (?P<op>\+=|===|!==|==|!=|=>|&&|\|\||[-+*/%=(){}\[\];,.:?!<>&|^~])
  | (?P<other>.)
    """,
    re.S | re.X,
)
# ``-->`` at the start of a line is a comment in browsers too (Annex B of ECMAScript).
_HTML_CLOSE_COMMENT = re.compile(r"^[ \t]*-->[^\n]*", re.M)
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]{1,6}\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[0-7]{1,3}|\n|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "\n": ""}
# A script is tokenised only when one of these occurs (lower-cased): everything else cannot insert markup.
_SINK_HINT = re.compile(r"write|innerhtml|outerhtml|append|prepend|\.html|\.after|\.before|adjacenthtml|\$\(")
_DECODERS = frozenset({"unescape", "decodeURIComponent", "decodeURI"})
_JQUERY_SINKS = frozenset(
    {"append", "html", "after", "prepend", "before", "replaceWith", "wrap", "wrapInner", "wrapAll"}
)
_MAX_TOKENS = 200_000
_MAX_VALUE = 2_000_000  # characters; a runaway concatenation stops being evaluated


class _Dynamic(Exception):
    """An expression that static evaluation cannot reduce to a string."""


@dataclass(frozen=True, slots=True)
class ScriptOutput:
    """What a script inserts into the page, as far as static reading can tell.

    ``markup`` is the concatenation (in program order) of every statically known inserted string.
    ``dynamic`` counts sinks whose argument could not be evaluated; ``dynamic_excerpts`` keeps a short
    piece of source around each so a verdict can show it.
    """

    markup: str = ""
    sinks: int = 0
    dynamic: int = 0
    dynamic_excerpts: tuple[str, ...] = ()


def _decode_escape(m: re.Match[str]) -> str:
    esc = m.group(1)
    if esc in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[esc]
    if esc.startswith("u{"):
        cp = int(esc[2:-1], 16)
        return chr(cp) if cp <= 0x10FFFF else ""
    if esc[0] == "u" and len(esc) == 5:
        return chr(int(esc[1:], 16))
    if esc[0] == "x" and len(esc) == 3:
        return chr(int(esc[1:], 16))
    if esc[0] in "01234567":
        return chr(int(esc, 8))
    return esc


def string_value(literal: str) -> str:
    """The value of a JavaScript string literal, quotes included in ``literal``."""
    body = literal[1:-1]
    return _ESCAPE.sub(_decode_escape, body) if "\\" in body else body


def unescape(text: str) -> str:
    """JavaScript ``unescape``: ``%XX`` as Latin-1 code points and ``%uXXXX`` as UTF-16 units."""

    def repl(m: re.Match[str]) -> str:
        g = m.group(0)
        return chr(int(g[2:], 16)) if g[1] in "uU" else chr(int(g[1:], 16))

    return re.sub(r"%[uU][0-9a-fA-F]{4}|%[0-9a-fA-F]{2}", repl, text)


def _tokens(source: str) -> list[tuple[str, str, int]]:
    source = _HTML_CLOSE_COMMENT.sub("", source)
    out: list[tuple[str, str, int]] = []
    for m in _TOKEN.finditer(source):
        kind = m.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        out.append((kind, m.group(), m.start()))
        if len(out) > _MAX_TOKENS:
            break
    return out


class _Evaluator:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _tokens(source)
        self.vars: dict[str, str | None] = {}
        self.sinks = 0
        self.dynamic = 0
        self.excerpts: list[str] = []
        self.parts: list[str] = []
        self.size = 0

    # --- helpers ----------------------------------------------------------------------------
    def kind(self, i: int) -> str:
        return self.toks[i][0] if i < len(self.toks) else ""

    def text(self, i: int) -> str:
        return self.toks[i][1] if i < len(self.toks) else ""

    def skip_group(self, i: int) -> int:
        """Index after the expression starting at ``i`` (stops at a top-level ``,`` ``)`` ``;`` ``}``)."""
        depth = 0
        n = len(self.toks)
        while i < n:
            t = self.toks[i][1]
            if self.toks[i][0] == "op":
                if t in "([{":
                    depth += 1
                elif t in ")]}":
                    if depth == 0:
                        return i
                    depth -= 1
                elif t in ",;" and depth == 0:
                    return i
            i += 1
        return i

    def closing(self, i: int) -> int:
        """Index of the bracket closing the one at ``i``."""
        depth = 0
        n = len(self.toks)
        while i < n:
            if self.toks[i][0] == "op":
                t = self.toks[i][1]
                if t in "([{":
                    depth += 1
                elif t in ")]}":
                    depth -= 1
                    if depth == 0:
                        return i
            i += 1
        return n

    # --- expressions --------------------------------------------------------------------------
    def expr(self, i: int) -> tuple[str, int]:
        """Evaluate ``term ('+' term)*`` from ``i``; raises _Dynamic (the caller skips the group)."""
        value, i = self.term(i)
        while self.text(i) == "+" and self.kind(i) == "op":
            nxt, i = self.term(i + 1)
            value += nxt
            if len(value) > _MAX_VALUE:
                raise _Dynamic
        if self.text(i) not in (",", ")", ";", "}", "]", "") and self.kind(i) != "id":
            raise _Dynamic  # e.g. a ternary or a comparison: not a plain string
        return value, i

    def term(self, i: int) -> tuple[str, int]:
        k, t = self.kind(i), self.text(i)
        if k == "str":
            value, i = string_value(t), i + 1
        elif k == "tpl":
            if "${" in t:
                raise _Dynamic
            value, i = string_value(t), i + 1
        elif k == "num":
            value, i = t, i + 1
        elif k == "op" and t == "(":
            value, j = self.expr(i + 1)
            if self.text(j) != ")":
                raise _Dynamic
            i = j + 1
        elif k == "op" and t == "[":
            value, i = self.array_join(i)
        elif k == "id" and t in _DECODERS and self.text(i + 1) == "(":
            arg, j = self.expr(i + 2)
            if self.text(j) != ")":
                raise _Dynamic
            value = unescape(arg) if t == "unescape" else unquote(arg)
            i = j + 1
        elif k == "id" and t == "String" and self.text(i + 2) == "fromCharCode":
            value, i = self.from_char_code(i + 3)
        elif k == "id" and t in self.vars and self.text(i + 1) not in (".", "(", "["):
            known = self.vars[t]
            if known is None:
                raise _Dynamic
            value, i = known, i + 1
        else:
            raise _Dynamic
        # ``'…'.toString()`` and friends would be dynamic; a trailing member access is not a string.
        if self.text(i) in (".", "[") and not (self.text(i + 1) == "join"):
            raise _Dynamic
        return value, i

    def array_join(self, i: int) -> tuple[str, int]:
        items: list[str] = []
        i += 1
        while self.text(i) != "]":
            value, i = self.expr(i)
            items.append(value)
            if self.text(i) == ",":
                i += 1
            elif self.text(i) != "]":
                raise _Dynamic
        i += 1
        if self.text(i) == "." and self.text(i + 1) == "join" and self.text(i + 2) == "(":
            if self.text(i + 3) == ")":
                return ",".join(items), i + 4
            sep, j = self.expr(i + 3)
            if self.text(j) != ")":
                raise _Dynamic
            return sep.join(items), j + 1
        raise _Dynamic

    def from_char_code(self, i: int) -> tuple[str, int]:
        if self.text(i) != "(":
            raise _Dynamic
        chars: list[str] = []
        i += 1
        while self.kind(i) == "num":
            num = self.text(i)
            cp = int(num, 16) if num[:2] in ("0x", "0X") else int(float(num))
            chars.append(chr(cp & 0xFFFF))
            i += 1
            if self.text(i) == ",":
                i += 1
        if self.text(i) != ")":
            raise _Dynamic
        return "".join(chars), i + 1

    # --- statements ---------------------------------------------------------------------------
    def emit(self, start: int, i: int) -> int:
        """Evaluate a sink argument at ``i``; record it; return the index after the argument."""
        self.sinks += 1
        try:
            value, j = self.expr(i)
        except (_Dynamic, ValueError, OverflowError):
            j = self.skip_group(i)
            self.dynamic += 1
            if len(self.excerpts) < 5:
                a = self.toks[start][2]
                b = self.toks[min(j, len(self.toks) - 1)][2] if self.toks else a
                self.excerpts.append(self.source[a : max(b, a + 1)][:300])
            return j
        self.size += len(value)
        if self.size <= _MAX_VALUE:
            self.parts.append(value)
        return j

    def assign(self, name: str, i: int, append: bool) -> int:
        try:
            value, j = self.expr(i)
        except (_Dynamic, ValueError, OverflowError):
            self.vars[name] = None
            return self.skip_group(i)
        if append:
            old = self.vars.get(name)
            too_big = old is not None and len(old) + len(value) > _MAX_VALUE
            self.vars[name] = None if old is None or too_big else old + value
        else:
            self.vars[name] = value
        return j

    def run(self) -> ScriptOutput:
        toks = self.toks
        n = len(toks)
        i = 0
        while i < n:
            k, t, _ = toks[i]
            if k != "id":
                i += 1
                continue
            nxt = self.text(i + 1)
            if t in ("var", "let", "const") and self.kind(i + 1) == "id":
                name = self.text(i + 1)
                if self.text(i + 2) == "=":
                    i = self.assign(name, i + 3, append=False)
                    # ``var a = '', b = '…'``
                    while self.text(i) == "," and self.kind(i + 1) == "id" and self.text(i + 2) == "=":
                        i = self.assign(self.text(i + 1), i + 3, append=False)
                else:
                    self.vars[name] = None
                    i += 2
                continue
            prev = self.text(i - 1) if i else ""
            if prev != "." and nxt in ("=", "+=") and self.text(i + 2) != "=":
                i = self.assign(t, i + 2, append=nxt == "+=")
                continue
            if prev == "." and t in ("write", "writeln") and nxt == "(":
                # document.write(a, b, …) concatenates its arguments.
                j = i + 2
                while j < n:
                    j = self.emit(i, j)
                    if self.text(j) != ",":
                        break
                    j += 1
                i = j
                continue
            if prev == "." and t in ("innerHTML", "outerHTML") and nxt in ("=", "+="):
                i = self.emit(i, i + 2)
                continue
            if prev == "." and t == "insertAdjacentHTML" and nxt == "(":
                j = self.skip_group(i + 2)
                i = self.emit(i, j + 1) if self.text(j) == "," else j
                continue
            if prev == "." and t in _JQUERY_SINKS and nxt == "(" and self.text(i + 2) != ")":
                i = self.emit(i, i + 2)
                continue
            # ``$('<a …>')`` creates markup that is then inserted (appendTo/insertAfter…).
            if (
                t in ("$", "jQuery")
                and nxt == "("
                and self.kind(i + 2) in ("str", "tpl")
                and self.text(i + 2)[1:2] == "<"
            ):
                i = self.emit(i, i + 2)
                continue
            i += 1
        return ScriptOutput("".join(self.parts), self.sinks, self.dynamic, tuple(self.excerpts))


def inserted_markup(source: str) -> ScriptOutput:
    """The markup a script inserts, as far as static evaluation can tell (see the module docstring).

    Cached by source text: several checks read what the same scripts write. Large scripts go to a
    small cache of their own so memory stays bounded in a long crawl.
    """
    return _small(source) if len(source) <= _SMALL else _large(source)


_SMALL = 64 * 1024


@lru_cache(maxsize=512)
def _small(source: str) -> ScriptOutput:
    return _evaluate(source)


@lru_cache(maxsize=4)
def _large(source: str) -> ScriptOutput:
    return _evaluate(source)


def _evaluate(source: str) -> ScriptOutput:
    if not _SINK_HINT.search(source.lower()):
        return ScriptOutput()
    return _Evaluator(source).run()
