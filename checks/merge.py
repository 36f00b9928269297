"""Merged sites (集约化, 关停并转): a registered address that leads to another unit's pages.

Provinces consolidate sites onto platforms and close or merge thousands of them: the registered
address then redirects to the county portal (often one of its columns) or to the site of the unit
that took the work over. That page shows *its* badge and *its* ICP, 公安 and 标识码 numbers, which do
not match this site's registry entry. Those mismatches are not a copied badge or a wrong number: the
registry entry is stale. :func:`settle_merged` turns them into one registry item for the office
(``http.merged``, a warning) and leaves the page checks undecided (``http.merged_page``).

The evidence that the page belongs to someone else is the mismatch itself, on a page the visitor
reached on another host: a site that only moved to a new address keeps its own badge and numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from urllib.parse import urlsplit

from checks.dns import ascii_host
from checks.expected import Expected
from checks.verdict import Evidence, Status, Verdict

#: Reasons that say "this page identifies another site or unit".
IDENTITY_MISMATCHES = frozenset(
    {
        "badge.code_mismatch",
        "badge.id_mismatch",
        "icp.number_mismatch",
        "police.number_mismatch",
        "site_code.mismatch",
    }
)


def _bare_host(url: str) -> str:
    try:
        host = (urlsplit(url if "//" in url else "http://" + url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def _own_hosts(registered_url: str, expected: Expected) -> set[str]:
    hosts = {_bare_host(registered_url), _bare_host(expected.site_url)}
    for d in (*expected.en_domains, *expected.cn_domains):
        h = ascii_host(d)
        hosts.add(h[4:] if h.startswith("www.") else h)
    hosts.discard("")
    return hosts


def moved_away(registered_url: str, final_url: str, expected: Expected) -> bool:
    """Whether the visitor ended on a host that is none of the site's registered names."""
    final = _bare_host(final_url)
    if not final:
        return False
    final = ascii_host(final) or final
    return final not in _own_hosts(registered_url, expected)


def settle_merged(
    registered_url: str,
    final_url: str,
    http: Verdict,
    page_verdicts: Sequence[Verdict],
    expected: Expected,
) -> tuple[Verdict, list[Verdict]] | None:
    """``(http, page verdicts)`` for a merged site, or None when the site is not merged.

    Merged: the visitor ended on another host and the page there identifies another site or unit
    (a badge code or verification page, an ICP, 公安 or 标识码 number that is not this site's).
    """
    mismatches = [v for v in page_verdicts if v.reason in IDENTITY_MISMATCHES]
    if not mismatches or not moved_away(registered_url, final_url, expected):
        return None
    host = urlsplit(final_url).hostname or final_url
    detail = f"登记的网站地址 {registered_url} 跳转到 {final_url}（{host}），页面上的标识或备案号属于其他网站"
    evidence = tuple(_pieces(mismatches))
    data = {**dict(http.data), "merged_into": final_url, "mismatches": [v.reason for v in mismatches]}
    merged_http = Verdict("http", Status.WARN, "http.merged", detail, http.evidence + evidence, data)
    out: list[Verdict] = []
    for v in page_verdicts:
        if v.status is Status.PASS and v.reason == "site_code.not_required":
            out.append(v)  # decided without the page
            continue
        why = f"网站已并入 {host}：{v.detail}" if v.detail else f"网站已并入 {host}"
        out.append(replace(v, status=Status.UNKNOWN, reason="http.merged_page", detail=why))
    return merged_http, out


def _pieces(verdicts: Iterable[Verdict]) -> Iterable[Evidence]:
    for v in verdicts:
        yield from v.evidence[:1]
