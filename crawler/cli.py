"""Commands of the crawler: ``scan``, ``worker``, ``inspect``, ``recheck``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from storage.config import Config


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
@click.option("--json", "as_json", is_flag=True, help="结束时以 JSON 输出汇总")
@click.option(
    "--distributed",
    is_flag=True,
    help="分布式巡检：把任务放入 Redis，由各机上的 badgewatch worker 完成（需 PostgreSQL 与 Redis）",
)
@click.option(
    "--no-wait", "no_wait", is_flag=True, help="与 --distributed 同用：放入任务后立即返回，不等待结束"
)
@click.pass_context
def scan(
    ctx: click.Context,
    office: str | None,
    limit: int | None,
    concurrency: int | None,
    render: str | None,
    resume: int | None,
    as_json: bool,
    distributed: bool,
    no_wait: bool,
) -> None:
    """巡检：解析域名、访问网站首页及所需子资源、检查并保存证据与结论。"""
    from crawler.scanrun import ScanError, run_scan
    from storage.db import DatabaseError

    config = _config(ctx)
    if no_wait and not distributed:
        raise click.ClickException("--no-wait 只能与 --distributed 一起使用")
    try:
        if distributed:
            from crawler.distributed_run import start_distributed_scan

            if concurrency:
                raise click.ClickException(
                    "分布式巡检的并发数在各工作进程上设置：badgewatch worker --concurrency N"
                )
            summary: Any = start_distributed_scan(
                config, office=office, limit=limit, render=render, resume=resume, wait=not no_wait
            )
        else:
            summary = run_scan(
                config, office=office, limit=limit, concurrency=concurrency, render=render, resume=resume
            )
    except (ScanError, DatabaseError) as exc:
        raise click.ClickException(str(exc)) from exc
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
        click.echo(f"巡检 #{summary.scan_id}：{summary.status}")
        click.echo(
            f"  网站 {c.get('sites', 0)} 个，域名 {c.get('domains', 0)} 个，单位 {c.get('units', 0)} 个；"
            f"本次完成 {c.get('subjects', 0)} 个对象（续扫前已完成 {c.get('subjects_before_resume', 0)}），"
            f"用时 {c.get('elapsed_s', 0)} 秒，{c.get('subjects_per_s', 0)} 个/秒，"
            f"请求 {c.get('requests', 0)} 次，渲染 {c.get('renders', 0)} 页"
        )
        by_status = c.get("by_status", {})
        click.echo("  结论：" + "，".join(f"{k} {v}" for k, v in sorted(by_status.items())))
        problems = c.get("problems", {})
        if problems:
            click.echo("  问题（按原因）：")
            for reason, n in list(problems.items())[:20]:
                click.echo(f"    {reason}: {n}")
    if summary.status != "finished":
        sys.exit(1)


@click.command("worker")
@click.option(
    "--scan", "scan_id", type=int, default=None, help="要参与的分布式巡检编号（只有一个在进行时可省略）"
)
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="本进程的全局并发请求数")
@click.option("--json", "as_json", is_flag=True, help="结束时以 JSON 输出汇总")
@click.pass_context
def worker(ctx: click.Context, scan_id: int | None, concurrency: int | None, as_json: bool) -> None:
    """分布式巡检的工作进程：从 Redis 领取网站和域名并巡检，队列取空且无人处理中时退出。"""
    from crawler.distributed_run import run_worker
    from crawler.scanrun import ScanError
    from storage.db import DatabaseError

    config = _config(ctx)
    try:
        summary = run_worker(config, scan_id=scan_id, concurrency=concurrency)
    except (ScanError, DatabaseError) as exc:
        raise click.ClickException(str(exc)) from exc
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
            f"巡检 #{summary.scan_id}：本进程完成 {summary.subjects} 个对象；巡检状态 {summary.status}"
        )


@click.command("recheck")
@click.option("--scan", "scan_id", type=int, required=True, help="要重新判定的巡检编号")
@click.pass_context
def recheck(ctx: click.Context, scan_id: int) -> None:
    """用已保存的证据和当前的检查规则重新判定某次巡检的全部结论（不访问网络）。"""
    from crawler.checking import rules_from_config
    from crawler.recheck import recheck_scan
    from storage.db import make_engine
    from storage.evidence import EvidenceStore

    config = _config(ctx)
    db = make_engine(config.database_url)
    try:
        summary = recheck_scan(db, scan_id, EvidenceStore(config.evidence_dir), rules_from_config(config))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()
    click.echo(
        f"巡检 #{scan_id}：重新判定 {summary.subjects} 个对象，{summary.changed} 条结论有变化"
        + (f"，{summary.missing_evidence} 个对象的证据已缺失" if summary.missing_evidence else "")
    )


@click.command("inspect")
@click.argument("target")
@click.option("--kind", type=click.Choice(["党政机关", "事业单位"]), default="党政机关", help="单位类别")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@click.pass_context
def inspect(ctx: click.Context, target: str, kind: str, as_json: bool) -> None:
    """检查一个网页（URL 或本地文件）并输出每项结论。"""
    from crawler.inspect import inspect_file, inspect_url

    config = _config(ctx)
    path = Path(target)
    if not target.startswith(("http://", "https://")) and path.exists():
        result: dict[str, Any] = inspect_file(path, kind, config)
    elif target.startswith(("http://", "https://")) or "." in target:
        url = target if "://" in target else "http://" + target
        result = inspect_url(url, kind, config)
    else:
        raise click.ClickException(f"既不是网址也不是存在的文件: {target}")
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    for name, v in result.items():
        extra = {
            k: val for k, val in v.items() if k not in ("status", "reason", "message", "detail", "evidence")
        }
        click.echo(f"{name:10s} {v['status']:8s} {v['reason']:28s} {v['message']}")
        if v.get("detail"):
            click.echo(f"{'':10s} {v['detail']}")
        shown = {k: val for k, val in extra.items() if val not in (None, "", [], {})}
        if shown:
            click.echo(f"{'':10s} " + "  ".join(f"{k}={val}" for k, val in shown.items()))


COMMANDS = [scan, worker, inspect, recheck]
