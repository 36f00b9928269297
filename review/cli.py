"""Console commands: ``badgewatch serve`` and ``badgewatch user add|list|passwd|role|deactivate|activate|
token|tokens|revoke-tokens``.

Every command says which database it opens (on stderr) and refuses a database that does not exist or
was never initialised, naming it, unless ``--create-db`` asks for a new one: a mistyped path or a
command run in the wrong directory must not quietly create an empty database and put an account in it.
"""

from __future__ import annotations

import getpass
import ipaddress
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from review.accounts import (
    ROLE_LABELS,
    AccountError,
    change_password,
    change_role,
    create_user,
    end_everything,
    find_user,
    issue_token,
    revoke_token,
    revoke_tokens,
    set_active,
    token_state,
    tokens_of,
)
from storage.config import Config
from storage.db import DatabaseError, current_revision, make_engine, normalise_url, upgrade
from storage.models import User, UserRole

CREATE_DB_HELP = "数据库不存在或是空库时新建并初始化（默认拒绝，以免在错误的位置新建空库）"


def database_label(url: str) -> str:
    """The database as an operator recognises it: an SQLite file's absolute path, else the URL without
    its password."""
    try:
        parsed = sa.make_url(normalise_url(url))
    except sa.exc.ArgumentError:
        return url
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return "SQLite 内存数据库"
        return f"SQLite 文件 {Path(parsed.database).expanduser().resolve()}"
    return parsed.render_as_string(hide_password=True)


def _sqlite_file(url: str) -> Path | None:
    parsed = sa.make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().resolve()


def open_database(cfg: Config, *, create: bool = False) -> Engine:
    """An engine on the configured database at schema head, after saying which database it is.

    A missing SQLite file or a database without badgewatch's schema is refused (unless ``create``);
    an older schema is upgraded as ``badgewatch init`` would."""
    label = database_label(cfg.database_url)
    click.echo(f"数据库：{label}", err=True)
    hint = "请检查配置（--config、badgewatch.toml 或环境变量 BADGEWATCH_DATABASE_URL）"
    try:
        path = _sqlite_file(cfg.database_url)
        if path is not None and not path.exists() and not create:
            raise click.ClickException(
                f"数据库文件 {path} 不存在，未做任何修改。{hint}；"
                "新装系统请先运行 badgewatch init，或加 --create-db 在此新建。"
            )
        engine = make_engine(cfg.database_url)
        if not create and current_revision(engine) is None:
            engine.dispose()
            raise click.ClickException(
                f"数据库 {label} 是空库（从未运行 badgewatch init），未做任何修改。{hint}；"
                "确要使用这个库，请先运行 badgewatch init，或加 --create-db。"
            )
        upgrade(engine)
    except (DatabaseError, sa.exc.OperationalError) as exc:
        raise click.ClickException(f"无法打开数据库 {label}：{exc}") from exc
    return engine


@contextmanager
def _session(cfg: Config, create: bool = False) -> Iterator[Session]:
    engine = open_database(cfg, create=create)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


def _actor() -> str:
    """Who ran the command, for the audit trail: ``cli:<operating-system user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli:?"


CLIENT = "local"


def listens_beyond_loopback(host: str) -> bool:
    """Whether a listening address can be reached from other machines (a host name counts as such)."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True


def secure_by_default(host: str) -> bool:
    """Whether ``serve --host HOST`` uses HTTPS cookies and HSTS unless told otherwise: whenever others
    can reach it (they must come through HTTPS); on loopback a local reverse proxy says so itself."""
    return listens_beyond_loopback(host)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="监听端口")
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=None,
    help="经 HTTPS 访问：__Host- Secure Cookie 与 HSTS（默认：监听本机以外的地址时打开；"
    "在本机的 HTTPS 反向代理之后运行时请打开）",
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    help="可信反向代理的地址或网段（逗号分隔），只采信它们的 X-Forwarded-For/-Proto"
    "（默认：设置 forwarded_allow_ips）",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="审核台的主机名（可多次；默认：设置 console_hosts，未设置时只接受 127.0.0.1、localhost）",
)
@click.option("--create-db", is_flag=True, help=CREATE_DB_HELP)
@click.pass_obj
def serve(
    cfg: Config,
    host: str,
    port: int,
    secure_cookies: bool | None,
    forwarded_allow_ips: str | None,
    allowed_hosts: tuple[str, ...],
    create_db: bool,
) -> None:
    """启动审核台（网页与 JSON API）。"""
    # The web stack (FastAPI, uvicorn, templates) loads only for the command that serves.
    import uvicorn

    from review.app import create_app

    public = listens_beyond_loopback(host)
    hosts = list(allowed_hosts) or list(cfg.console_hosts)
    if public and not hosts:
        raise click.ClickException(
            f"审核台将监听 {host}（本机以外可以访问），必须指明它的主机名：设置 console_hosts"
            "（BADGEWATCH_CONSOLE_HOSTS）或加 --allowed-host 主机名。未启动。"
        )
    secure = secure_by_default(host) if secure_cookies is None else secure_cookies
    if public and not secure:
        click.echo("警告：审核台在本机以外可访问，但未使用 HTTPS Cookie（--no-secure-cookies）。", err=True)
    proxies = (
        [p.strip() for p in forwarded_allow_ips.split(",") if p.strip()]
        if forwarded_allow_ips is not None
        else list(cfg.forwarded_allow_ips)
    )
    if not cfg.secret_key:
        click.echo(
            "提示：未配置 secret_key（BADGEWATCH_SECRET_KEY），登录表单使用临时密钥："
            "重启时打开着的登录页需刷新。",
            err=True,
        )
    engine = open_database(cfg, create=create_db)
    app = create_app(
        cfg,
        engine,
        secure_cookies=secure,
        allowed_hosts=hosts or None,
        forwarded_allow_ips=proxies,
    )
    click.echo(
        f"审核台：http://{host}:{port}/（主机名 {', '.join(hosts) or '127.0.0.1、localhost'}；"
        f"{'HTTPS Cookie' if secure else '本机 HTTP'}；可信代理 {', '.join(proxies) or '无'}）",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False, server_header=False)


@click.group("user")
def user() -> None:
    """审核台账号：添加、列出、改密码、改角色、停用、令牌。"""


def _read_password(from_stdin: bool, prompt: str = "密码") -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt="再次输入密码")
    return value


@user.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["office", "center", "admin", "submitter"]), required=True, help="角色"
)
@click.option("--office", "office_code", default=None, help="所属编办代码（编办审核员必填）")
@click.option("--email", default="", help="联系邮箱")
@click.option("--password-stdin", is_flag=True, help="从标准输入读取密码（一行）")
@click.option("--create-db", is_flag=True, help=CREATE_DB_HELP)
@click.pass_obj
def user_add(
    cfg: Config,
    name: str,
    role: str,
    office_code: str | None,
    email: str,
    password_stdin: bool,
    create_db: bool,
) -> None:
    """添加账号：badgewatch user add NAME --role office|center|admin [--office CODE]。"""

    password = _read_password(password_stdin)
    with _session(cfg, create_db) as session:
        try:
            create_user(session, name, role, password, office_code, email, actor=_actor(), client=CLIENT)
            session.commit()
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"已添加用户 {name}（{role}{'，编办 ' + office_code if office_code else ''}）")


@user.command("list")
@click.pass_obj
def user_list(cfg: Config) -> None:
    """列出账号（角色、编办、状态、有效令牌数）。"""
    with _session(cfg) as session:
        users = list(session.scalars(sa.select(User).order_by(User.name)))
        if not users:
            click.echo("（没有账号：用 badgewatch user add 添加）")
        for u in users:
            live = sum(1 for t in tokens_of(session, u) if token_state(t) == "有效")
            click.echo(
                f"{u.name}\t{ROLE_LABELS.get(UserRole(u.role), u.role)}\t{u.office_code or '—'}\t"
                f"{'启用' if u.active else '停用'}\t有效令牌 {live}"
            )


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="从标准输入读取新密码（一行）")
@click.pass_obj
def user_passwd(cfg: Config, name: str, password_stdin: bool) -> None:
    """修改密码：该账号的全部会话立即结束、全部 API 令牌吊销。"""

    with _session(cfg) as session:
        u = find_user(session, name)
        if u is None:
            raise click.ClickException(f"用户 {name} 不存在")
        password = _read_password(password_stdin, "新密码")
        try:
            change_password(session, u, password, actor=_actor(), client=CLIENT)
            session.commit()
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"已修改 {name} 的密码；其全部会话已结束、全部令牌已吊销")


@user.command("role")
@click.argument("name")
@click.option("--role", type=click.Choice(["office", "center", "admin"]), required=True, help="新角色")
@click.option("--office", "office_code", default=None, help="所属编办代码（编办审核员必填）")
@click.pass_obj
def user_role(cfg: Config, name: str, role: str, office_code: str | None) -> None:
    """修改角色或所属编办：该账号的全部会话结束、令牌吊销。"""

    with _session(cfg) as session:
        u = find_user(session, name)
        if u is None:
            raise click.ClickException(f"用户 {name} 不存在")
        try:
            change_role(session, u, role, office_code, actor=_actor(), client=CLIENT)
            session.commit()
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"已将 {name} 改为 {role}{'，编办 ' + office_code if office_code else ''}；其会话已结束、令牌已吊销"
    )


@user.command("deactivate")
@click.argument("name")
@click.pass_obj
def user_deactivate(cfg: Config, name: str) -> None:
    """停用账号：立即结束其全部会话、吊销全部令牌（记录保留）。"""
    _set_active(cfg, name, False)
    click.echo(f"已停用 {name}；其全部会话已结束、全部令牌已吊销")


@user.command("activate")
@click.argument("name")
@click.pass_obj
def user_activate(cfg: Config, name: str) -> None:
    """重新启用已停用的账号（旧会话与令牌不会恢复）。"""
    _set_active(cfg, name, True)
    click.echo(f"已重新启用 {name}")


def _set_active(cfg: Config, name: str, active: bool) -> None:

    with _session(cfg) as session:
        u = find_user(session, name)
        if u is None:
            raise click.ClickException(f"用户 {name} 不存在")
        set_active(session, u, active, actor=_actor(), client=CLIENT)
        session.commit()


@user.command("token")
@click.argument("name")
@click.option("--days", type=int, default=None, help="有效天数（默认：设置 api_token_days；最多 366）")
@click.option("--label", default="", help="用途说明，例如对接的系统名称")
@click.pass_obj
def user_token(cfg: Config, name: str, days: int | None, label: str) -> None:
    """为系统对接生成 API 令牌（以该用户的角色与范围访问，到期、吊销、改密码或停用即失效）。"""

    with _session(cfg) as session:
        u = find_user(session, name)
        if u is None:
            raise click.ClickException(f"用户 {name} 不存在")
        try:
            row, text = issue_token(
                session, u, days=days or cfg.api_token_days, label=label, actor=_actor(), client=CLIENT
            )
            session.commit()
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"令牌编号 {row.id}，有效至 {row.expires_at:%Y-%m-%d}（只显示这一次，请立即保存）：", err=True)
    click.echo(text)


@user.command("tokens")
@click.argument("name")
@click.pass_obj
def user_tokens(cfg: Config, name: str) -> None:
    """列出账号的 API 令牌（编号、用途、生成时间、有效期、状态）。"""

    with _session(cfg) as session:
        u = find_user(session, name)
        if u is None:
            raise click.ClickException(f"用户 {name} 不存在")
        rows = tokens_of(session, u)
        if not rows:
            click.echo(f"{name} 没有令牌")
        for t in rows:
            click.echo(
                f"{t.id}\t{t.label or '—'}\t生成 {t.created_at:%Y-%m-%d}\t有效至 {t.expires_at:%Y-%m-%d}\t"
                f"{token_state(t)}"
            )


@user.command("revoke-tokens")
@click.argument("name")
@click.option("--token", "token_id", type=click.IntRange(1), default=None, help="只吊销这个编号的令牌")
@click.option("--sessions", is_flag=True, help="同时结束该账号在审核台的全部会话")
@click.pass_obj
def user_revoke_tokens(cfg: Config, name: str, token_id: int | None, sessions: bool) -> None:
    """吊销账号的 API 令牌（默认全部），立即生效。"""

    with _session(cfg) as session:
        u = find_user(session, name)
        if u is None:
            raise click.ClickException(f"用户 {name} 不存在")
        try:
            if token_id is not None:
                revoke_token(session, u, token_id, actor=_actor(), client=CLIENT)
                what = f"令牌 {token_id}"
            else:
                what = f"{revoke_tokens(session, u, actor=_actor(), client=CLIENT)} 个令牌"
            if sessions:
                ended, _ = end_everything(session, u, "ended_by_cli", _actor(), CLIENT)
                what += f"，结束 {ended} 个会话"
            session.commit()
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"已吊销 {name} 的{what}")


COMMANDS = [serve, user]
