"""Number sightings: every match of an identifier's pattern on a page, and what could not be read.

:func:`search_page` runs a pattern over the trigger contexts (:mod:`checks.reading.contexts`) of the
home page, the rendered DOM and frames, then, when nothing was found, over the markup the page's scripts
write (:mod:`checks.reading.scripts`), and says what could not be read (same-site scripts not captured,
scripts only a browser can evaluate, fragments the page loads into itself). The number checks judge
these facts; :func:`needs_of` says what would settle a search that found nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from checks.landing import find_includes
from checks.page import Document, Need, NeedKind, Page
from checks.reading.contexts import TRIGGERS, trigger_contexts
from checks.reading.lines import lines_of
from checks.reading.scripts import foreign_scripts, script_docs_and_dynamic, script_needs, unread_scripts
from checks.reading.visible import VisibleText
from checks.verdict import Evidence


@dataclass(frozen=True, slots=True)
class Sighting:
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
class NumberSightings:
    """Every match of a pattern on a page, and what could not be read."""

    found: tuple[Sighting, ...]
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


def search_page(
    page: Page, pattern: re.Pattern[str], triggers: Sequence[str] = TRIGGERS, read_scripts: bool = True
) -> NumberSightings:
    """Matches of ``pattern`` in the visible text of the page (home, rendered DOM, frames); when none
    (and ``read_scripts``), in the markup its scripts write. The contexts and the scripts' output are
    shared by every pattern (kept in ``Document.memo``/``Page.memo``)."""
    docs: list[tuple[str, Document]] = [("home", page.home)]
    if page.rendered is not None:
        docs.append(("rendered", page.rendered))
    docs.extend((f"frame:{url}", d) for url, d in page.frames.items())
    found: list[Sighting] = []
    cut = False
    for name, doc in docs:
        dt = trigger_contexts(doc, name, triggers)
        cut = cut or dt.cut
        for ctx in dt.contexts:
            found.extend(Sighting(m, ctx, "static") for m in pattern.finditer(ctx.text))
    dynamic: list[str] = []
    if not found and read_scripts:
        script_docs, evaluated = script_docs_and_dynamic(page)
        dynamic = list(evaluated)  # the evaluation is shared: extend a copy
        for name, doc in script_docs:
            for ctx in trigger_contexts(doc, name, triggers).contexts:
                found.extend(Sighting(m, ctx, "script") for m in pattern.finditer(ctx.text))
    # Unread scripts and fragments matter only to a search that found nothing.
    unread = () if found else unread_scripts(page)
    includes: tuple[str, ...] = ()
    if not found:
        dynamic.extend(foreign_scripts(page))
        includes = tuple(u for u in find_includes(page.home) if u not in page.frames)
    return NumberSightings(
        tuple(found), unread, tuple(dynamic), page.rendered is not None, cut, page.incomplete, includes
    )


def needs_of(page: Page, search: NumberSightings) -> list[Need]:
    """What would settle a search that found nothing: unread same-site scripts not yet tried, or a
    rendering when a script writes markup static reading cannot evaluate. Empty once found."""
    if search.found or search.rendered or page.exhausted:
        return []
    out = [Need(NeedKind.SCRIPT, u) for u in search.unread_scripts]
    out += [Need(NeedKind.FRAME, u) for u in search.unread_includes]
    if search.dynamic_scripts:
        out.append(Need(NeedKind.RENDER, page.url))
    return [n for n in out if not page.settled(n)]


def with_script_needs(page: Page, needs: list[Need]) -> list[Need]:
    """``needs`` and then the page's same-site scripts that may write the footer (:func:`script_needs`,
    asked for by every number check until every number shows), without duplicates."""
    out = list(needs)
    out.extend(n for url in script_needs(page) if (n := Need(NeedKind.SCRIPT, url)) not in out)
    return out


def element_evidence(doc: Document, el: etree._Element, needle: str, name: str) -> Evidence:
    """Evidence quoting the tag of ``el`` that holds ``needle`` (an attribute value), with offsets."""
    src = doc.text
    line = el.sourceline or 0
    base = lines_of(doc).start_or_none(line) or 0
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
