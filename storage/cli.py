"""Commands of the storage area: ``badgewatch init`` and ``badgewatch registry import|export``.

Each says first which database it works on (:func:`storage.db.describe_database`).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import click
import sqlalchemy as sa

from storage.config import Config
from storage.db import DatabaseError, describe_database, make_engine, upgrade
from storage.registry import (
    ImportRefused,
    ImportReport,
    RegistryFileError,
    export_registry,
    import_registry,
)

# How many row errors to print before summarising (all of them are in --skip-invalid's file).
MAX_SHOWN_ERRORS = 200


class CommandError(click.ClickException):
    """A refusal shown as it is written (Chinese), without click's English ``Error:`` prefix."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), err=True)


def _config(ctx: click.Context) -> Config:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Config) else Config.load()


@click.command("init")
@click.pass_context
def init(ctx: click.Context) -> None:
    """创建或升级数据库（create or upgrade the database to the latest schema）."""
    cfg = _config(ctx)
    where = describe_database(cfg.database_url)
    try:
        revision = upgrade(cfg.database_url)
    except DatabaseError as exc:
        raise CommandError(str(exc)) from exc
    click.echo(f"数据库已就绪（版本 {revision}）：{where}")


@click.group("registry")
def registry() -> None:
    """登记库：导入与导出（registry import and export）."""


def _print_errors(report: ImportReport) -> None:
    errors = report.all_errors()
    for i, (table, error) in enumerate(errors):
        if i == MAX_SHOWN_ERRORS:
            click.echo(f"……另有 {len(errors) - MAX_SHOWN_ERRORS} 条错误未显示", err=True)
            break
        click.echo(f"  [{table}] {error}", err=True)


DRY_RUN = "【仅检查】"


def _sqlite_file_missing(url: str) -> bool:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return False
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:":
        return False
    return not Path(db).exists()


def _print_reading(report: ImportReport) -> None:
    """How the file was read: where the header is, what was skipped or ignored."""
    if report.title_rows:
        titles = "、".join(f"第{line}行“{text[:40]}”" for line, text in report.title_rows[:3])
        click.echo(f"表头在第{report.header_line}行；其上的标题已跳过：{titles}")
    if report.offices_file:
        click.echo(f"编办表：{report.offices_file}（{report.office_rows} 行）")
    if report.ignored_columns:
        click.echo(f"已忽略无法识别的列：{'、'.join(report.ignored_columns)}")
    for warning in report.warnings[:MAX_SHOWN_ERRORS]:
        click.echo(f"  提示：{warning}")


def _print_summary(report: ImportReport) -> None:
    _print_reading(report)
    if report.dry_run:
        click.echo(
            f"{DRY_RUN}检查完成，未写入数据库：{report.rows} 行，有效 {report.accepted} 行，"
            f"有错误 {len(report.bad_lines)} 行。去掉 --dry-run 即正式导入。"
        )
        return
    click.echo(f"导入完成：{report.rows} 行，导入 {report.accepted} 行，拒绝 {len(report.bad_lines)} 行。")
    click.echo(f"  编办：{report.offices}")
    click.echo(f"  机构：{report.units}")
    click.echo(f"  网站：{report.websites}")
    click.echo(f"  域名：{report.domains}")
    for rejected in (report.rejected_file, report.rejected_offices_file):
        if rejected is not None:
            click.echo(f"被拒绝的行及原因已写入：{rejected}（改正后可直接重新导入该文件）")


@registry.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--offices",
    "offices",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="编办表（CSV 或 XLSX）；XLSX 登记表可在“编办”工作表中提供",
)
@click.option("--dry-run", is_flag=True, help="仅检查，不写入数据库")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="导入有效行，被拒绝的行及原因写入 <文件名>.rejected.xlsx（CSV 输入则为 .rejected.csv）",
)
@click.pass_context
def import_cmd(
    ctx: click.Context, file: Path, offices: Path | None, dry_run: bool, skip_invalid: bool
) -> None:
    """导入登记表 FILE（CSV 或 XLSX）。默认全部有效才导入。"""
    cfg = _config(ctx)
    # Refuse a missing file before touching the database: a mistyped name must not leave a new, empty
    # database behind.
    for given in (file, offices):
        if given is not None and not given.is_file():
            raise CommandError(f"导入被拒绝：{given}：文件不存在")
    url = cfg.database_url
    if dry_run:
        click.echo(f"{DRY_RUN}只检查 {file.name}，不写入数据库（--dry-run）")
        if _sqlite_file_missing(url):
            # Nothing to check against but the file itself: check in memory, create no database file.
            click.echo(f"数据库：{describe_database(url, creating=False)}，仅检查时不新建：按空库检查")
            url = "sqlite://"
    if url == cfg.database_url:
        click.echo(f"数据库：{describe_database(url)}")
    try:
        engine = make_engine(url)
    except DatabaseError as exc:
        raise CommandError(str(exc)) from exc
    try:
        upgrade(engine)
        report = import_registry(engine, file, offices, dry_run=dry_run, skip_invalid=skip_invalid)
    except RegistryFileError as exc:
        what = f"{DRY_RUN}文件无法导入" if dry_run else "导入被拒绝"
        raise CommandError(f"{what}：{exc}") from exc
    except ImportRefused as exc:
        r = exc.report
        _print_reading(r)
        bad = len(r.bad_lines) + len({e.line for e in r.office_errors})
        count = f"{file.name} 中有 {bad} 行错误（共 {len(r.all_errors())} 处）"
        if dry_run:
            click.echo(f"{DRY_RUN}{count}；正式导入时整个文件将被拒绝。未写入数据库。", err=True)
        else:
            click.echo(f"导入被拒绝：{count}，未写入任何数据。", err=True)
        _print_errors(r)
        click.echo("改正后重新导入，或使用 --skip-invalid 只导入有效行。", err=True)
        ctx.exit(1)
    except DatabaseError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        engine.dispose()
    if report.errors or report.office_errors:
        click.echo(f"以下 {len(report.all_errors())} 处错误所在的行未导入：", err=True)
        _print_errors(report)
    _print_summary(report)


@registry.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_cmd(ctx: click.Context, file: Path) -> None:
    """导出登记表到 FILE（.xlsx 含“编办”工作表；.csv 另写 <文件名>.编办.csv）。"""
    cfg = _config(ctx)
    click.echo(f"数据库：{describe_database(cfg.database_url)}")
    try:
        engine = make_engine(cfg.database_url)
    except DatabaseError as exc:
        raise CommandError(str(exc)) from exc
    try:  # errors of the tree (checks/errors.py) are reported by the root command group
        upgrade(engine)
        result = export_registry(engine, file)
    finally:
        engine.dispose()
    click.echo(f"已导出 {result.rows} 行到 {result.file}")
    if result.offices_file is not None:
        click.echo(f"编办表（{result.offices} 行）：{result.offices_file}")


COMMANDS: list[click.Command] = [init, registry]
