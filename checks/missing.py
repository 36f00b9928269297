"""What the number checks (icp, police, site_code) share in judging: the base of their ``Verdict.data``
and the verdict when their identifier was read nowhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from checks.page import Need, NeedKind, Page
from checks.reading.sightings import NumberSightings, needs_of
from checks.verdict import Status, Verdict


class NumberData(TypedDict):
    """The ``Verdict.data`` keys every number check writes (each adds its own)."""

    numbers: list[str]  # every number seen, canonical
    issues: list[str]  # every reason that applies, worst first
    needs: NotRequired[list[dict[str, str]]]  # only on ``*.unconfirmed``: what is still worth fetching
    via: NotRequired[str]  # ``static`` / ``script``, when a number was judged


def missing_verdict(check: str, page: Page, search: NumberSightings, data: Mapping[str, Any]) -> Verdict:
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
