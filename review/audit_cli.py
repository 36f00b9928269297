"""``badgewatch audit list|export|verify``: the lasting audit trail, for operators and auditors."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from reports.render.csvout import render_csv
from reports.render.textout import render_text
from reports.render.xlsxout import render_xlsx
from reports.tabular import Column, Document, Kind, Sheet
from review.audit import VIA_LABELS, Entry, Filters, list_events
from storage import audit
from storage.config import Config
from storage.db import DatabaseError, make_engine, upgrade
from storage.files import write_atomic

_SUFFIX = {".csv": "csv", ".xlsx": "xlsx", ".json": "json", ".txt": "text"}


def _zone(cfg: Config) -> ZoneInfo:
    # Beijing time unless the configuration names another zone (a ``timezone`` setting).
    return ZoneInfo(str(getattr(cfg, "timezone", "") or "Asia/Shanghai"))


def _engine(cfg: Config) -> Engine:
    try:
        engine = make_engine(cfg.database_url)
        upgrade(engine)
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from exc
    return engine


def _moment(text: str | None, zone: ZoneInfo, end: bool) -> dt.datetime | None:
    """A date (the whole day: ``--until`` includes it) or a date and time, in local time."""
    if not text:
        return None
    try:
        if len(text) <= 10:
            day = dt.date.fromisoformat(text)
            start = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), zone)
            return start.astimezone(dt.UTC)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"“{text}”不是日期（2026-12-01）或时间（2026-12-01T08:30）") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


def _document(events: list[Entry], zone: ZoneInfo, title: str) -> Document:
    columns = [
        Column("时间（北京时间）" if zone.key == "Asia/Shanghai" else f"时间（{zone.key}）", Kind.TEXT, 19),
        Column("事件", Kind.TEXT, 16),
        Column("操作人", Kind.TEXT, 14),
        Column("渠道", Kind.TEXT, 8),
        Column("来源", Kind.TEXT, 22),
        Column("对象", Kind.TEXT, 30),
        Column("说明", Kind.TEXT, 50),
    ]
    rows: list[list[Any]] = [
        [
            e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            e.kind_label,
            e.actor,
            VIA_LABELS.get(e.via, e.via),
            e.client,
            e.subject,
            e.summary(),
        ]
        for e in events
    ]
    return Document(
        title=title,
        sheets=[
            Sheet(
                title="审计记录",
                name="审计记录",
                columns=columns,
                rows=rows,
                empty_text="（没有符合条件的记录）",
            )
        ],
        subtitle=f"共{len(rows)}条。",
        footer="badgewatch 网标巡检生成",
    )


def _emit(cfg: Config, events: list[Entry], fmt: str, output: str | None) -> None:
    zone = _zone(cfg)
    data: bytes
    if fmt == "json":
        payload = {"events": [e.to_dict() for e in events]}
        data = (json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n").encode("utf-8")
    else:
        doc = _document(events, zone, "审计记录")
        if fmt == "csv":
            data = render_csv(doc)
        elif fmt == "xlsx":
            if not output:
                raise click.UsageError("xlsx 格式需要用 -o 指定输出文件")
            data = render_xlsx(doc)
        else:
            tty = output is None and sys.stdout.isatty()
            width = max(shutil.get_terminal_size((160, 40)).columns, 80) if tty else 160
            data = render_text(doc, width=width, color=tty).encode("utf-8")
    if output:
        path = Path(output)
        write_atomic(path, data)
        click.echo(f"已写入 {path}（{len(events)}条）", err=True)
    else:
        click.echo(data, nl=False)


def _filters(
    cfg: Config,
    since: str | None,
    until: str | None,
    user: str | None,
    kinds: tuple[str, ...],
    report_id: int | None,
    limit: int | None,
) -> Filters:
    zone = _zone(cfg)
    return Filters(_moment(since, zone, False), _moment(until, zone, True), user, kinds, report_id, limit)


def _run(cfg: Config, f: Filters, fmt: str | None, output: str | None) -> None:
    fmt = fmt or (_SUFFIX.get(Path(output).suffix.lower(), "text") if output else "text")
    engine = _engine(cfg)
    try:
        with Session(engine) as session:
            events = list_events(session, f)
    finally:
        engine.dispose()
    _emit(cfg, events, fmt, output)


def _common(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--since", default=None, help="起始日期或时间（含），如 2026-12-01 或 2026-12-01T08:00"
            ),
            click.option("--until", default=None, help="截止日期（含当天）或时间（不含）"),
            click.option("--user", default=None, help="只列此用户的操作（或与此账号有关的登录事件）"),
            click.option(
                "--kind",
                "kinds",
                multiple=True,
                help="事件类型，可多次给出；以“.”结尾表示前缀，如 report. 或 report.rejected",
            ),
            click.option(
                "--report", "report_id", type=int, default=None, help="只列某份年度报告（编号）的事件"
            ),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(["text", "csv", "xlsx", "json"]),
                default=None,
                help="输出格式（默认按 -o 的扩展名，否则 text）",
            ),
        ]
    ):
        fn = option(fn)
    return fn


@click.group("audit")
def audit_group() -> None:
    """审计记录：年度报告的提交与审核、登录与账号事件（只增不改）。"""


@audit_group.command("list")
@_common
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True, help="最多列出最近的条数")
@click.option("-o", "--output", default=None, help="写入文件")
@click.pass_obj
def audit_list(
    cfg: Config,
    since: str | None,
    until: str | None,
    user: str | None,
    kinds: tuple[str, ...],
    report_id: int | None,
    fmt: str | None,
    limit: int,
    output: str | None,
) -> None:
    """列出审计记录（默认最近 200 条，按时间先后）。"""
    _run(cfg, _filters(cfg, since, until, user, kinds, report_id, limit), fmt, output)


@audit_group.command("export")
@_common
@click.option("-o", "--output", required=True, help="输出文件（.xlsx / .csv / .json）")
@click.pass_obj
def audit_export(
    cfg: Config,
    since: str | None,
    until: str | None,
    user: str | None,
    kinds: tuple[str, ...],
    report_id: int | None,
    fmt: str | None,
    output: str,
) -> None:
    """导出审计记录（全部符合条件的记录）到文件。"""
    _run(cfg, _filters(cfg, since, until, user, kinds, report_id, None), fmt, output)


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="JSON 输出")
@click.pass_obj
def audit_verify(cfg: Config, as_json: bool) -> None:
    """核对审计记录的哈希链：任何一条被改动或删除都会被发现（退出码 1）。"""
    engine = _engine(cfg)
    try:
        with Session(engine) as session:
            check = audit.verify(session)
    finally:
        engine.dispose()
    if as_json:
        click.echo(
            json.dumps(
                {"ok": check.ok, "count": check.count, "head": check.head, "broken_at": check.broken_at},
                ensure_ascii=False,
            )
        )
    elif check.ok:
        click.echo(f"审计记录完整：共{check.count}条，哈希链无断裂。")
        click.echo(f"最新哈希：{check.head}（请另行保存，以便日后核对）")
    else:
        click.echo(f"审计记录被改动：{check.problem}。", err=True)
    if not check.ok:
        sys.exit(1)


COMMANDS = [audit_group]
