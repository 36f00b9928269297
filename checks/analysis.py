"""The one protocol every page check follows: ``analyse(page, expected, rules) -> Analysis``.

A check reads facts from the page (:mod:`checks.reading`), judges them against :class:`Expected` and
:class:`Rules`, and returns its verdict together with the sub-resources that could still change it, in
one pass. The suite (:mod:`checks.suite`) registers checks as these callables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from checks.expected import Expected
from checks.page import Need, Page
from checks.rules import Rules
from checks.verdict import Verdict


@dataclass(slots=True)
class Analysis:
    """One check's verdict and the sub-resources still worth fetching (empty once it is final)."""

    verdict: Verdict
    needs: list[Need]


class Check(Protocol):
    """A page check: facts of ``page`` judged against the registry, and what it still needs."""

    def __call__(self, page: Page, expected: Expected, rules: Rules, /) -> Analysis: ...
