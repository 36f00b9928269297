"""The e-mail that carries an office's list: a letter an office can act on.

Greeting, what the scan found in the office's area, what to do and by when, the non-compliance lines
themselves (balanced columns: a unit's name on one line), what could not be judged, whom to ask, and who
sends it. The full list (advice, fixed problems) is the attached Excel file. Texts, states and colours
come from the same places as every other surface (:mod:`checks.reasons`, :mod:`storage.status`), times
through :mod:`storage.timefmt`. The plain-text part of the e-mail is made from this HTML by
:func:`reports.delivery.mail.html_to_text`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from reports.documents import problem_checks
from reports.noncompliance import NoncomplianceReport, OfficeList, Problem, seen
from storage.config import Config
from storage.status import COLOURS, LABELS, LEGEND, State
from storage.timefmt import DEFAULT_TIMEZONE, fmt_date, fmt_time, local_date

_FONT = '"Microsoft YaHei","PingFang SC","Noto Sans CJK SC",sans-serif'
_CELL = "border:1px solid #999;padding:3px 6px;vertical-align:top;"
_ONE_LINE = "white-space:nowrap;"


@dataclass(frozen=True, slots=True)
class ListNotice:
    """What every list and e-mail says beyond its lines (settings in ``storage/config.py``)."""

    organisation: str = "网上名称管理域名中心"
    contact: str = ""
    rectify_days: int = 15
    tz: str = DEFAULT_TIMEZONE
    console_url: str = ""

    @classmethod
    def from_config(cls, cfg: Config) -> ListNotice:
        return cls(cfg.organisation, cfg.contact_text, cfg.rectify_days, cfg.timezone, cfg.console_url)

    def deadline(self, report: NoncomplianceReport) -> dt.date | None:
        """The day an office should have acted by: the scan's day plus ``rectify_days``."""
        if self.rectify_days <= 0 or report.started_at is None:
            return None
        return local_date(report.started_at, self.tz) + dt.timedelta(days=self.rectify_days)

    def ask(self) -> str:
        """The "whom to ask" sentence ("" when no contact is configured)."""
        return f"如有疑问，请联系：{self.contact}" if self.contact else ""

    def footer(self, report: NoncomplianceReport | None = None) -> str:
        """By when, whom to ask and who sends the list: the footer of every list document."""
        deadline = self.deadline(report) if report is not None else None
        parts = [f"请于{fmt_date(deadline)}前督促“不合规”所列单位完成整改"] if deadline else []
        if self.contact:
            parts.append(self.ask())
        if self.organisation:
            parts.append(f"{self.organisation}制发")
        return "；".join(parts)


def greeting(office_name: str) -> str:
    """How a letter to an office begins: ``保定市编办：``."""
    name = office_name.strip()
    if name.endswith(("编办", "机构编制委员会办公室", "域名中心")):
        return f"{name}："
    return f"{name}编办："


# An address may break anywhere (it has no spaces); the problem and the advice keep a readable width.
_TARGET = "min-width:11em;max-width:16em;word-break:break-all;"
_WIDE = "min-width:11em;"


def _cell(text: str, *, one_line: bool = False, colour: str = "", extra: str = "") -> str:
    style = _CELL + (_ONE_LINE if one_line else "") + (f"background:#{colour};" if colour else "") + extra
    return f'<td style="{style}">{text}</td>'


def _head(*names: str) -> str:
    cells = "".join(f'<th style="{_CELL}background:#DDE4EE;{_ONE_LINE}">{escape(n)}</th>' for n in names)
    return f"<tr>{cells}</tr>"


def _evidence(p: Problem) -> str:
    ref = escape(p.evidence_id)
    return f'<a href="{escape(p.evidence_url)}">{ref}</a>' if p.evidence_url else ref


def _failure_table(problems: list[Problem], tz: str) -> str:
    rows = [_head("序号", "单位名称", "网站或域名", "问题", "整改建议", "首次发现", "证据编号")]
    colour = COLOURS[State.FAIL][0]
    for i, p in enumerate(problems, start=1):
        first, visits = seen(p, tz)
        when = f"{first}<br>{visits}" if first else ""
        rows.append(
            "<tr>"
            + _cell(str(i), one_line=True, colour=colour)
            + _cell(escape(p.record.unit_name), one_line=True)
            + _cell(escape(p.record.target), extra=_TARGET)
            + _cell(f"{escape(problem_checks(p))}：{escape(p.message)}", extra=_WIDE)
            + _cell(escape(p.advice), extra=_WIDE)
            + _cell(when, one_line=True)
            + _cell(_evidence(p), one_line=True)
            + "</tr>"
        )
    return f'<table style="border-collapse:collapse;font-size:13px;">{"".join(rows)}</table>'


def _unknown_table(problems: list[Problem]) -> str:
    rows = [_head("单位名称", "网站或域名", "原因", "证据编号")]
    for p in problems:
        rows.append(
            "<tr>"
            + _cell(escape(p.record.unit_name), one_line=True)
            + _cell(escape(p.record.target), extra=_TARGET)
            + _cell(escape(p.message), extra=_WIDE)
            + _cell(_evidence(p), one_line=True)
            + "</tr>"
        )
    return f'<table style="border-collapse:collapse;font-size:13px;">{"".join(rows)}</table>'


def _page(body: list[str]) -> str:
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"></head>'
        f'<body style="font-family:{_FONT};font-size:14px;color:#1b1b1b;">'
        + "\n".join(body)
        + "</body></html>"
    )


def _p(text: str) -> str:
    return f"<p>{text}</p>"


def office_letter(ol: OfficeList, report: NoncomplianceReport, notice: ListNotice) -> str:
    """The HTML e-mail of one office's list."""
    tz = notice.tz
    when = fmt_date(report.started_at, tz) if report.started_at else f"巡检 {report.scan_id} 中"
    units = len({p.record.unit_id for p in ol.failures})
    counts = (
        f"{LABELS[State.FAIL]}问题 <b>{len(ol.failures)}</b> 项（涉及 {units} 个单位；新增 {len(ol.new)} 项，"
        f"持续 {len(ol.persisting)} 项），{LABELS[State.UNKNOWN]} {len(ol.unverified)} 项，"
        f"{LABELS[State.WARN]} {len(ol.advice)} 项，已整改 {len(ol.fixed)} 项"
    )
    started = f"，{fmt_time(report.started_at, tz, label=True)}开始" if report.started_at else ""
    body = [
        _p(escape(greeting(ol.office_name))),
        _p(
            f"{escape(notice.organisation)}于{escape(when)}对{escape(ol.office_name)}的网站和域名进行了巡检"
            f"（巡检编号 {report.scan_id}{escape(started)}）。本辖区{counts}。"
        ),
    ]
    deadline = notice.deadline(report)
    by = f"请于 <b>{escape(fmt_date(deadline))}</b> 前" if deadline else "请尽快"
    if ol.failures:
        body.append(
            _p(
                f"{by}督促下列单位按“整改建议”完成整改。整改后，下次巡检会自动复查并在清单中标为“已整改”，"
                "无需另行报送。"
            )
        )
        body.append(f"<h3>{LABELS[State.FAIL]}问题（{len(ol.failures)} 项）</h3>")
        body.append(_failure_table(ol.failures, tz))
    else:
        body.append(_p(f"本次巡检未发现{LABELS[State.FAIL]}问题，无需整改。"))
    if ol.pending:
        body.append(
            _p(
                f"另有 {ol.pending} 项问题{LABELS[State.PENDING]}（{escape(LEGEND[State.PENDING])}），"
                "下次巡检复查后再行通知。"
            )
        )
    if ol.unverified:
        body.append(f"<h3>{LABELS[State.UNKNOWN]}（{len(ol.unverified)} 项）</h3>")
        body.append(
            _p(
                f"{escape(LEGEND[State.UNKNOWN])}。请核实这些网站能否正常访问（网址是否变更、网站是否关停），"
                "如有变化请更新登记信息。"
            )
        )
        body.append(_unknown_table(ol.unverified))
    body.append(_p("完整清单（含提示事项和已整改的问题）见附件 Excel 文件，可直接打印。"))
    if notice.console_url:
        body.append(
            _p(
                f'证据编号可在审核台（<a href="{escape(notice.console_url)}">{escape(notice.console_url)}'
                "</a>）的“按证据编号查找”中打开，查看页面截图与标识代码。"
            )
        )
    if notice.contact:
        body.append(_p(escape(notice.ask())))
    body.append(_p(f"{escape(notice.organisation)}<br>{escape(fmt_date(report.started_at, tz))}"))
    return _page(body)


def center_letter(report: NoncomplianceReport, notice: ListNotice) -> str:
    """The HTML e-mail of the whole scan's lists to the domain center."""
    tz = notice.tz
    rows = [
        _head(
            "编办",
            "状态",
            LABELS[State.FAIL],
            "涉及单位",
            LABELS[State.PENDING],
            LABELS[State.UNKNOWN],
            LABELS[State.WARN],
        )
    ]
    for ol in report.offices:
        st = ol.state
        units = len({p.record.unit_id for p in ol.failures})
        figures = (
            [len(ol.failures), units, ol.pending, len(ol.unverified), len(ol.advice)]
            if ol.scanned
            else ["—"] * 5
        )
        rows.append(
            "<tr>"
            + _cell(escape(ol.office_name), one_line=True)
            + _cell(LABELS[st], one_line=True, colour=COLOURS[st][0])
            + "".join(_cell(str(v), one_line=True) for v in figures)
            + "</tr>"
        )
    total = sum(len(o.failures) for o in report.offices)
    body = [
        _p("域名中心："),
        _p(
            f"巡检 {report.scan_id}（{escape(report.scan_label)}，"
            f"范围：{escape(report.scope or '全部编办')}）"
            f"共发现{LABELS[State.FAIL]}问题 <b>{total}</b> 项。各编办已分别收到本辖区的清单；汇总如下，"
            "完整清单见附件 Excel 文件（每个编办一张表）。"
        ),
        f'<table style="border-collapse:collapse;font-size:13px;">{"".join(rows)}</table>',
        _p(
            escape(
                "；".join(
                    f"{LABELS[s]}：{LEGEND[s]}"
                    for s in (State.FAIL, State.PENDING, State.UNKNOWN, State.NOT_SCANNED)
                )
            )
        ),
        _p(f"{escape(notice.organisation)}<br>{escape(fmt_date(report.started_at, tz))}"),
    ]
    return _page(body)
