"""Commands: ``report coverage|noncompliance|annual``, ``annual import``, ``notify``."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from reports.annual_import import AnnualImportError, import_annual
from reports.annual_report import annual_document, annual_listing
from reports.coverage import parse_published_tsv
from reports.delivery.outbox import RetryPolicy
from reports.documents import coverage_document, noncompliance_document
from reports.letter import ListNotice
from reports.notify import describe_plan, plan, run
from reports.render import render_csv, render_html, render_text, render_xlsx
from reports.source import coverage_from_db, noncompliance_from_db
from reports.tabular import Document
from storage.config import Config
from storage.db import make_engine
from storage.files import write_atomic
from storage.timefmt import fmt_time, local_date
from storage.types import utcnow

FORMATS = ("text", "csv", "xlsx", "html", "json")
_SUFFIX_FORMAT = {
    ".txt": "text",
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".html": "html",
    ".htm": "html",
    ".json": "json",
}


@contextmanager
def _session(ctx: click.Context) -> Iterator[Session]:
    cfg: Config = ctx.obj if isinstance(ctx.obj, Config) else Config.load()
    engine = make_engine(cfg.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
            session.commit()
    # Errors of the tree (checks/errors.py) and database errors are reported by the root command group.
    finally:
        engine.dispose()


def _config(ctx: click.Context) -> Config:
    return ctx.obj if isinstance(ctx.obj, Config) else Config.load()


def _format(fmt: str | None, output: str | None) -> str:
    if fmt:
        return fmt
    if output:
        return _SUFFIX_FORMAT.get(Path(output).suffix.lower(), "text")
    return "text"


def _emit(doc: Document, payload: dict[str, Any], fmt: str, output: str | None) -> None:
    data: bytes
    if fmt == "json":
        data = (json.dumps(payload, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    elif fmt == "csv":
        data = render_csv(doc)
    elif fmt == "xlsx":
        if not output:
            raise click.UsageError("xlsx 格式需要用 -o 指定输出文件")
        data = render_xlsx(doc)
    elif fmt == "html":
        data = render_html(doc).encode("utf-8")
    else:
        tty = output is None and sys.stdout.isatty()
        width = max(shutil.get_terminal_size((160, 40)).columns, 80) if tty else 160
        data = render_text(doc, width=width, color=tty).encode("utf-8")
    if output:
        path = Path(output)
        write_atomic(path, data)
        click.echo(f"已写入 {path}", err=True)
    else:
        click.echo(data, nl=False)  # bytes go to the binary stream unchanged


_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="输出格式（默认按 -o 的扩展名，否则 text）",
)
_output_option = click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default=None, help="输出文件"
)


@click.group("report")
def report_group() -> None:
    """报表：覆盖率、不合规清单、年度报告。"""


@report_group.command("coverage")
@click.option("--office", "office", default=None, help="编办代码（默认唯一的顶级编办）")
@click.option("--as-of", "as_of", default=None, help="统计日期 YYYY-MM-DD（默认今天）")
@click.option("--scan", "scan_id", type=int, default=None, help="巡检编号（默认最近一次完成的巡检）")
@click.option(
    "--compare",
    "compare",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="与已公布的表（如附件1，制表符或逗号分隔）逐项核对",
)
@_format_option
@_output_option
@click.pass_context
def coverage_cmd(
    ctx: click.Context,
    office: str | None,
    as_of: str | None,
    scan_id: int | None,
    compare: str | None,
    fmt: str | None,
    output: str | None,
) -> None:
    """域名注册及网站标识申请情况（覆盖率表）。"""
    try:
        day = dt.date.fromisoformat(as_of) if as_of else local_date(utcnow(), _config(ctx).timezone)
    except ValueError:
        raise click.BadParameter(f"日期应为 YYYY-MM-DD，不是 {as_of!r}", param_hint="--as-of") from None
    published = None
    if compare:
        try:
            published = parse_published_tsv(Path(compare).read_text(encoding="utf-8-sig"), Path(compare).name)
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.ClickException(str(exc)) from exc
    with _session(ctx) as session:
        table = coverage_from_db(
            session, office, day, scan_id=scan_id, published=published, tz=_config(ctx).timezone
        )
    _emit(coverage_document(table), table.to_dict(), _format(fmt, output), output)


@report_group.command("noncompliance")
@click.option("--office", "office", default=None, help="编办代码（含下级编办）")
@click.option("--scan", "scan_id", type=int, default=None, help="巡检编号（默认最近一次完成的巡检）")
@click.option("--base-url", envvar="BADGEWATCH_CONSOLE_URL", default="", help="审核台地址，用于证据链接")
@_format_option
@_output_option
@click.pass_context
def noncompliance_cmd(
    ctx: click.Context,
    office: str | None,
    scan_id: int | None,
    base_url: str,
    fmt: str | None,
    output: str | None,
) -> None:
    """不合规清单（按编办，每个编办一张表）。"""
    cfg = _config(ctx)
    notice = ListNotice.from_config(cfg)
    with _session(ctx) as session:
        report = noncompliance_from_db(
            session, scan_id, office, base_url=base_url or cfg.console_url, tz=cfg.timezone
        )
    doc = noncompliance_document(report, notice.footer(report))
    _emit(doc, report.to_dict(), _format(fmt, output), output)


@report_group.command("annual")
@click.option("--year", type=int, required=True, help="报告年度")
@click.option("--office", "office", default=None, help="编办代码（含下级编办）")
@_format_option
@_output_option
@click.pass_context
def annual_report_cmd(
    ctx: click.Context, year: int, office: str | None, fmt: str | None, output: str | None
) -> None:
    """年度报告审核表：填报内容与巡检结果（字段3、5）对照。"""
    with _session(ctx) as session:
        listing = annual_listing(session, year, office)
        doc, payload = annual_document(listing), listing.to_dict()
    _emit(doc, payload, _format(fmt, output), output)


@click.group("annual")
def annual_group() -> None:
    """年度报告。"""


@annual_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--year", type=int, default=None, help="文件中没有“年度”列时使用的年度")
@click.pass_context
def annual_import_cmd(ctx: click.Context, file: str, year: int | None) -> None:
    """导入单位提交的年度报告（CSV 或 XLSX，格式见 docs/annual-report-format.md）。"""
    with _session(ctx) as session:
        try:
            result = import_annual(session, Path(file), year=year)
        except AnnualImportError as exc:
            session.rollback()
            raise click.ClickException(str(exc)) from exc
    click.echo(result.summary())
    for report_id, issues in result.disagreements.items():
        for issue in issues:
            click.echo(f"  报告 {report_id}：{issue}")


@click.command("notify")
@click.option("--scan", "scan_id", type=int, default=None, help="巡检编号（默认最近一次完成的巡检）")
@click.option("--office", default=None, help="只发送该编办及其下级编办的清单和退回通知（不发送域名中心汇总）")
@click.option("--dry-run", is_flag=True, help="只显示将发送的消息，不记录、不发送")
@click.option("--base-url", envvar="BADGEWATCH_CONSOLE_URL", default="", help="审核台地址，用于证据链接")
@click.option(
    "--retry-wait", type=float, default=2.0, show_default=True, help="首次重试前等待的秒数（之后加倍）"
)
@click.pass_context
def notify_cmd(
    ctx: click.Context,
    scan_id: int | None,
    office: str | None,
    dry_run: bool,
    base_url: str,
    retry_wait: float,
) -> None:
    """发送通知：各编办的不合规清单（邮件），年度报告退回原因（邮件和短信）。"""
    cfg = _config(ctx)
    with _session(ctx) as session:
        if dry_run:
            click.echo(describe_plan(session, plan(session, cfg, scan_id, base_url, office), cfg.timezone))
            return
        result = run(
            session,
            cfg,
            scan_id=scan_id,
            base_url=base_url,
            policy=RetryPolicy(backoff_s=retry_wait),
            office=office,
        )
    d = result.dispatch
    for s in result.plan.skipped:
        click.echo(f"无法发送：{s}", err=True)
    click.echo(
        f"新记录{result.recorded}条（{result.already}条此前已记录），本次发送成功{len(d.sent)}条，"
        f"待重试{len(d.retry)}条，已放弃{len(d.failed)}条，未到重试时间{len(d.waiting)}条。"
    )
    for n in d.sent:
        click.echo(f"  已发送 {n.channel} → {n.recipient}：{n.subject}")
    for n in d.retry + d.failed:
        click.echo(f"  失败 {n.channel} → {n.recipient}（已尝试{n.attempts}次）：{n.last_error}", err=True)
    for n in d.waiting:
        when = fmt_time(n.next_attempt_at, cfg.timezone, seconds=True, label=True)
        click.echo(
            f"  等待 {n.channel} → {n.recipient}（已尝试{n.attempts}次，{when}之后重试）：{n.last_error}",
            err=True,
        )
    if not d.ok:
        ctx.exit(1)


COMMANDS: list[click.Command] = [report_group, annual_group, notify_cmd]
