"""The CONAC website badge (网站标识): is it displayed, of which kind, and is it this site's own?

This module judges; the page is read by :func:`checks.reading.badge_facts.read_badge` (the candidate
scan of :mod:`checks.reading.badge_scan` with the fast paths of :mod:`checks.reading.badge_hosts`, then
the kind signals). Every badge shape of docs/checks.md (“What counts as a badge”) is recognised:

===================  =====================================================================
``shape``            what was found
===================  =====================================================================
embed_code           the official ``document.write(unescape(…))`` code / the CONAC script tag
rendered_dom         the expanded ``<span id="_ideConac"><a …><img id="imgConac" …>`` (saved or rendered)
static_copy          a copy of the expanded markup, image on the CONAC host
local_image_copy     the CONAC image saved on the site (recognised by its bytes or file name)
custom_image         a site-made image inside a link to the verification page
text_link            a text link to the verification page
script_built         any of the above written by a script (footer built by JavaScript)
===================  =====================================================================

The kind comes from the strongest available signal: badge script content > image file > verification
page > alt/``wzades``/link text. A stronger signal that has not been fetched yet makes the verdict wait
(``unknown`` with a need) instead of resting on a weaker one; a signal that failed is skipped. The
check never says ``fail`` where the evidence could not decide.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict
from urllib.parse import urlsplit

from checks.analysis import Analysis
from checks.expected import Expected
from checks.page import Need, NeedKind, Page
from checks.reading.badge_facts import BLUE, RED, BadgeFacts, BszsFacts, read_badge
from checks.reading.badge_hosts import host_of
from checks.reading.badge_scan import Embed, Mark, Scan
from checks.reading.scripts import opaque_scripts
from checks.rules import DEFAULT_RULES, Rules
from checks.verdict import Evidence, Status, Verdict


class _BadgeFields(TypedDict, total=False):
    """The keys a verdict sets (the others stay None: :class:`BadgeData`)."""

    kind: str | None
    code: str | None
    verify_id: str | None
    shape: str | None
    source: str | None
    kind_from: str | None


class BadgeData(TypedDict):
    """``Verdict.data`` of the badge check (its keys are the JSON keys stored with every finding):
    ``kind`` (decided only), ``code``, ``verify_id``, ``shape``, ``source`` (the document it was read
    in), ``kind_from`` (which signal decided the kind; displayed badges only)."""

    kind: str | None
    code: str | None
    verify_id: str | None
    shape: str | None
    source: str | None
    kind_from: NotRequired[str | None]


def analyse(page: Page, expected: Expected, rules: Rules = DEFAULT_RULES) -> Analysis:
    """The badge verdict and what to fetch next (both from one reading of the page)."""
    facts = read_badge(page, expected, rules)
    return _decide(page, expected, facts) if facts.displayed else _undisplayed(page, facts)


def _verdict(
    status: Status, reason: str, detail: str, evidence: list[Evidence], data: _BadgeFields
) -> Verdict:
    base: BadgeData = {"kind": None, "code": None, "verify_id": None, "shape": None, "source": None}
    base.update(data)
    return Verdict("badge", status, reason, detail, tuple(e for e in evidence if e.excerpt), base)


def _undisplayed(page: Page, facts: BadgeFacts) -> Analysis:
    """No badge shows: why (an async embed, code only a browser runs), what is still to read, or missing."""
    scan, needs, failed = facts.scan, facts.needs, facts.failed
    if scan.embeds:  # only async embeds: a browser ignores document.write from them
        e = scan.embeds[0]
        return Analysis(
            _verdict(
                Status.FAIL,
                "badge.never_renders",
                "标识代码所在的 script 标签带有 async 属性",
                [e.evidence],
                {"code": e.code, "shape": "embed_code", "source": e.source},
            ),
            needs,
        )
    if scan.dynamic:
        render = Need(NeedKind.RENDER, page.url)
        pending = [] if page.settled(render) else [render]
        why = page.failed.get(render.key, "")
        return Analysis(
            _verdict(
                Status.UNKNOWN,
                "badge.needs_render",
                "页面脚本引用了网站标识，但无法静态还原其输出" + (f"；渲染失败：{why}" if why else ""),
                list(scan.dynamic[:3]),
                {},
            ),
            needs + pending,
        )
    tags = [ev for ev in (*scan.frame_tags.values(), *scan.script_tags.values()) if ev.excerpt][:5]
    if needs:
        return Analysis(
            _verdict(
                Status.UNKNOWN,
                "badge.script_unavailable",
                "静态页面中没有网站标识，待获取可能生成页脚的脚本或框架页面："
                + "、".join(n.url for n in needs[:5]),
                tags,
                {},
            ),
            needs,
        )
    if failed:
        return Analysis(
            _verdict(
                Status.UNKNOWN,
                "badge.script_unavailable",
                "静态页面中没有网站标识，可能生成页脚的脚本或框架页面获取失败：" + "；".join(failed[:5]),
                tags,
                {},
            ),
            needs,
        )
    opaque = opaque_scripts(page) if page.rendered is None else ()
    if opaque:
        # Scripts write into the page in ways static reading cannot follow: only a browser can say the
        # badge is not there.
        render = Need(NeedKind.RENDER, page.url)
        pending = [] if page.settled(render) else [render]
        why = page.failed.get(render.key, "")
        return Analysis(
            _verdict(
                Status.UNKNOWN,
                "badge.needs_render",
                "静态页面中没有网站标识，页面脚本可能生成页脚，需浏览器渲染后确认："
                + "、".join(opaque[:5])
                + (f"；渲染失败：{why}" if why else ""),
                tags,
                {},
            ),
            needs + pending,
        )
    if page.incomplete and page.rendered is None:
        # The footer (where badges live) may be in the part that was not read.
        why = (
            f"只读取了首页的前 {len(page.body)} 字节"
            if page.truncated
            else "首页标签嵌套过深，解析器未能读完整个页面"
        )
        return Analysis(_verdict(Status.UNKNOWN, "badge.page_truncated", why, tags, {}), needs)
    where = "渲染后的页面" if page.rendered is not None else "首页"
    # The end of the page (where footers live) shows what was read instead of a badge.
    doc = page.rendered if page.rendered is not None else page.home
    start = max(0, len(doc.text) - 400)
    label = "rendered" if page.rendered is not None else "home"
    tail = Evidence(label, doc.text[start:], start, len(doc.text))
    return Analysis(
        _verdict(
            Status.FAIL,
            "badge.missing",
            f"{where}中没有网站标识代码、标识图片或核验链接",
            [tail] if doc.text.strip() else [],
            {},
        ),
        [],
    )


def _mark_shape(mark: Mark, image_kind_from_bytes: bool, embeds: list[Embed]) -> str:
    if mark.img_url is None:
        shape = "text_link"
    elif mark.conac_image:
        # Embed code beside its own expansion in one document: a saved (or rendered) DOM.
        saved = mark.saved_dom or any(e.source == mark.source for e in embeds)
        shape = "rendered_dom" if saved else "static_copy"
    elif image_kind_from_bytes:
        shape = "local_image_copy"
    else:
        shape = "custom_image"
    return "script_built" if mark.via_script and mark.source != "rendered" else shape


_ORDER = {"script": 0, "image": 1, "bszs": 2, "alt": 3}
_COLOUR = {RED: "红色", BLUE: "蓝色"}
_ORIGIN_ZH = {"script": "标识脚本", "image": "标识图片", "bszs": "核验页面", "alt": "图片替代文字或链接文字"}


def _decide(page: Page, expected: Expected, facts: BadgeFacts) -> Analysis:
    """A badge shows: whose it is, its kind against the unit's, and whether the evidence is all in."""
    scan, embeds, signals, pending = facts.scan, facts.embeds, facts.signals, facts.pending
    verify_ids, failures = facts.verify_ids, facts.failures
    identity_problem, outdated = _bszs_problems(facts.bszs, expected) if facts.bszs is not None else ("", "")
    signals.sort(key=lambda s: _ORDER[s.origin])
    best = signals[0] if signals else None
    # A pending stronger signal outranks whatever is available now.
    pending_rank = min(
        (
            _ORDER["script"]
            if n.kind is NeedKind.BADGE_SCRIPT
            else _ORDER["image"]
            if n.kind is NeedKind.IMAGE
            else _ORDER["bszs"]
            for n in pending
        ),
        default=99,
    )
    kind_final = best is not None and _ORDER[best.origin] < pending_rank
    kind = best.kind if best is not None else None

    codes = [e.code for e in embeds] or [e.code for e in scan.embeds]
    want_code = expected.badge_code.strip().upper()
    code = want_code if want_code in codes else (codes[0] if codes else None)
    want_id = expected.badge_verify_id.strip().upper()
    verify_id = want_id if want_id in verify_ids else (verify_ids[0] if verify_ids else None)

    main_mark = (
        best.mark if best is not None and best.mark is not None else (scan.marks[0] if scan.marks else None)
    )
    if main_mark is not None:
        shape = _mark_shape(
            main_mark, best is not None and best.mark is main_mark and best.shape == "bytes", scan.embeds
        )
        source = main_mark.source
        evidence = [main_mark.evidence]
    else:
        e = embeds[0]
        shape = "script_built" if e.external else "embed_code"
        source = e.source
        evidence = [e.evidence]
    if embeds and main_mark is not None and embeds[0].evidence != main_mark.evidence:
        evidence.append(embeds[0].evidence)
    if best is not None and best.evidence is not None and best.evidence not in evidence:
        evidence.append(best.evidence)
    data: _BadgeFields = {
        "kind": kind if kind_final else None,
        "code": code,
        "verify_id": verify_id,
        "shape": shape,
        "source": source,
        "kind_from": best.origin if kind_final and best is not None else None,
    }
    all_needs = facts.needs + pending

    def out(status: Status, reason: str, detail: str) -> Analysis:
        return Analysis(_verdict(status, reason, detail, evidence, data), all_needs)

    # Whose badge it is comes first: another site's badge is that, whatever its colour or state.
    if want_code and codes and want_code not in codes:
        return out(Status.FAIL, "badge.code_mismatch", f"页面标识代码 {'、'.join(codes)}，登记为 {want_code}")
    if want_id and verify_ids and want_id not in verify_ids:
        return out(Status.FAIL, "badge.id_mismatch", f"页面核验编号 {verify_ids[0]}，登记为 {want_id}")
    if identity_problem:
        return out(Status.FAIL, "badge.id_mismatch", identity_problem)
    if kind_final and best is not None and best.error:
        return out(Status.FAIL, "badge.error_image", f"标识显示为异常图标（依据：{_ORIGIN_ZH[best.origin]}）")
    unit_kind = expected.unit_kind.value if expected.unit_kind is not None else ""
    if kind_final and kind and unit_kind in (RED, BLUE) and kind != unit_kind:
        return out(
            Status.FAIL,
            "badge.wrong_kind",
            f"网站标识为{kind}标识（依据：{_ORIGIN_ZH[best.origin] if best else ''}），单位类别为{unit_kind}",
        )
    if pending:  # what is still being fetched could change the verdict
        return out(
            Status.UNKNOWN,
            "badge.script_unavailable",
            "待获取：" + "、".join(f"{n.kind}:{n.url}" for n in pending),
        )
    if mixed_content(page, embeds, scan):
        return out(
            Status.FAIL,
            "badge.mixed_content",
            f"HTTPS 网页 {page.url} 以 {embeds[0].url} 加载标识脚本，浏览器拦截该脚本，标识不显示",
        )
    if expected.unit_kind is None:  # no unit kind given (inspect without --kind): report, do not judge
        if kind_final and kind and best is not None:
            seen = f"{kind}（{_COLOUR.get(kind, '')}）网站标识（依据：{_ORIGIN_ZH[best.origin]}）"
        else:
            seen = "网站标识，类型无法读取" + (f"（{'；'.join(failures)}）" if failures else "")
        return out(Status.PASS, "badge.displayed", f"已加挂{seen}")
    if unit_kind not in (RED, BLUE):
        return out(Status.PASS, "badge.ok", "已加挂网站标识")
    if not kind_final:
        if failures:
            return out(Status.UNKNOWN, "badge.script_unavailable", "；".join(failures))
        return out(
            Status.UNKNOWN, "badge.kind_unknown", "标识图片、脚本、核验页面和替代文字都无法说明标识类型"
        )
    if outdated:
        return out(Status.WARN, "badge.registration_outdated", outdated)
    basis = _ORIGIN_ZH[best.origin] if best else ""
    return out(Status.PASS, "badge.ok", f"已加挂{kind}网站标识（依据：{basis}）")


def mixed_content(page: Page, embeds: list[Embed], scan: Scan) -> bool:
    """Whether a browser shows nothing of the badge because an ``https`` page loads its script over
    ``http://`` (active mixed content is blocked; images would be upgraded, scripts are not)."""
    if not embeds or urlsplit(page.url).scheme != "https":
        return False
    if not all(e.url.lower().startswith("http://") for e in embeds):
        return False
    # A badge in the markup itself (a static copy) still shows: only the script is blocked.
    return not any(not m.via_script and m.source != "rendered" for m in scan.marks)


def _bszs_problems(bszs: BszsFacts, expected: Expected) -> tuple[str, str]:
    """(identity problem or "", outdated registration or "") from what the verification page says.

    The page names the unit, its type, the website's domains and the badge code (证书编号). Another
    code, or another unit *and* other domains: the badge belongs to someone else. Only the unit's name
    or only the domains differing is this site's badge registered before a 机构改革 or a move to a new
    address: the registration is outdated, not copied.
    """
    want_code = expected.badge_code.strip().upper()
    if want_code and bszs.codes and want_code not in bszs.codes:
        return f"核验页面的标识代码为 {'、'.join(sorted(bszs.codes))}，登记为 {want_code}", ""
    name_problem = ""
    name = expected.unit_name.strip()
    # The name field decides (the page also lists the unit's Chinese domains, which hold its name).
    shown = bszs.unit_name if name else None
    if shown and shown != name and name not in shown:
        name_problem = f"核验页面的单位名称为“{shown}”，登记为“{name}”"
    site_problem = _bszs_site_problem(bszs, expected)
    if name_problem and site_problem:
        return f"{name_problem}；{site_problem}", ""
    return "", name_problem or site_problem


def _bszs_site_problem(bszs: BszsFacts, expected: Expected) -> str:
    ours: set[str] = set()
    if expected.site_url:
        ours.add(host_of(expected.site_url if "//" in expected.site_url else "http://" + expected.site_url))
    ours.update(d.lower() for d in (*expected.en_domains, *expected.cn_domains))
    ours = {h.removeprefix("www.") for h in ours if h}
    if not ours:
        return ""
    listed = bszs.domains
    if listed and not (listed & ours):
        low = bszs.text.lower()
        if not any(o in low for o in ours):
            return f"核验页面登记的网站域名为 {'、'.join(sorted(listed))}，与本网站不符"
    return ""


def check_badge(page: Page, expected: Expected, rules: Rules = DEFAULT_RULES) -> Verdict:
    """The badge verdict alone (see :func:`analyse`)."""
    return analyse(page, expected, rules).verdict


def badge_needs(page: Page, expected: Expected, rules: Rules = DEFAULT_RULES) -> list[Need]:
    """What :func:`analyse` still needs (empty once the verdict is final)."""
    return analyse(page, expected, rules).needs


#: The name tests and tools use.
analyse_badge = analyse
