"""The check suite: every page check over one capture, and the sub-resources they still need.

``run_checks`` calls the checks registered in :data:`CHECKS` (badge, ICP, 公安, 标识码) on one
:class:`~checks.page.Page` — all of them share the page's one parsed tree — and returns their verdicts
together with the union of their ``needs``. The crawler loops: run, fetch the needs, run again, until
``needs`` is empty (or its budget is spent: it then sets ``page.exhausted``).

Every check follows one protocol (:class:`checks.analysis.Check`): ``analyse(page, expected, rules)``
returns an :class:`~checks.analysis.Analysis` (verdict and needs) in one pass. Checks are registered as
those callables, so a misspelt check fails at import, not silently. A check is switched off by leaving
its name out of ``only`` or listing it in ``Rules.disabled_checks`` (reported in ``skipped``); a check
that raises is reported in ``errors`` with the exception, never taking the other checks down with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from checks import badge, icp, police, sitecode
from checks.analysis import Check
from checks.expected import Expected
from checks.page import Need, Page
from checks.rules import DEFAULT_RULES, Rules
from checks.verdict import Verdict

log = logging.getLogger(__name__)

#: The page checks, in the order their verdicts are reported.
CHECKS: dict[str, Check] = {
    "badge": badge.analyse,
    "icp": icp.analyse,
    "police": police.analyse,
    "site_code": sitecode.analyse,
}


@dataclass(slots=True)
class SuiteResult:
    """Verdicts by check name, the sub-resources still needed, and checks that could not run."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    needs: list[Need] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        """No check asks for anything more."""
        return not self.needs

    def to_dict(self) -> dict[str, Any]:
        """Full form: every verdict as :meth:`Verdict.to_dict`, plus needs, skipped and errors."""
        return {
            "verdicts": {k: v.to_dict() for k, v in self.verdicts.items()},
            "needs": [{"kind": str(n.kind), "url": n.url} for n in self.needs],
            "skipped": dict(self.skipped),
            "errors": dict(self.errors),
        }

    def inspect_json(self) -> dict[str, Any]:
        """The ``badgewatch inspect --json`` shape (docs/checks.md, “Check suite”): one flat object per check.

        ``{"badge": {"status", "reason", "message", "detail", "kind", "code", "verify_id", "shape",
        "source", "evidence"}, "icp": {…, "number", "linked"}, "police": {…}, "site_code": {…, "value"}}``:
        status/reason/message/detail/evidence first, then the check's ``data`` keys.
        """
        out: dict[str, Any] = {}
        for name, v in self.verdicts.items():
            entry: dict[str, Any] = {
                "status": str(v.status),
                "reason": v.reason,
                "message": v.message,
                "detail": v.detail,
            }
            for key, value in v.data.items():
                entry.setdefault(key, value)
            entry["evidence"] = [e.to_dict() for e in v.evidence]
            out[name] = entry
        return out


def run_checks(
    page: Page,
    expected: Expected,
    rules: Rules = DEFAULT_RULES,
    only: Iterable[str] | None = None,
    checks: Mapping[str, Check] | None = None,
) -> SuiteResult:
    """Run the page checks over one capture; see the module docstring."""
    table = CHECKS if checks is None else checks
    names = list(table) if only is None else list(only)
    result = SuiteResult()
    seen: set[Need] = set()
    for name in names:
        check = table.get(name)
        if check is None:
            raise KeyError(f"unknown check {name!r}; known: {', '.join(table)}")
        if name in rules.disabled_checks:
            result.skipped[name] = "已在规则中停用"
            continue
        try:
            analysis = check(page, expected, rules)
        except Exception as exc:  # one broken check must not hide the others' verdicts
            log.exception("check %s failed on %s", name, page.url)
            result.errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        result.verdicts[name] = analysis.verdict
        for need in analysis.needs:
            # A need already present, failed, or past the crawler's budget is never asked for again:
            # this is what makes the crawler's fetch loop end.
            if need not in seen and not page.settled(need):
                seen.add(need)
                result.needs.append(need)
    return result
