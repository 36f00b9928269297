"""``badgewatch simnet …``: run the simulated internet in the foreground, or write a generated registry."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from simnet.runtime import SimNet


def _options(
    sites: int | None, delay_ms: int, jitter_ms: int, failure_rate: float | None, addresses: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if sites is not None:
        out["sites"] = sites
    if delay_ms:
        out["delay_ms"] = delay_ms
    if jitter_ms:
        out["jitter_ms"] = jitter_ms
    if failure_rate is not None:
        out["failure_rate"] = failure_rate
    if addresses is not None:
        out["addresses"] = addresses
    return out


def _mix(text: str | None) -> dict[str, float]:
    """``http.timeout=2,http.reset=1`` -> weights per failure scenario."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, weight = part.partition("=")
        try:
            out[name.strip()] = float(weight) if sep else 1.0
        except ValueError:
            raise click.BadParameter(f"{part!r}: weight must be a number", param_hint="--mix") from None
    return out


def _sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` sample options; a value is read as JSON when it parses (numbers, lists, true)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="--set")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        out[key.strip().replace("-", "_")] = value
    return out


@click.group("simnet")
def simnet() -> None:
    """模拟互联网（仅本机回环地址）：权威DNS、网站集群、网站标识服务、样例登记表。"""


@simnet.command("up")
@click.option(
    "--sample",
    default="catalogue",
    show_default=True,
    help="catalogue | baoding | generated[:N] | hostile[:N] | province[:N] (or --sites N)",
)
@click.option(
    "--spec",
    "spec",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML/JSON file describing your own sites (docs/simnet.md)",
)
@click.option("--sites", type=int, default=None, help="generated, hostile: number of sites")
@click.option("--delay-ms", type=int, default=0, help="generated: latency added to every page")
@click.option("--jitter-ms", type=int, default=0, help="generated: plus a per-site 0..N ms")
@click.option("--failure-rate", type=float, default=None, help="generated: share of failing sites (0..1)")
@click.option(
    "--addresses", type=int, default=None, help="generated, hostile: loopback addresses to spread over"
)
@click.option("--mix", default=None, help="generated: failure weights, e.g. http.timeout=2,http.reset=1")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="a sample option, e.g. --set cc_per_min=60 --set latency_ms=[100,800] (province)",
)
@click.option(
    "--stats-interval",
    type=float,
    default=1.0,
    show_default=True,
    help="write the per-address request counts to simnet-stats.json this often (0: never)",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default=None,
    help="keep registry, ground truth and CA here (default: a temporary directory)",
)
@click.option(
    "--ephemeral/--privileged-if-possible",
    default=False,
    help="never try ports 53/80/443 (default: try them when running as root)",
)
@click.option("--xlsx", is_flag=True, help="also write the registry as XLSX (sheets 机构 and 编办)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON line with the addresses and files")
def up(
    sample: str,
    spec: str | None,
    sites: int | None,
    delay_ms: int,
    jitter_ms: int,
    failure_rate: float | None,
    addresses: int | None,
    mix: str | None,
    sets: tuple[str, ...],
    stats_interval: float,
    workdir: str | None,
    ephemeral: bool,
    xlsx: bool,
    as_json: bool,
) -> None:
    """在前台运行模拟互联网，直到按 Ctrl-C。"""
    options = _options(sites, delay_ms, jitter_ms, failure_rate, addresses)
    if xlsx:
        options["xlsx"] = True
    if mix:
        options["mix"] = _mix(mix)
    options.update(_sets(sets))
    options["stats_interval_s"] = stats_interval
    privileged = not ephemeral and hasattr(os, "geteuid") and os.geteuid() == 0
    net = SimNet(sample, spec=spec, workdir=workdir, privileged=privileged, options=options)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            net.start(timeout=3600)
        except (ValueError, OSError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from exc
        info = net.describe()
        if as_json:
            click.echo(json.dumps(info, ensure_ascii=False), nl=True)
        else:
            click.echo(
                f"simnet 已启动: 样例 {spec if spec else sample}，网站 {info['sites']} 个，"
                f"地址 {info['addresses']} 个"
            )
            click.echo(f"nameserver   {info['nameserver']}")
            click.echo(f"http port    {info['http_port']}")
            click.echo(f"https port   {info['https_port']}")
            click.echo(f"CA file      {info['ca_file']}")
            click.echo(f"registry     {info['registry']}")
            click.echo(f"offices      {info['offices']}")
            if info.get("registry_xlsx"):
                click.echo(f"registry xlsx {info['registry_xlsx']}")
            click.echo(f"ground truth {info['ground_truth']}")
            if info.get("stats_file"):
                click.echo(f"stats        {info['stats_file']}")
            click.echo("environment for badgewatch:")
            for k, v in info["env"].items():
                click.echo(f"  export {k}={v}")
            click.echo("按 Ctrl-C 停止。")
        sys.stdout.flush()
        while not stopping.is_set():
            stopping.wait(0.5)
    finally:
        net.stop()
        for s, h in previous.items():
            signal.signal(s, h)
    click.echo("simnet 已停止。", err=True)


@simnet.command("generate")
@click.option("--sites", type=int, required=True, help="number of sites (10 … 1,000,000)")
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(file_okay=False),
    required=True,
    help="directory for registry, offices and ground truth",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--failure-rate", type=float, default=0.1, show_default=True)
@click.option("--delay-ms", type=int, default=0)
@click.option("--jitter-ms", type=int, default=0)
@click.option("--mix", default=None, help="failure scenario weights, e.g. http.timeout=2,http.reset=1")
def generate(
    sites: int, output: str, seed: int, failure_rate: float, delay_ms: int, jitter_ms: int, mix: str | None
) -> None:
    """生成任意规模的登记表（流式写出，内存占用恒定），不启动服务。"""
    from simnet.samples.generated import GenConfig, build_generated

    started = time.monotonic()
    try:
        cfg = GenConfig(
            sites=sites,
            seed=seed,
            failure_rate=failure_rate,
            delay_ms=delay_ms,
            jitter_ms=jitter_ms,
            mix=_mix(mix),
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    sample = build_generated(Path(output), cfg)
    click.echo(f"登记表 {sample.registry_path}（{sites} 个网站，用时 {time.monotonic() - started:.1f} 秒）")
    click.echo(f"编办表 {sample.offices_path}")
    click.echo(f"标准答案 {sample.truth_path}")


COMMANDS = [simnet]
