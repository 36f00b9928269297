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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa

import crawler.cli
import reports.cli
import review.audit_cli
import review.cli
import scheduler
import simnet.cli
import storage.cli
from checks.errors import BadgewatchError
from storage.config import Config

if TYPE_CHECKING:
    from rich.console import Console

    from simnet.mailsink import MailSink
    from simnet.runtime import SimNet

log = logging.getLogger("badgewatch")

# Modules that provide commands; each exposes ``COMMANDS``, a list of click commands. Imported by name
# above: a module that is missing or misspelt fails at start-up instead of its commands vanishing.
COMMAND_MODULES = (storage.cli, simnet.cli, crawler.cli, reports.cli, review.cli, review.audit_cli, scheduler)


class _Group(click.Group):
    """The root group: errors of the tree end as a message and exit code 1 (see the module's doc)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BadgewatchError as exc:
            log.debug("command failed", exc_info=True)
            raise storage.cli.CommandError(str(exc)) from exc
        except sa.exc.SQLAlchemyError as exc:
            log.error("database error: %s", exc)
            message = "数据库无法使用（是否已运行 badgewatch init？详情见日志）"
            raise storage.cli.CommandError(message) from exc


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
@click.option("--serve", is_flag=True, help="演示结束后在演示数据库上启动审核台（Ctrl-C 结束）")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="--serve 的审核台端口"
)
def demo(
    output_dir: str,
    sample: str,
    office: str | None,
    full: bool,
    distributed_pg: str,
    distributed_redis: str,
    serve: bool,
    port: int,
) -> None:
    """演示整个流程：启动模拟互联网，建库、导入登记表、巡检、单位提交年度报告、生成报表、发送清单，
    建审核台账号；最后给出在演示数据上打开审核台的命令（或用 --serve 直接打开）。

    Every step runs the real command in a child process, as an operator would, against the simulated
    internet (loopback only) and a local SMTP server that keeps what it receives under the output folder.
    """
    # Deferred imports (here and in the demo's helpers): they load Scrapy, SQLAlchemy models and the
    # servers, which every other command would otherwise pay for at start-up.
    import datetime as dt
    import json
    import shutil
    import subprocess
    import sys

    from rich.console import Console

    from crawler.screenshots import shoot_scan
    from review.pageshots import write_console_screenshots
    from simnet.mailsink import MailSink
    from simnet.runtime import SimNet
    from storage.db import describe_database

    console = Console()
    out = Path(output_dir).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if office is None and sample == "baoding" and not full:
        office = "130629"
    scope = [] if full or office is None else ["--office", office]

    def step(
        title: str, *args: str, capture: bool = False, ok: tuple[int, ...] = (0,), stdin: str | None = None
    ) -> str:
        if title.strip():
            console.rule(f"[bold]{title}")
        console.print("[dim]$ badgewatch " + " ".join(args))
        sys.stdout.flush()
        proc = subprocess.run(
            [sys.executable, "-m", "badgewatch", *args],
            env=env,
            text=True,
            input=stdin,
            stdout=subprocess.PIPE if capture else None,
        )
        if proc.returncode not in ok:
            command = " ".join(args)
            raise click.ClickException(f"演示步骤失败：badgewatch {command}（退出码 {proc.returncode}）")
        return proc.stdout or ""

    db_url = f"sqlite:///{out / 'badgewatch.db'}"
    year = dt.date.today().year
    console.rule("[bold]0. 启动模拟互联网 simnet（仅 127.0.0.0/8）")
    with SimNet(sample=sample, workdir=out / "simnet") as net, MailSink(out / "mail") as mail:
        env = {
            **os.environ,
            **net.env(),
            "BADGEWATCH_DATABASE_URL": db_url,
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
        console.print(f"演示数据库：{describe_database(db_url)}", soft_wrap=True)
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
        # Issue 16: marked screenshots of the confirmed page-check failures (crawler/screenshots.py).
        console.print(shoot_scan(Config.load(env=env), int(scan_id)).describe())
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
        # Units submit their annual reports: a few, some agreeing with the scan and some not, so that
        # the review page has work and the annual table is not empty.
        submitted = out / "年度报告-单位填报.xlsx"
        seeded = _demo_annual_submissions(db_url, office, year, submitted)
        console.rule("[bold]6. 单位提交年度报告（演示填报）")
        console.print(
            f"演示填报 {seeded.total} 份：{seeded.agreeing} 份与巡检结果一致，"
            f"{seeded.disagreeing} 份与巡检结果不一致（如已确认缺少标识的网站填报“已加挂”）",
            soft_wrap=True,
        )
        step("", "annual", "import", str(submitted), "--year", str(year))
        step(
            "   年度报告审核表：可核验字段（字段3、字段5）与填报对照",
            "report",
            "annual",
            "--year",
            str(year),
            *scope,
            "-o",
            str(out / "annual.xlsx"),
        )
        step("7. 发送清单 badgewatch notify", "notify", "--scan", scan_id, ok=(0, 1))
        _demo_distributed(console, env, out, net, scope, scan_id, distributed_pg, distributed_redis)
        console.rule("[bold]9. 审核台账号与配置")
        config = _demo_config(out, db_url)
        console.print(f"配置文件：{config}（指向演示数据库与证据目录）", soft_wrap=True)
        accounts = _demo_accounts(db_url, office or seeded.office)
        for a in accounts:
            step(
                "",
                "--config",
                str(config),
                "user",
                "add",
                *a.args,
                "--password-stdin",
                stdin=a.password + "\n",
            )
        # Issue 16: PNGs of the console's main pages (review/pageshots.py), after the accounts and the
        # seeded reports exist, so that the review page has something to show.
        pages = write_console_screenshots(Config.load(config, env=env), out / "screenshots")
        console.print(f"审核台页面截图 {len(pages)} 张：{out / 'screenshots'}（index.html 为目录）")
        console.rule("[bold]10. 结果")
        for path in mail.received():
            console.print(f"收到邮件：{path.name}")
        command = _console_command(config)
        index = _demo_index(out, command, accounts, sample)
        console.print(f"输出目录：{out}；各文件的说明见 {index}", soft_wrap=True)
        console.print("审核台账号（仅用于演示数据）：")
        for a in accounts:
            console.print(f"  {a.label}：用户名 {a.name}  密码 {a.password}", soft_wrap=True, highlight=False)
        if serve:
            _demo_serve(console, command, config, port, mail)
            return
        console.print(
            "在演示数据上打开审核台（然后用浏览器访问 http://127.0.0.1:8000/ ，用上面的账号登录）：",
            soft_wrap=True,
        )
        # The last line is the command itself, so that it can be copied as it stands.
        console.print(command, soft_wrap=True, highlight=False, markup=False)


@dataclass(frozen=True)
class SeededReports:
    """The annual reports the demo has units submit: how many agree with the scan, and the office
    whose reviewer decides them first."""

    agreeing: int
    disagreeing: int
    office: str

    @property
    def total(self) -> int:
        return self.agreeing + self.disagreeing


# How many sample reports of each sort the demo writes.
DEMO_AGREEING = 4
DEMO_DISAGREEING = 3


def _demo_annual_submissions(db_url: str, office: str | None, year: int, path: Path) -> SeededReports:
    """Write ``path``: the annual reports a few units of the scanned scope submit, as a unit's XLSX
    (a title row above the header), some answering what the scan found and some contradicting it
    (a badge the scan confirmed missing reported as displayed; invalid domains reported as valid).

    The answers are chosen from what :func:`reports.annual.derive_badge` and ``derive_domains`` make of
    the scan's findings, the same derivation the import and the review page use.
    """
    # Deferred: see demo().
    import openpyxl
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from reports.annual import NO_SITE, UNDECIDED, VALID, derive_badge, derive_domains
    from storage.db import make_engine
    from storage.models import Office, Unit

    engine = make_engine(db_url)
    # Agreeing reports: mostly units with a site the scan found good, one unit without a site.
    with_site: list[list[str]] = []
    without_site: list[list[str]] = []
    disagreeing: list[list[str]] = []
    offices: list[str] = []
    try:
        with Session(engine) as session:
            parents = dict(session.execute(sa.select(Office.code, Office.parent_code)).tuples().all())
            scope = sa.select(Unit).order_by(Unit.office_code, Unit.name)
            if office is not None:
                # The scanned office and the offices below it, as the scan's scope.
                codes = {office}
                while grown := {c for c, p in parents.items() if p in codes} - codes:
                    codes |= grown
                scope = scope.where(Unit.office_code.in_(codes))
            for unit in session.scalars(scope):
                if (
                    len(with_site) + len(without_site) >= DEMO_AGREEING
                    and len(disagreeing) >= DEMO_DISAGREEING
                ):
                    break
                badge, domains = derive_badge(session, unit), derive_domains(session, unit)
                # What the scans say, as a unit writes it ("无法判定" is no answer a unit gives).
                said_badge = "是" if badge.value.startswith(UNDECIDED) else badge.value.split("（")[0]
                said_domains = VALID if domains.value.startswith(UNDECIDED) else domains.value.split("（")[0]
                site = next((w.name for w in unit.websites if w.name), "")
                row = [str(year), unit.uscc or "", unit.name, unit.name, site]
                settled = not (badge.undecided or domains.undecided or badge.bad or domains.bad)
                if badge.bad and len(disagreeing) < DEMO_DISAGREEING:
                    disagreeing.append([*row, said_domains, "是", "是"])  # "displayed": it is not
                elif domains.bad and len(disagreeing) < DEMO_DISAGREEING:
                    disagreeing.append([*row, "有效，已指向本单位网站", "是", said_badge])
                elif settled and badge.good and len(with_site) < DEMO_AGREEING - 1:
                    with_site.append([*row, said_domains, "是", said_badge])
                elif settled and badge.value == NO_SITE and not without_site:
                    without_site.append([*row, said_domains, "是", said_badge])
                else:
                    continue
                offices.append(unit.office_code)
            # The reviewer who decides first: the scanned office, else the top office above them all.
            first = office or (offices[0] if offices else "")
            seen = {first}
            while office is None and (up := parents.get(first)) and up not in seen:  # cycles end too
                first = up
                seen.add(up)
    finally:
        engine.dispose()
    agreeing = with_site + without_site
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "年度报告"
    header = [
        "年度",
        "统一社会信用代码",
        "机构名称",
        "开办主体名称",
        "网站名称",
        "中文域名与英文域名的有效性及使用状况",
        "职能或业务范围是否经过审核",
        "是否加挂网站标识",
    ]
    ws.append([f"{year}年度网上名称年度报告（演示：单位填报）"])
    ws.append(header)
    for r in agreeing + disagreeing:
        ws.append(r)
    for column, width in zip("ABCDEFGH", (8, 22, 30, 30, 30, 36, 26, 18), strict=True):
        ws.column_dimensions[column].width = width
    wb.save(path)
    return SeededReports(len(agreeing), len(disagreeing), first)


def _demo_config(out: Path, db_url: str) -> Path:
    """``badgewatch.toml`` of the demo: its database and evidence, and a secret key so that console
    sessions survive a restart. Every command given ``--config`` with it works on the demo's data."""
    import json
    import secrets

    path = out / "badgewatch.toml"
    values = {
        "database_url": db_url,
        "evidence_dir": str(out / "evidence"),
        "secret_key": secrets.token_hex(32),
    }
    # A TOML basic string takes JSON's escapes for what a path or URL can hold.
    lines = ["# 网标巡检演示的配置：badgewatch --config 本文件 serve 在演示数据上打开审核台"]
    lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class DemoAccount:
    name: str
    password: str
    role: str
    office: str | None
    label: str

    @property
    def args(self) -> list[str]:
        return [self.name, "--role", self.role, *(["--office", self.office] if self.office else [])]


def _demo_accounts(db_url: str, office: str) -> list[DemoAccount]:
    """Two reviewers for the demo's reports: the office's (first level) and the domain center's."""
    import secrets

    import sqlalchemy as sa

    from storage.db import make_engine
    from storage.models import Office

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            name = conn.execute(sa.select(Office.name).where(Office.code == office)).scalar_one_or_none()
    finally:
        engine.dispose()
    return [
        DemoAccount("bianban", secrets.token_urlsafe(9), "office", office, f"编办审核员（{name or office}）"),
        DemoAccount("zhongxin", secrets.token_urlsafe(9), "center", None, "域名中心审核员"),
    ]


def _console_command(config: Path) -> str:
    """The command that opens the console on the demo's data, as it can be pasted in any directory."""
    import shlex
    import sys

    exe = Path(sys.executable).with_name("badgewatch")
    program = shlex.quote(str(exe)) if exe.exists() else f"{shlex.quote(sys.executable)} -m badgewatch"
    return f"{program} --config {shlex.quote(str(config))} serve"


# What each file of the demo's output folder is (names, or a suffix after ``*``), for its index.
DEMO_FILES: tuple[tuple[str, str], ...] = (
    ("index.html", "本页：演示输出目录的说明"),
    ("badgewatch.db", "演示数据库（SQLite）：登记信息、巡检结论、年度报告、审核台账号都在这里"),
    ("badgewatch.toml", "演示配置：指向演示数据库与证据目录；任何命令加 --config 本文件即在演示数据上运行"),
    ("coverage.xlsx", "附件1 域名注册及网站标识覆盖情况（Excel）"),
    ("coverage.html", "附件1 同一张表（网页，含图表）"),
    ("noncompliance.xlsx", "本次巡检的不合规清单（Excel，每个编办一个工作表）"),
    ("annual.xlsx", "年度报告审核表：单位填报与巡检结果（字段3、字段5）对照"),
    ("年度报告-单位填报.xlsx", "演示用的单位填报（部分与巡检结果一致，部分不一致），已由 annual import 导入"),
    ("evidence", "巡检证据：网页快照、DNS 应答、HTTP 往来（按内容编号存放，在审核台中查看）"),
    ("mail", "演示邮件服务器收到的清单邮件（.eml，可用邮件客户端打开）"),
    ("screenshots", "审核台主要页面的截图（不启动审核台也能看）"),
    ("simnet", "模拟互联网的样例：导入的登记表、编办表和样例的真实情况"),
    ("*-registry.csv", "导入的登记表（模拟互联网样例生成）"),
    ("*-offices.csv", "导入的编办表"),
    ("*-truth.json", "样例的真实情况（测试用来核对巡检结论）"),
    ("*.rejected.csv", "导入时被拒绝的行及原因"),
    ("*.rejected.xlsx", "导入时被拒绝的行及原因"),
)


def _describe_demo_file(name: str) -> str:
    for pattern, text in DEMO_FILES:
        if name == pattern or (pattern.startswith("*") and name.endswith(pattern[1:])):
            return text
    return ""


def _demo_index(out: Path, command: str, accounts: list[DemoAccount], sample: str) -> Path:
    """Write ``index.html``: what each file of the output folder is, and how to open the console on
    the demo's data (an official opens the folder and finds the way from there)."""
    import datetime as dt
    from html import escape

    (out / "index.html").touch()  # list itself
    rows = []
    entries = sorted(out.iterdir(), key=lambda p: (p.is_dir(), p.name))
    entries += (
        sorted(p for p in (out / "simnet").glob("*") if p.is_file()) if (out / "simnet").is_dir() else []
    )
    for path in entries:
        rel = path.relative_to(out).as_posix() + ("/" if path.is_dir() else "")
        what = _describe_demo_file(path.name) or ("目录" if path.is_dir() else "其他文件")
        if path.is_dir():
            what += f"（{sum(1 for _ in path.rglob('*') if _.is_file())} 个文件）"
        rows.append(f'<tr><td><a href="{escape(rel)}">{escape(rel)}</a></td><td>{escape(what)}</td></tr>')
    logins = "".join(
        f"<li>{escape(a.label)}：用户名 <code>{escape(a.name)}</code>，"
        f"密码 <code>{escape(a.password)}</code></li>"
        for a in accounts
    )
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    html = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>网标巡检演示输出</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;line-height:1.6}}
table{{border-collapse:collapse;width:100%}}td{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}
code,pre{{background:#f4f4f4;padding:2px 4px}}pre{{padding:8px;white-space:pre-wrap}}</style></head>
<body><h1>网标巡检演示输出</h1>
<p>生成于 {escape(when)}，样例：{escape(sample)}。这里的数据都来自模拟互联网，不涉及真实网站。</p>
<h2>打开审核台</h2>
<p>在终端运行下面的命令，然后用浏览器打开 <a href="http://127.0.0.1:8000/">http://127.0.0.1:8000/</a>：</p>
<pre>{escape(command)}</pre>
<p>演示账号（仅用于演示数据）：</p><ul>{logins}</ul>
<p>也可以运行 <code>badgewatch demo --serve</code>：演示结束后直接启动审核台。</p>
<h2>文件说明</h2>
<table><tr><td><b>文件</b></td><td><b>说明</b></td></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def _demo_serve(console: Console, command: str, config: Path, port: int, mail: MailSink) -> None:
    """Run the console on the demo's data until Ctrl-C; its e-mail goes to the demo's mail folder."""
    import socket
    import subprocess
    import sys

    console.rule("[bold]11. 审核台")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BADGEWATCH_")}
    env.update(BADGEWATCH_SMTP_HOST=mail.host, BADGEWATCH_SMTP_PORT=str(mail.port))
    args = [sys.executable, "-m", "badgewatch", "--config", str(config), "serve", "--port", str(port)]
    proc = subprocess.Popen(args, env=env)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        if proc.poll() is not None:
            raise click.ClickException(f"审核台没有启动（端口 {port} 是否已被占用？可用 --port 换一个）")
        console.print(f"审核台已启动：http://127.0.0.1:{port}/ （按 Ctrl-C 结束）")
        console.print("以后再打开：", command, soft_wrap=True, highlight=False, markup=False)
        sys.stdout.flush()
        proc.wait()
    except KeyboardInterrupt:
        console.print("审核台已关闭")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


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

    from storage.db import describe_database, make_engine
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
        console.print(f"临时数据库：{describe_database(db_url)}；Redis 键前缀 {prefix}", soft_wrap=True)
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
