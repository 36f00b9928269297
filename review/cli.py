"""Console commands: ``badgewatch serve`` and ``badgewatch user add|token``."""

from __future__ import annotations

import sys

import click
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from storage.config import Config


def _engine(cfg: Config) -> Engine:
    from storage.db import DatabaseError, make_engine, upgrade

    try:
        engine = make_engine(cfg.database_url)
        upgrade(engine)
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from exc
    return engine


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="监听端口")
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=False,
    show_default=True,
    help="会话 Cookie 只经 HTTPS 发送（在 HTTPS 反向代理之后运行时打开）",
)
@click.pass_obj
def serve(cfg: Config, host: str, port: int, secure_cookies: bool) -> None:
    """启动审核台（网页与 JSON API）。"""
    import uvicorn

    from review.app import create_app

    if not cfg.secret_key:
        click.echo(
            "警告：未配置 secret_key（BADGEWATCH_SECRET_KEY），使用临时密钥：重启后需重新登录，"
            "API 令牌不可用。",
            err=True,
        )
    app = create_app(cfg, _engine(cfg), secure_cookies=secure_cookies)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False, server_header=False)


@click.group("user")
def user() -> None:
    """审核台账号。"""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    value: str = click.prompt("密码", hide_input=True, confirmation_prompt="再次输入密码")
    return value


@user.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["office", "center", "admin", "submitter"]), required=True, help="角色"
)
@click.option("--office", "office_code", default=None, help="所属编办代码（编办审核员必填）")
@click.option("--email", default="", help="联系邮箱")
@click.option("--password-stdin", is_flag=True, help="从标准输入读取密码（一行）")
@click.pass_obj
def user_add(
    cfg: Config, name: str, role: str, office_code: str | None, email: str, password_stdin: bool
) -> None:
    """添加账号：badgewatch user add NAME --role office|center|admin [--office CODE]。"""
    from review.accounts import AccountError, create_user

    password = _read_password(password_stdin)
    engine = _engine(cfg)
    try:
        with Session(engine) as session:
            try:
                create_user(session, name, role, password, office_code, email)
                session.commit()
            except AccountError as exc:
                raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    click.echo(f"已添加用户 {name}（{role}{'，编办 ' + office_code if office_code else ''}）")


@user.command("token")
@click.argument("name")
@click.pass_obj
def user_token(cfg: Config, name: str) -> None:
    """为系统对接生成 API 令牌（以该用户的角色与范围访问；修改密码即作废）。"""
    from review.accounts import find_active_user
    from review.security import Signer, make_api_token

    if not cfg.secret_key:
        raise click.ClickException(
            "生成 API 令牌需要配置 secret_key（BADGEWATCH_SECRET_KEY），且与审核台一致"
        )
    engine = _engine(cfg)
    try:
        with Session(engine) as session:
            u = find_active_user(session, name)
            if u is None:
                raise click.ClickException(f"用户 {name} 不存在或已停用")
            click.echo(make_api_token(Signer(cfg.secret_key), u.id, u.password_hash))
    finally:
        engine.dispose()


COMMANDS = [serve, user]
