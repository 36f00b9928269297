"""The crawler's side of the checks: calls into ``checks`` with what the crawler captured.

Checks are pure functions owned by ``checks/``; this module only adapts the crawler's records (DNS
answers, fetch results) to their inputs, and builds the rule settings from the configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from checks.dns import DnsResult, UsageObservation, classify_dns, classify_usage
from checks.domains import check_domain, check_unit_domains
from checks.expected import Expected, UnitKind
from checks.http import FetchOutcome, classify_http, page_readable, unreadable
from checks.landing import find_landing
from checks.merge import settle_merged
from checks.page import Need, NeedKind, Page
from checks.reasons import is_transient
from checks.rules import Rules
from checks.suite import run_checks
from checks.verdict import Evidence, Status, Verdict
from crawler.resolver import DnsAnswer
from storage.config import Config, ConfigError
from storage.subjects import SubjectKind, kind_of

PAGE_CHECKS = ("badge", "icp", "police", "site_code")
#: The checks every subject kind ends with (``site:``, ``domain:``, ``unit:`` subjects).
SUBJECT_CHECKS: dict[SubjectKind, tuple[str, ...]] = {
    SubjectKind.SITE: ("http", *PAGE_CHECKS),
    SubjectKind.DOMAIN: ("dns", "domain", "usage"),
    SubjectKind.UNIT: ("domain",),
}


def rules_from_config(config: Config) -> Rules:
    """The check rules of ``config`` (its block *check rules*: every field of :class:`Rules`);
    :class:`storage.config.ConfigError` for a value no check could use."""
    unknown = [name for name in config.disabled_checks if name not in PAGE_CHECKS]
    if unknown:
        raise ConfigError(
            f"disabled_checks 中有未知的检查项: {'、'.join(unknown)}（可选：{'、'.join(PAGE_CHECKS)}）"
        )
    for name in ("expiring_days", "badge_max_scripts", "badge_max_frames", "badge_max_images"):
        if getattr(config, name) < 0:
            raise ConfigError(f"设置项 {name} 不能为负数: {getattr(config, name)}")
    return Rules(
        icp_ignore_suffix=config.icp_ignore_suffix,
        red_page_hosts=_hosts(config.red_page_hosts),
        expiring_days=config.expiring_days,
        default_province_code=config.province_code,
        conac_script_hosts=_hosts(config.conac_script_hosts),
        conac_verify_hosts=_hosts(config.conac_verify_hosts),
        badge_max_scripts=config.badge_max_scripts,
        badge_max_frames=config.badge_max_frames,
        badge_max_images=config.badge_max_images,
        disabled_checks=tuple(config.disabled_checks),
    )


def _hosts(names: list[str]) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in names if h.strip())


def run_page_checks(page: Page, expected: Expected, rules: Rules) -> tuple[list[Verdict], list[Need]]:
    """Every page check's verdict and the sub-resources still needed to decide."""

    result: Any = run_checks(page, expected, rules)
    raw = result.verdicts
    verdicts = list(raw.values()) if isinstance(raw, Mapping) else list(raw)
    return verdicts, list(result.needs)


def site_http(outcome: FetchOutcome, page: Page | None) -> Verdict:
    """The ``http`` verdict of a site visit, shared by the scan and ``recheck``: the fetch outcome
    judged on the decoded final page, and ``http.landing_unresolved`` when that page is still a landing
    stub (its target only a browser can compute, or it loops) and no rendering shows where it leads."""
    http = classify_http(outcome, page.home if page is not None else None)
    if page is not None and page.rendered is None and page_readable(http):
        landing = find_landing(page.home, page.headers)
        if landing is not None:
            where = f"（指向 {landing.target}）" if landing.target else "（目标由脚本计算）"
            return Verdict(
                "http",
                Status.UNKNOWN,
                "http.landing_unresolved",
                f"首页是{_LANDING_ZH.get(landing.kind, '跳转页')}{where}，未能静态打开其指向的页面",
                (Evidence("home", landing.evidence),),
                dict(http.data),
            )
    return http


_LANDING_ZH = {
    "refresh_header": "自动跳转页（Refresh 头）",
    "meta_refresh": "自动跳转页（meta refresh）",
    "script": "脚本跳转页",
    "frameset": "框架页",
    "iframe": "整页内嵌框架页",
}


def settle_site(
    registered_url: str, final_url: str, http: Verdict, page_verdicts: list[Verdict], expected: Expected
) -> tuple[Verdict, list[Verdict]]:
    """The verdicts of a readable site visit after what only the whole visit shows: a registered address
    that led to another unit's pages is merged (:mod:`checks.merge`)."""
    merged = settle_merged(registered_url, final_url, http, page_verdicts, expected)
    return merged if merged is not None else (http, page_verdicts)


def internal_error_verdicts(subject: str, detail: str) -> list[Verdict]:
    """Every check of ``subject`` as ``unknown/internal_error`` (its procedure raised)."""
    checks = SUBJECT_CHECKS[kind_of(subject)]
    return [Verdict(c, Status.UNKNOWN, "internal_error", detail) for c in checks]


def link_paths(tree: etree._Element, limit: int = 300) -> list[str]:
    """The paths (with query) the page links to, without host: the same site under another name
    links to the same ones."""
    out: dict[str, None] = {}
    for a in tree.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith("#") or href[:11].lower().startswith(("javascript:", "mailto:")):
            continue
        try:
            parts = urlsplit(href)
        except ValueError:
            continue
        key = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        out.setdefault(key)
        if len(out) >= limit:
            break
    return sorted(out)


def dns_verdict(answer: DnsAnswer) -> Verdict:

    return classify_dns(dns_result(answer))


def unreadable_verdicts(http: Verdict, expected: Expected, rules: Rules) -> list[Verdict]:
    """Page-check verdicts when the home page could not be read: ``unknown`` with the http reason,
    except where a check decides without the page (a 事业单位 site needs no 标识码: ``not_required``)."""

    empty = Page(url=expected.site_url or "about:blank", body=b"", exhausted=True)
    verdicts, _needs = run_page_checks(empty, expected, rules)
    by_check = {v.check: v for v in verdicts}
    out = []
    for name in PAGE_CHECKS:
        v = by_check.get(name)
        out.append(v if v is not None and v.status is Status.PASS else unreadable(name, http))
    return out


def dns_result(answer: DnsAnswer) -> Any:

    return DnsResult(
        qname=answer.qname,
        rcode=answer.rcode,
        error=answer.error,
        cname_chain=answer.cname_chain,
        addresses=answer.addresses,
        elapsed_ms=answer.elapsed_ms,
    )


def usage_verdict(
    observation: Mapping[str, Any],
    answer: DnsAnswer,
    expected: Expected,
    rules: Rules,
    own_sha256: Iterable[str] = (),
    own_pages: Iterable[Mapping[str, Any]] = (),
) -> Verdict:

    known = set(getattr(UsageObservation, "__dataclass_fields__", {}))
    kwargs = {k: v for k, v in observation.items() if k in known}
    for key in ("redirects", "links"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    obs = UsageObservation(**kwargs, dns=dns_result(answer))
    return classify_usage(obs, expected, rules, own_sha256, own_pages)


def domain_verdict(name: str, unit_kind: str, expiry: date | None, today: date, rules: Rules) -> Verdict:

    return check_domain(
        name, UnitKind(unit_kind), expiry=expiry, today=today, expiring_days=rules.expiring_days
    )


def unit_domains_verdict(domains: Iterable[str], unit_kind: str) -> Verdict:
    """Does a unit hold a Chinese domain of its kind (``domain.ok`` / ``domain.no_chinese``)."""

    return check_unit_domains(tuple(domains), UnitKind(unit_kind))


# Checks decided from the registry alone (domain syntax, suffix, expiry, a unit without a Chinese
# domain): another attempt would read the same rows, so their failures are final at once.
REGISTRY_CHECKS = frozenset({"domain"})


def confirmed_at_once(v: Verdict) -> bool:
    """A verdict that needs no second attempt to be final (anything but a network-observed fail)."""
    return v.status is not Status.FAIL or v.check in REGISTRY_CHECKS


def needs_confirmation(verdicts: Iterable[Verdict]) -> bool:
    """A ``fail`` or a transient ``unknown`` is tried again before it is final."""
    for v in verdicts:
        if not confirmed_at_once(v):
            return True
        if v.status is Status.UNKNOWN and _transient(v.reason):
            return True
    return False


def _transient(reason: str) -> bool:
    try:
        return is_transient(reason)
    except KeyError:
        return False


def render_needed(needs: Iterable[Need]) -> bool:
    return any(n.kind is NeedKind.RENDER for n in needs)


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
