"""badgewatch (网标巡检) command line: the one entry point.

Each area contributes its commands from its own ``cli`` module (``storage.cli``, ``simnet.cli``,
``crawler.cli``, ``reports.cli``, ``review.cli``, ``scheduler``); this module assembles them and
loads the configuration they share.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

import click

from storage.config import Config, ConfigError

# Modules that provide commands; each exposes ``COMMANDS``, a list of click commands.
COMMAND_MODULES: tuple[str, ...] = (
    "storage.cli",
    "simnet.cli",
    "crawler.cli",
    "reports.cli",
    "review.cli",
    "scheduler",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="配置文件 (default: ./badgewatch.toml)")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """网标巡检 badgewatch: 网站标识、中文域名与备案号合规巡检。"""
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        ctx.obj = Config.load(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _register() -> None:
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="badgewatch")


if __name__ == "__main__":
    main()
