"""In-process parts of the scheduler: cron parsing, the schedule commands, firing claims, confirmation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import scheduler
from storage.config import Config
from storage.db import make_engine, upgrade
from storage.types import utcnow
from tests.scheduler.helpers import Mailbox, free_port


@pytest.fixture()
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'badgewatch.db'}"


def _cli(db_url: str, *args: str) -> tuple[int, str]:
    from badgewatch import cli

    result = CliRunner().invoke(cli, list(args), env={"BADGEWATCH_DATABASE_URL": db_url})
    return result.exit_code, result.output


def test_cron_five_and_six_fields_in_the_given_zone() -> None:
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)  # 20:00 in Beijing
    t5 = scheduler.parse_cron("0 1 * * *", "Asia/Shanghai")
    assert t5.get_next_fire_time(None, start) == dt.datetime(
        2026, 3, 2, 1, 0, tzinfo=ZoneInfo("Asia/Shanghai")
    )
    t6 = scheduler.parse_cron("30 15 2 * * *", "UTC")
    assert t6.get_next_fire_time(None, start) == dt.datetime(2026, 3, 2, 2, 15, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("cron", "tz", "words"),
    [
        ("0 1 * *", "Asia/Shanghai", "5 个字段"),
        ("0 25 * * *", "Asia/Shanghai", "cron 表达式无效"),
        ("0 1 * * *", "Mars/Olympus", "未知的时区"),
    ],
)
def test_bad_cron_or_zone_is_refused_with_a_reason(cron: str, tz: str, words: str) -> None:
    with pytest.raises(scheduler.ScheduleError, match=words):
        scheduler.parse_cron(cron, tz)


def test_schedule_commands_add_list_remove(db_url: str) -> None:
    code, out = _cli(db_url, "schedule", "add", "nightly", "--cron", "0 1 * * *")
    assert code == 0, out
    code, out = _cli(db_url, "schedule", "list", "--json")
    [item] = json.loads(out)
    nxt = dt.datetime.fromisoformat(item["next_run_time"])
    assert nxt.astimezone(ZoneInfo("Asia/Shanghai")).time() == dt.time(1, 0)
    assert dt.timedelta(0) < nxt - dt.datetime.now(dt.UTC) <= dt.timedelta(days=1)
    assert item["last"] is None and item["office"] is None
    code, out = _cli(db_url, "schedule", "list")
    assert code == 0 and "nightly" in out and "上次运行：无" in out
    # Replacing keeps one schedule.
    assert _cli(db_url, "schedule", "add", "nightly", "--cron", "0 2 * * *")[0] == 0
    [item] = json.loads(_cli(db_url, "schedule", "list", "--json")[1])
    assert item["cron"] == "0 2 * * *"
    assert _cli(db_url, "schedule", "remove", "nightly")[0] == 0
    assert json.loads(_cli(db_url, "schedule", "list", "--json")[1]) == []
    code, out = _cli(db_url, "schedule", "remove", "nightly")
    assert code != 0 and "nightly" in out


def test_add_refuses_bad_input_and_stores_nothing(db_url: str) -> None:
    upgrade(db_url)
    code, out = _cli(db_url, "schedule", "add", "x", "--cron", "61 * * * *")
    assert code != 0 and "cron" in out
    code, out = _cli(db_url, "schedule", "add", "x", "--cron", "0 1 * * *", "--office", "999999")
    assert code != 0 and "999999" in out
    code, out = _cli(db_url, "schedule", "add", "x", "--cron", "0 1 * * *", "--tz", "Nowhere/City")
    assert code != 0 and "时区" in out
    assert json.loads(_cli(db_url, "schedule", "list", "--json")[1]) == []


def test_a_firing_is_claimed_once(db_url: str) -> None:
    engine = make_engine(db_url)
    scheduler.ensure_tables(engine)
    spec = scheduler.JobSpec("nightly", "0 1 * * *")
    when = dt.datetime(2026, 11, 28, 17, 0, tzinfo=dt.UTC)
    first = scheduler.claim_run(engine, spec, when, "a:1")
    assert first is not None
    assert scheduler.claim_run(engine, spec, when, "b:2") is None
    # The same moment written in another zone is the same firing.
    assert scheduler.claim_run(engine, spec, when.astimezone(ZoneInfo("Asia/Shanghai")), "b:2") is None
    assert scheduler.claim_run(engine, spec, when + dt.timedelta(days=1), "b:2") not in (None, first)
    engine.dispose()


def test_interrupted_run_is_taken_over_by_one_daemon(db_url: str) -> None:
    engine = make_engine(db_url)
    scheduler.ensure_tables(engine)
    spec = scheduler.JobSpec("nightly", "0 1 * * *")
    run_id = scheduler.claim_run(engine, spec, utcnow(), "gone-host:1")
    assert run_id is not None
    # Running, on another host, with a fresh heartbeat: not ours to take.
    assert scheduler.unfinished_runs(engine) == []
    with engine.begin() as conn:
        conn.execute(sa.update(scheduler.RUNS).values(status="interrupted"))
    assert scheduler.unfinished_runs(engine) == [run_id]
    assert scheduler.take_over(engine, run_id, "me:2") is True
    assert scheduler.take_over(engine, run_id, "other:3") is False  # now running, held by a live "me"
    engine.dispose()


def test_database_down_at_firing_time_is_mailed_to_the_center(mailbox: tuple[int, Mailbox]) -> None:
    port, box = mailbox
    closed = free_port()  # nothing listens there: the database is "down"
    cfg = Config(
        database_url=f"postgresql+psycopg://bw@127.0.0.1:{closed}/bw",
        smtp_port=port,
        center_email="center@example.gov.cn",
    )
    scheduler._DAEMON = scheduler.Daemon(cfg)
    try:
        spec = scheduler.JobSpec("nightly", "0 1 * * *", office="130603")
        assert scheduler.nightly(**spec.to_kwargs()) == "failed"
    finally:
        scheduler._DAEMON = None
    [msg] = box.to("center@example.gov.cn")
    assert "nightly" in str(msg["Subject"]) and "未能运行" in str(msg["Subject"])
    text = msg.get_body(("plain",))
    assert text is not None and "数据库不可用" in text.get_content()
