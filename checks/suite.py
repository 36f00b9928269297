"""The check suite: every page check over one capture, and the sub-resources they still need.

``run_checks`` calls the checks registered in :data:`CHECKS` (badge, ICP, 公安, 标识码) on one
:class:`~checks.page.Page` — all of them share the page's one parsed tree — and returns their verdicts
together with the union of their ``needs``. The crawler loops: run, fetch the needs, run again, until
``needs`` is empty (or its budget is spent: it then sets ``page.exhausted``).

A check is switched off by leaving its name out of ``only`` or listing it in ``Rules.disabled_checks``.
A check module that does not exist (yet) is reported in ``skipped``; a check that raises is reported in
``errors`` with the exception, never taking the other checks down with it.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from checks.expected import Expected
from checks.page import Need, NeedKind, Page
from checks.rules import DEFAULT_RULES, Rules
from checks.verdict import Verdict

log = logging.getLogger(__name__)

CheckFn = Callable[[Page, Expected, Rules], Verdict]
NeedsFn = Callable[[Page, Expected, Rules], list[Need]]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """Where a check lives: ``module.function`` gives the verdict, ``module.needs`` (optional) its needs.

    ``analyse`` (optional) names a function returning an object with ``.verdict`` and ``.needs`` from a
    single pass; the suite prefers it to calling the two separately. ``script_needs`` (optional,
    ``"module:function"``) gives the URLs of external scripts the check reads, as ``function(page)``.
    """

    name: str
    module: str
    function: str
    needs: str = ""
    analyse: str = ""
    script_needs: str = ""


_TEXT_SCRIPTS = "checks.text:script_needs"

#: The page checks, in the order their verdicts are reported.
CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec("badge", "checks.badge", "check_badge", "badge_needs", "analyse_badge"),
        # The number checks also read what same-site scripts write into the footer.
        CheckSpec("icp", "checks.icp", "check_icp", "icp_needs", script_needs=_TEXT_SCRIPTS),
        CheckSpec("police", "checks.police", "check_police", "police_needs", script_needs=_TEXT_SCRIPTS),
        CheckSpec(
            "site_code", "checks.sitecode", "check_site_code", "site_code_needs", script_needs=_TEXT_SCRIPTS
        ),
    )
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
        """The ``badgewatch inspect --json`` shape of design.md: one flat object per check.

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


def _resolve(spec: CheckSpec) -> tuple[Any | None, str]:
    module = sys.modules.get(spec.module)
    if module is not None and hasattr(module, spec.function):
        return module, ""
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name == spec.module:
            return None, f"模块 {spec.module} 尚不存在"
        raise
    if not hasattr(module, spec.function):
        return None, f"{spec.module} 中没有 {spec.function}"
    return module, ""


def _script_needs(spec: CheckSpec, page: Page, memo: dict[str, list[Need]]) -> list[Need]:
    """The scripts a check reads (computed once per run, shared by the checks naming the same source)."""
    if not spec.script_needs:
        return []
    if spec.script_needs not in memo:
        module_name, _, function = spec.script_needs.partition(":")
        try:
            fn: Callable[[Page], Iterable[str]] = getattr(importlib.import_module(module_name), function)
        except (ModuleNotFoundError, AttributeError):
            fn = _no_scripts
        memo[spec.script_needs] = [Need(NeedKind.SCRIPT, url) for url in fn(page)]
    return memo[spec.script_needs]


def _no_scripts(page: Page) -> list[str]:
    return []


def run_checks(
    page: Page,
    expected: Expected,
    rules: Rules = DEFAULT_RULES,
    only: Iterable[str] | None = None,
    checks: Mapping[str, CheckSpec] | None = None,
) -> SuiteResult:
    """Run the page checks over one capture; see the module docstring."""
    registry = CHECKS if checks is None else checks
    names = list(registry) if only is None else list(only)
    result = SuiteResult()
    seen: set[Need] = set()
    script_memo: dict[str, list[Need]] = {}
    for name in names:
        spec = registry.get(name)
        if spec is None:
            raise KeyError(f"unknown check {name!r}; known: {', '.join(registry)}")
        if name in rules.disabled_checks:
            result.skipped[name] = "已在规则中停用"
            continue
        module, why = _resolve(spec)
        if module is None:
            result.skipped[name] = why
            continue
        try:
            needs: list[Need]
            if spec.analyse and hasattr(module, spec.analyse):
                analysis = getattr(module, spec.analyse)(page, expected, rules)
                verdict, needs = analysis.verdict, list(analysis.needs)
            else:
                check: CheckFn = getattr(module, spec.function)
                verdict = check(page, expected, rules)
                needs_fn: NeedsFn | None = getattr(module, spec.needs, None) if spec.needs else None
                needs = list(needs_fn(page, expected, rules)) if needs_fn is not None else []
            needs.extend(_script_needs(spec, page, script_memo))
        except Exception as exc:  # one broken check must not hide the others' verdicts
            log.exception("check %s failed on %s", name, page.url)
            result.errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        result.verdicts[name] = verdict
        for need in needs:
            # A need already present, failed, or past the crawler's budget is never asked for again:
            # this is what makes the crawler's fetch loop end.
            if need not in seen and not page.settled(need):
                seen.add(need)
                result.needs.append(need)
    return result
