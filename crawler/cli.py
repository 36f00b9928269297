"""Commands of the crawler: ``scan``, ``worker``, ``inspect``, ``recheck``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from checks.reasons import UnknownReasonError, describe
from storage.config import Config

if TYPE_CHECKING:
    from checks.expected import Expected
    from crawler.inspect import Inspection
    from crawler.vantage import VantageError


def _config(ctx: click.Context) -> Config:
    obj = ctx.obj
    return obj if isinstance(obj, Config) else Config.load()


@click.command("scan")
@click.option("--office", "office", default=None, help="只巡检该编办（含下级）的网站和域名")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="最多巡检 N 个网站")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="全局并发请求数")
@click.option(
    "--render",
    type=click.Choice(["auto", "never", "always"]),
    default=None,
    help="浏览器渲染：auto（仅静态无法判定时）、never、always",
)
@click.option("--resume", "resume", type=int, default=None, metavar="SCAN_ID", help="续扫被中断的巡检")
@click.option(
    "--second-pass",
    "second_pass",
    type=int,
    default=None,
    metavar="SCAN_ID",
    help="第二遍巡检：再次访问该次巡检中尚待确认的问题（确认间隔见 confirm_interval_h）",
)
@click.option("--json", "as_json", is_flag=True, help="结束时以 JSON 输出汇总")
@click.option(
    "--distributed",
    is_flag=True,
    help="分布式巡检：把任务放入 Redis，由各机上的 badgewatch worker 完成（需 PostgreSQL 与 Redis）",
)
@click.option(
    "--no-wait", "no_wait", is_flag=True, help="与 --distributed 同用：放入任务后立即返回，不等待结束"
)
@click.option(
    "--skip-vantage",
    "skip_vantage",
    is_flag=True,
    help="跳过开始前的参照网站检查（vantage_urls；检查失败时退出码为 3）",
)
@click.pass_context
def scan(
    ctx: click.Context,
    office: str | None,
    limit: int | None,
    concurrency: int | None,
    render: str | None,
    resume: int | None,
    second_pass: int | None,
    as_json: bool,
    distributed: bool,
    no_wait: bool,
    skip_vantage: bool,
) -> None:
    """巡检：解析域名、访问网站首页及所需子资源、检查并保存证据与结论。

    开始前先访问配置的参照网站（vantage_urls）；大多访问失败时不建立巡检记录，退出码为 3。
    """
    # Here, not at the top: every command module loads with the command line; Scrapy and Twisted load
    # only with the command that needs them.
    from crawler.scanrun import run_scan
    from crawler.vantage import VantageError

    config = _config(ctx)
    if no_wait and not distributed:
        raise click.ClickException("--no-wait 只能与 --distributed 一起使用")
    if second_pass is not None and (distributed or resume is not None or office or limit is not None):
        raise click.ClickException("--second-pass 只能单独使用（范围取自该次巡检）")
    try:
        if distributed:
            # Here, not at the top: every command module loads with the command line; Scrapy and Twisted load
            # only with the command that needs them.
            from crawler.distributed_run import start_distributed_scan

            if concurrency:
                raise click.ClickException(
                    "分布式巡检的并发数在各工作进程上设置：badgewatch worker --concurrency N"
                )
            summary: Any = start_distributed_scan(
                config,
                office=office,
                limit=limit,
                render=render,
                resume=resume,
                wait=not no_wait,
                skip_vantage=skip_vantage,
            )
        else:
            summary = run_scan(
                config,
                office=office,
                limit=limit,
                concurrency=concurrency,
                render=render,
                resume=resume,
                second_pass=second_pass,
                skip_vantage=skip_vantage,
            )
    except VantageError as exc:
        vantage_exit(exc, as_json)
    if distributed and no_wait:
        if as_json:
            click.echo(
                json.dumps(
                    {"scan_id": summary.scan_id, "status": summary.status, "seeded": summary.seeded},
                    ensure_ascii=False,
                )
            )
        else:
            click.echo(f"巡检 #{summary.scan_id}：已放入 {summary.seeded} 个对象，等待工作进程")
        return
    c = summary.counters
    if as_json:
        click.echo(
            json.dumps(
                {"scan_id": summary.scan_id, "status": summary.status, "counters": c},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        _print_summary(summary, config)
    if summary.status != "finished":
        sys.exit(1)


# What the terminal says (Chinese): the codes are in --json and the logs.
_SCAN_STATUS_ZH = {
    "finished": "已完成",
    "interrupted": "已中断（可续扫）",
    "failed": "失败",
    "running": "进行中",
}
_VERDICT_ZH = {"pass": "合规", "fail": "不合规", "warn": "提示", "unknown": "无法判定"}


def _reason_zh(code: str) -> str:
    try:
        return describe(code).message
    except UnknownReasonError:
        return "其他原因"


def _print_summary(summary: Any, config: Config) -> None:
    """The scan's summary for the person at the terminal."""
    c = summary.counters
    click.echo(f"巡检 #{summary.scan_id}：{_SCAN_STATUS_ZH.get(summary.status, summary.status)}")
    click.echo(
        f"  网站 {c.get('sites', 0)} 个，域名 {c.get('domains', 0)} 个，单位 {c.get('units', 0)} 个；"
        f"本次完成 {c.get('subjects', 0)} 个对象（续扫前已完成 {c.get('subjects_before_resume', 0)}），"
        f"用时 {c.get('elapsed_s', 0)} 秒，{c.get('subjects_per_s', 0)} 个/秒，"
        f"请求 {c.get('requests', 0)} 次，渲染 {c.get('renders', 0)} 页"
    )
    if "second_pass" in c:
        click.echo(f"  第二遍巡检：再次访问 {c['second_pass'].get('subjects', 0)} 个尚待确认的对象")
    by_status = c.get("by_status", {})
    order = list(_VERDICT_ZH)
    shown = sorted(by_status.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    click.echo("  结论：" + "，".join(f"{_VERDICT_ZH.get(k, k)} {v} 项" for k, v in shown))
    confirmation = c.get("confirmation")
    if confirmation:
        hours = f"{config.confirm_interval_h:g}"
        failures, confirmed, pending = (confirmation[k] for k in ("failures", "confirmed", "pending"))
        click.echo(
            f"  问题确认：不合规 {failures} 项，其中已确认 {confirmed} 项、待确认 {pending} 项"
            f"（首次发现的问题需间隔 {hours} 小时再次发现才列入不合规清单）"
        )
    problems = c.get("problems", {})
    if problems:
        click.echo("  问题（按原因）：")
        merged: dict[str, int] = {}
        for reason, n in problems.items():
            text = _reason_zh(reason)
            merged[text] = merged.get(text, 0) + n
        for text, n in sorted(merged.items(), key=lambda kv: -kv[1])[:20]:
            click.echo(f"    {text}：{n} 项")
    if getattr(summary, "log_path", ""):
        extra = (
            f"，其中 Scrapy 等组件的英文记录 {summary.library_records} 条（终端未显示，-v 可显示）"
            if summary.library_records
            else ""
        )
        click.echo(f"  详细日志：{summary.log_path}{extra}")


def vantage_exit(exc: VantageError, as_json: bool) -> NoReturn:
    """The vantage check failed: the message on the terminal (standard error, also with ``--json``),
    the machine-readable failure on standard output with ``--json``; exit status 3."""
    # Here, not at the top: every command module loads with the command line; Scrapy and Twisted load
    # only with the command that needs them.
    from crawler.vantage import EXIT_VANTAGE

    click.echo(str(exc), err=True)
    if as_json:
        click.echo(json.dumps(exc.to_json(), ensure_ascii=False, indent=2))
    sys.exit(EXIT_VANTAGE)


@click.command("worker")
@click.option(
    "--scan", "scan_id", type=int, default=None, help="要参与的分布式巡检编号（只有一个在进行时可省略）"
)
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="本进程的全局并发请求数")
@click.option("--json", "as_json", is_flag=True, help="结束时以 JSON 输出汇总")
@click.option(
    "--skip-vantage", "skip_vantage", is_flag=True, help="跳过开始前的参照网站检查（检查失败时退出码为 3）"
)
@click.pass_context
def worker(
    ctx: click.Context, scan_id: int | None, concurrency: int | None, as_json: bool, skip_vantage: bool
) -> None:
    """分布式巡检的工作进程：从 Redis 领取网站和域名并巡检，队列取空且无人处理中时退出。"""
    # Here, not at the top: every command module loads with the command line; Scrapy and Twisted load
    # only with the command that needs them.
    from crawler.distributed_run import run_worker
    from crawler.vantage import VantageError

    config = _config(ctx)
    try:
        summary = run_worker(config, scan_id=scan_id, concurrency=concurrency, skip_vantage=skip_vantage)
    except VantageError as exc:
        vantage_exit(exc, as_json)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "scan_id": summary.scan_id,
                    "subjects": summary.subjects,
                    "scan_status": summary.status,
                    "counters": summary.counters,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        click.echo(
            f"巡检 #{summary.scan_id}：本进程完成 {summary.subjects} 个对象；"
            f"巡检状态：{_SCAN_STATUS_ZH.get(summary.status, summary.status)}"
        )


@click.command("recheck")
@click.option("--scan", "scan_id", type=int, required=True, help="要重新判定的巡检编号")
@click.pass_context
def recheck(ctx: click.Context, scan_id: int) -> None:
    """用已保存的证据和当前的检查规则重新判定某次巡检的全部结论（不访问网络）。"""
    # Here, not at the top: every command module loads with the command line; Scrapy and Twisted load
    # only with the command that needs them.
    from crawler.checking import rules_from_config
    from crawler.recheck import recheck_scan
    from storage.db import make_engine
    from storage.evidence import EvidenceStore

    config = _config(ctx)
    db = make_engine(config.database_url)
    try:
        summary = recheck_scan(db, scan_id, EvidenceStore(config.evidence_dir), rules_from_config(config))
    finally:
        db.dispose()
    click.echo(
        f"巡检 #{scan_id}：重新判定 {summary.subjects} 个对象，{summary.changed} 条结论有变化"
        + (f"，{summary.missing_evidence} 个对象的证据已缺失" if summary.missing_evidence else "")
    )


@click.command("inspect")
@click.argument("target")
@click.option(
    "--kind",
    type=click.Choice(["党政机关", "事业单位"]),
    default=None,
    help="单位类别；不给时只报告网站标识的类型，不判定是否相符",
)
@click.option(
    "--site",
    "site",
    default=None,
    metavar="URL",
    help="按登记信息中该网站的条目判定（单位类别、备案号、标识码、标识代码、域名）",
)
@click.option(
    "--render", is_flag=True, help="用 Chromium 渲染网页后再判定（本地文件所需资源仍从保存目录读取）"
)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@click.pass_context
def inspect(
    ctx: click.Context, target: str, kind: str | None, site: str | None, render: bool, as_json: bool
) -> None:
    """检查一个网页（URL，或保存的网页文件/目录）并输出每项结论。

    保存的网页（浏览器“网页，全部”、wget/HTTrack 镜像）引用的脚本、框架和图片从文件旁读取；
    读不到的按获取失败处理（结论为“无法判定”，不判为缺失）。
    """
    # Here, not at the top: every command module loads with the command line; Scrapy and Twisted load
    # only with the command that needs them.
    from crawler.inspect import (
        InspectError,
        expected_for_inspect,
        inspect_file,
        inspect_url,
        resolve_target,
    )

    config = _config(ctx)
    page = resolve_target(target)
    if render and not Path(config.chromium_path).is_file():
        raise InspectError(
            f"未找到 Chromium：{config.chromium_path}（scripts/system-deps.sh 可安装 Debian 的 chromium，"
            "或在配置中设置 chromium_path）"
        )
    url = page if isinstance(page, str) else ""
    expected, notes = expected_for_inspect(kind, site, url, config)
    for note in notes:
        click.echo(f"提示：{note}", err=True)
    if isinstance(page, Path):
        result = inspect_file(page, expected, config, render=render)
    else:
        result = inspect_url(page, expected, config, render=render)
    if render and not result.rendered:
        why = "；".join(result.render_errors) or "页面无法读取或渲染未完成"
        click.echo(f"提示：未能用 Chromium 渲染（{why}），结论来自静态读取", err=True)
    if as_json:
        click.echo(json.dumps(result.verdicts, ensure_ascii=False, indent=2))
        return
    _print_page(result, expected)
    for name, v in result.verdicts.items():
        extra = {
            k: val for k, val in v.items() if k not in ("status", "reason", "message", "detail", "evidence")
        }
        click.echo(f"{name:10s} {v['status']:8s} {v['reason']:28s} {v['message']}")
        if v.get("detail"):
            click.echo(f"{'':10s} {v['detail']}")
        shown = {k: val for k, val in extra.items() if val not in (None, "", [], {})}
        if shown:
            click.echo(f"{'':10s} " + "  ".join(f"{k}={val}" for k, val in shown.items()))


def _print_page(result: Inspection, expected: Expected) -> None:
    """How the page was read: for a saved page, its address and the files read beside it."""
    # Here, not at the top: every command module loads with the command line; Scrapy and Twisted load
    # only with the command that needs them.
    from crawler.saved import URL_FROM_ZH

    saved = result.saved
    if saved is not None:
        click.echo(f"网页文件  {saved.file}")
        click.echo(f"页面地址  {saved.url}（{URL_FROM_ZH[saved.url_from]}）")
        if result.loaded:
            names = sorted({str(p.relative_to(saved.root)) for p in result.loaded.values()})
            click.echo("已读取    " + "、".join(names))
        for url, why in result.missing.items():
            click.echo(f"未能读取  {url}：{why}")
    if result.rendered:
        click.echo("已渲染    Chromium")
    if expected.unit_kind is None:
        click.echo("单位类别  未指定：只报告网站标识的类型，不判定")
    click.echo("")


COMMANDS = [scan, worker, inspect, recheck]
