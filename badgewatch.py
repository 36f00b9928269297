"""badgewatch (网标巡检) command line: the one entry point.

Each area contributes its commands from its own ``cli`` module (``storage.cli``, ``simnet.cli``,
``crawler.cli``, ``reports.cli``, ``review.cli``, ``scheduler``); this module assembles them and
loads the configuration they share.

It is also the last seam of the error tree (``checks/errors.py``): any :class:`BadgewatchError` a
command lets through is printed as its (Chinese) message with exit code 1 and logged with its detail;
a database error SQLAlchemy raises past a command is translated the same way. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa

import crawler.cli
import reports.cli
import review.cli
import scheduler
import simnet.cli
import storage.cli
from checks.errors import BadgewatchError
from storage.config import Config

if TYPE_CHECKING:
    from rich.console import Console

    from simnet.runtime import SimNet

log = logging.getLogger("badgewatch")

# Modules that provide commands; each exposes ``COMMANDS``, a list of click commands. Imported by name
# above: a module that is missing or misspelt fails at start-up instead of its commands vanishing.
COMMAND_MODULES = (storage.cli, simnet.cli, crawler.cli, reports.cli, review.cli, scheduler)


class _Group(click.Group):
    """The root group: errors of the tree end as a message and exit code 1 (see the module's doc)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BadgewatchError as exc:
            log.debug("command failed", exc_info=True)
            raise click.ClickException(str(exc)) from exc
        except sa.exc.SQLAlchemyError as exc:
            log.error("database error: %s", exc)
            raise click.ClickException(
                f"数据库无法使用（是否已运行 badgewatch init？）：{getattr(exc, 'orig', None) or exc}"
            ) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="配置文件 (default: ./badgewatch.toml)",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """网标巡检 badgewatch: 网站标识、中文域名与备案号合规巡检。"""
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = Config.load(config_path)  # a ConfigError is reported by _Group


def _register() -> None:
    for module in COMMAND_MODULES:
        for command in module.COMMANDS:
            cli.add_command(command)


# The demo's confirmation interval: its second visit comes this many seconds after the first.
DEMO_INTERVAL_S = 20


@cli.command("demo")
@click.option(
    "--output",
    "output_dir",
    type=click.Path(file_okay=False),
    default="demo-output",
    show_default=True,
    help="演示数据库、证据与报表所在目录（每次运行前清空）",
)
@click.option(
    "--sample",
    type=click.Choice(["baoding", "catalogue"]),
    default="baoding",
    show_default=True,
    help="模拟互联网样例：保定市（附件1）或场景目录",
)
@click.option(
    "--office", default=None, help="只巡检该编办（默认：保定样例巡检容城县 130629，场景目录巡检全部）"
)
@click.option("--full", is_flag=True, help="巡检样例中的全部网站")
@click.option(
    "--distributed-pg",
    default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
    show_default=True,
    help="多机巡检演示用的 PostgreSQL（在其中建一个临时库，演示后删除）；设为空字符串则跳过",
)
@click.option(
    "--distributed-redis",
    default="redis://127.0.0.1:6379/0",
    show_default=True,
    help="多机巡检演示用的 Redis（键带临时前缀，演示后删除）",
)
def demo(
    output_dir: str, sample: str, office: str | None, full: bool, distributed_pg: str, distributed_redis: str
) -> None:
    """演示整个流程：启动模拟互联网，建库、导入登记表、巡检、生成报表、发送清单。

    Every step runs the real command in a child process, as an operator would, against the simulated
    internet (loopback only) and a local SMTP server that keeps what it receives under the output folder.
    """
    import datetime as dt
    import json
    import shutil
    import subprocess
    import sys

    from rich.console import Console

    from simnet.mailsink import MailSink
    from simnet.runtime import SimNet

    console = Console()
    out = Path(output_dir).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if office is None and sample == "baoding" and not full:
        office = "130629"
    scope = [] if full or office is None else ["--office", office]

    def step(title: str, *args: str, capture: bool = False, ok: tuple[int, ...] = (0,)) -> str:
        console.rule(f"[bold]{title}")
        console.print("[dim]$ badgewatch " + " ".join(args))
        proc = subprocess.run(
            [sys.executable, "-m", "badgewatch", *args],
            env=env,
            text=True,
            stdout=subprocess.PIPE if capture else None,
        )
        if proc.returncode not in ok:
            command = " ".join(args)
            raise click.ClickException(f"演示步骤失败：badgewatch {command}（退出码 {proc.returncode}）")
        return proc.stdout or ""

    console.rule("[bold]0. 启动模拟互联网 simnet（仅 127.0.0.0/8）")
    with SimNet(sample=sample, workdir=out / "simnet") as net, MailSink(out / "mail") as mail:
        env = {
            **os.environ,
            **net.env(),
            "BADGEWATCH_DATABASE_URL": f"sqlite:///{out / 'badgewatch.db'}",
            "BADGEWATCH_EVIDENCE_DIR": str(out / "evidence"),
            "BADGEWATCH_SMTP_HOST": mail.host,
            "BADGEWATCH_SMTP_PORT": str(mail.port),
            "BADGEWATCH_CENTER_EMAIL": "center@yumingzhongxin.example.cn",
            # A failure is listed once seen on two visits this far apart (a real night: 20 hours, the
            # next night's scan; the demo does its second visit 20 seconds later).
            "BADGEWATCH_CONFIRM_INTERVAL_H": f"{DEMO_INTERVAL_S / 3600:.6f}",
            # The samples put hundreds of sites on one platform address (baoding: 448) and simnet's
            # servers have no CC rule: the demo paces each address at 1,200 requests a minute instead
            # of a real platform's 120 (docs/crawler.md, "Politeness per address").
            "BADGEWATCH_PER_IP_RATE_PER_MIN": "1200",
            # Its maintenance pages ask for an hour (Retry-After: 3600): the demo waits seconds.
            "BADGEWATCH_BAN_MAX_S": "5",
        }
        console.print(
            f"域名服务器 {net.nameserver}，HTTP 端口 {net.http_port}，"
            f"HTTPS 端口 {net.https_port}，样例 {sample}（{net.describe()['sites']} 个网站），"
            f"邮件服务器 {mail.host}:{mail.port}"
        )
        step("1. 建库 badgewatch init", "init")
        # The catalogue carries rows the import must refuse (invalid domains): show them refused and
        # import the rest.
        refused = ["--skip-invalid"] if sample == "catalogue" else []
        step(
            "2. 导入登记表", "registry", "import", net.registry_path, "--offices", net.offices_path, *refused
        )
        raw = step("3. 巡检", "scan", *scope, "--json", capture=True, ok=(0, 1))
        console.print(raw)
        try:
            scan_id = str(json.loads(raw[raw.index("{") :])["scan_id"])
        except (ValueError, KeyError) as exc:
            raise click.ClickException("巡检没有给出巡检编号，演示停止") from exc
        # Confirm before accusing: what failed is visited again once the interval has passed.
        console.print(
            f"[dim]首次发现的问题待确认：{DEMO_INTERVAL_S} 秒后第二遍巡检（实际运行时为次日夜间巡检）"
        )
        time.sleep(DEMO_INTERVAL_S)
        step("3b. 第二遍巡检：再次访问待确认的问题", "scan", "--second-pass", scan_id)
        as_of = ["--as-of", "2015-03-31"] if sample == "baoding" else []
        step("4. 域名注册及网站标识覆盖情况（附件1）", "report", "coverage", *as_of)
        step("   同一张表：Excel 与网页", "report", "coverage", *as_of, "-o", str(out / "coverage.xlsx"))
        step("   ", "report", "coverage", *as_of, "-o", str(out / "coverage.html"))
        step("5. 不合规清单", "report", "noncompliance", "--scan", scan_id, *scope)
        step(
            "   同一份清单：Excel（每个编办一个工作表）",
            "report",
            "noncompliance",
            "--scan",
            scan_id,
            *scope,
            "-o",
            str(out / "noncompliance.xlsx"),
        )
        step(
            "6. 年度报告可核验字段（字段3、字段5）",
            "report",
            "annual",
            "--year",
            str(dt.date.today().year),
            *scope,
            "-o",
            str(out / "annual.xlsx"),
        )
        step("7. 发送清单 badgewatch notify", "notify", "--scan", scan_id, ok=(0, 1))
        _demo_distributed(console, env, out, net, scope, scan_id, distributed_pg, distributed_redis)
        console.rule("[bold]9. 结果")
        for path in mail.received():
            console.print(f"收到邮件：{path.name}")
        console.print(
            f"输出目录：{out}（coverage.xlsx / coverage.html / noncompliance.xlsx / annual.xlsx，"
            f"evidence/ 证据，mail/ 收到的邮件）"
        )
        console.print(
            "审核控制台：badgewatch user add NAME --role center；然后 badgewatch serve，"
            f"数据库 {env['BADGEWATCH_DATABASE_URL']}"
        )


def _demo_distributed(
    console: Console,
    env: dict[str, str],
    out: Path,
    net: SimNet,
    scope: list[str],
    scan_id: str,
    pg_url: str,
    redis_url: str,
) -> None:
    """Step 8 of the demo: the same scan by two worker processes through PostgreSQL and Redis, and its
    findings compared with the single-process scan's (skipped, saying why, where neither runs)."""
    import json
    import socket
    import subprocess
    import sys
    import uuid
    from urllib.parse import urlsplit

    import sqlalchemy as sa

    from storage.db import make_engine
    from storage.models import Finding

    console.rule("[bold]8. 多机巡检：同一范围由两个工作进程经 PostgreSQL 与 Redis 完成")
    if not pg_url:
        console.print("已跳过（--distributed-pg 为空）")
        return
    for name, url in (("PostgreSQL", pg_url), ("Redis", redis_url)):
        parts = urlsplit(url)
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2).close()
        except OSError as exc:
            console.print(f"已跳过：本机 {name}（{parts.hostname}:{parts.port}）无法连接（{exc}）")
            return
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    db_name = "badgewatch_demo_" + uuid.uuid4().hex[:8]
    prefix = f"badgewatch-demo-{uuid.uuid4().hex[:8]}:"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
    db_url = pg_url.rsplit("/", 1)[0] + "/" + db_name
    denv = {
        **env,
        "BADGEWATCH_DATABASE_URL": db_url,
        "BADGEWATCH_REDIS_URL": redis_url,
        "BADGEWATCH_REDIS_PREFIX": prefix,
        "BADGEWATCH_EVIDENCE_DIR": str(out / "evidence"),
    }

    def run(*args: str) -> str:
        console.print("[dim]$ badgewatch " + " ".join(args))
        proc = subprocess.run(
            [sys.executable, "-m", "badgewatch", *args], env=denv, text=True, stdout=subprocess.PIPE
        )
        if proc.returncode != 0:
            raise click.ClickException(
                f"演示步骤失败：badgewatch {' '.join(args)}（退出码 {proc.returncode}）"
            )
        return proc.stdout

    try:
        console.print(f"临时数据库 {db_name}，Redis 键前缀 {prefix}")
        run("init")
        run("registry", "import", net.registry_path, "--offices", net.offices_path, "--skip-invalid")
        opened = json.loads(run("scan", "--distributed", "--no-wait", "--json", *scope))
        dist_id = str(opened["scan_id"])
        console.print(
            f"巡检 #{dist_id}：已放入 {opened['seeded']} 个对象；启动两个工作进程 badgewatch worker"
        )
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "badgewatch", "worker", "--json", "--scan", dist_id],
                env=denv,
                text=True,
                stdout=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        for i, w in enumerate(workers, 1):
            stdout, _ = w.communicate(timeout=1800)
            done = json.loads(stdout[stdout.index("{") :]) if "{" in stdout else {}
            console.print(f"工作进程 {i}：完成 {done.get('subjects', '?')} 个对象，退出码 {w.returncode}")

        def verdicts(url: str, scan: str) -> dict[tuple[str, str], tuple[str, str]]:
            # Subjects are keyed by registry ids, identical in both databases (same file, same order).
            engine = make_engine(url)
            try:
                with engine.connect() as conn:
                    rows = conn.execute(
                        sa.select(Finding.subject, Finding.check, Finding.status, Finding.reason).where(
                            Finding.scan_id == int(scan)
                        )
                    ).all()
            finally:
                engine.dispose()
            return {(r.subject, r.check): (r.status, r.reason) for r in rows}

        single = verdicts(env["BADGEWATCH_DATABASE_URL"], scan_id)
        shared = verdicts(db_url, dist_id)
        same = sum(1 for k, v in shared.items() if single.get(k) == v)
        console.print(
            f"多机巡检结论 {len(shared)} 条，与第 3 步单进程巡检相同 {same} 条"
            f"（{'完全一致' if same == len(shared) == len(single) else '存在差异'}）"
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()
        try:
            import redis

            client = redis.Redis.from_url(redis_url)
            for key in client.scan_iter(match=prefix + "*"):
                client.delete(key)
            client.close()
        except Exception as exc:  # the keys expire or are deleted with the scan anyway
            console.print(f"清理 Redis 键失败：{exc}")


_register()


def main() -> None:
    cli(prog_name="badgewatch")


if __name__ == "__main__":
    main()
