"""`notify` end to end: real mail to aiosmtpd, real SMS to a local HTTP gateway, once only, retries."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy.orm import Session

import badgewatch
from checks.reasons import describe
from reports.annual import transition
from reports.annual_import import import_annual
from reports.delivery.outbox import RetryPolicy
from reports.notify import run
from storage.config import Config
from storage.models import AnnualReport, Notification, Scan, Unit

from .dbdata import add_scan, new_engine, small_world
from .servers import MailHandler, dropping_server, sms_gateway, smtp_server

FAST = RetryPolicy(attempts_per_run=2, backoff_s=0.01, max_attempts=5)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_fresh")
    else:
        url = f"sqlite:///{tmp_path / 'bw.db'}"
    engine = new_engine(url)
    small_world(engine)
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    add_scan(engine, t0, [("130600", "badge.missing", "fail", True)])
    add_scan(
        engine,
        t0 + dt.timedelta(days=1),
        [
            ("130600", "badge.missing", "fail", True),
            ("130621", "icp.missing", "fail", True),
            ("130633", "http.blocked", "unknown", False),
        ],
    )
    # 易县's unit submits an annual report that the center rejects.
    with Session(engine, expire_on_commit=False) as s:
        unit = s.scalars(sa.select(Unit).where(Unit.office_code == "130633")).one()
        csv_path = tmp_path / "annual.csv"
        csv_path.write_text(
            "年度,统一社会信用代码,开办主体名称,网站名称,中文域名与英文域名的有效性及使用状况,"
            "职能或业务范围是否经过审核,是否加挂网站标识\n"
            f"2026,{unit.uscc},{unit.name},网站,有效,是,是\n",
            encoding="utf-8",
        )
        import_annual(s, csv_path)
        report = s.scalars(sa.select(AnnualReport)).one()
        transition(s, report, "reject", "center-user", reason="网站无法访问，请核实网址")
        s.commit()
    engine.dispose()
    return url


def _config(db: str, tmp_path: Path, smtp_port: int, sms_url: str) -> Config:
    return Config(
        database_url=db,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_from="bw@test.example",
        sms_url=sms_url + "/sms",
        evidence_dir=str(tmp_path / "evidence"),
        center_email="center@test.example",
        timeout_s=10,
    )


def test_notify_sends_each_message_once(db: str, tmp_path: Path) -> None:
    handler = MailHandler()
    with smtp_server(handler) as port, sms_gateway() as (sms_url, sms):
        cfg = _config(db, tmp_path, port, sms_url)
        engine = new_engine_noop(db)
        with Session(engine, expire_on_commit=False) as s:
            first = run(s, cfg, policy=FAST)
        assert first.dispatch.ok and first.recorded == len(first.dispatch.sent) == 6
        with Session(engine, expire_on_commit=False) as s:
            second = run(s, cfg, policy=FAST)
        assert second.recorded == 0 and second.already == 6 and second.dispatch.sent == []
    # Three offices + the center by e-mail, the rejected unit by e-mail; its SMS went to the gateway.
    by_rcpt = {r.rcpt_tos[0]: r.message for r in handler.received}
    assert len(handler.received) == 5
    assert set(by_rcpt) == {
        "city@office.test",
        "mancheng@office.test",
        "yixian@office.test",
        "center@test.example",
        "unit130633@unit.test",
    }
    city = by_rcpt["city@office.test"]
    assert city["Subject"].startswith("【网标巡检】保定市网站标识及域名不合规清单（2026年11月2日，巡检2）")
    assert "不合规1项" in city["Subject"]
    [att] = list(city.iter_attachments())
    assert att.get_filename() == "不合规清单_保定市_2026年11月2日.xlsx"
    wb = load_workbook(io.BytesIO(att.get_content()))
    assert wb.sheetnames == ["保定市"]
    ws = wb["保定市"]
    assert ws["A2"].value.startswith("巡检范围：保定市；巡检时间：2026-11-02 08:00（北京时间）")
    header = [c.value for c in ws[3]]
    row = {h: c.value for h, c in zip(header, ws[4], strict=True)}
    assert row["状态"] == "不合规" and row["变化"] == "持续" and row["单位名称"] == "单位130600"
    assert (
        row["问题"] == describe("badge.missing").message
        and row["整改建议"] == describe("badge.missing").advice
    )
    html = city.get_body(("html",))
    assert html is not None and describe("badge.missing").message in html.get_content()
    yi = by_rcpt["yixian@office.test"]
    assert "不合规0项" in yi["Subject"] and "无法判定1项" in yi["Subject"]
    center = by_rcpt["center@test.example"]
    [catt] = list(center.iter_attachments())
    assert load_workbook(io.BytesIO(catt.get_content())).sheetnames == ["保定市", "满城县", "易县"]
    unit_mail = by_rcpt["unit130633@unit.test"]
    assert "未通过审核" in unit_mail["Subject"]
    assert "网站无法访问，请核实网址" in unit_mail.get_body(("html",)).get_content()
    assert list(unit_mail.iter_attachments()) == []
    [req] = sms
    assert req.method == "POST" and req.body is not None and req.body["mobile"] == "13900000002"
    assert (
        req.body["text"].startswith("【网标巡检】单位130633：")
        and "网站无法访问，请核实网址" in req.body["text"]
    )
    with Session(engine, expire_on_commit=False) as s:
        rows = list(s.scalars(sa.select(Notification)))
        assert len(rows) == 6 and all(n.status == "sent" and n.attempts == 1 for n in rows)


def new_engine_noop(url: str) -> sa.Engine:
    from storage.db import make_engine

    return make_engine(url)


class Clock:
    """The backoff's clock: ``sleep`` moves it on and records how long each wait was."""

    def __init__(self) -> None:
        self.at = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
        self.waits: list[float] = []

    def now(self) -> dt.datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.at += dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("failure", ["refuse", "drop"])
def test_failed_delivery_stays_queued_and_is_retried(db: str, tmp_path: Path, failure: str) -> None:
    engine = new_engine_noop(db)
    policy = RetryPolicy(attempts_per_run=2, backoff_s=60.0, max_backoff_s=3600.0, max_attempts=5)
    clock = Clock()
    with sms_gateway() as (sms_url, sms):
        bad = smtp_server(MailHandler(refuse=True)) if failure == "refuse" else dropping_server()
        with bad as port, Session(engine, expire_on_commit=False) as s:
            result = run(
                s, _config(db, tmp_path, port, sms_url), policy=policy, sleep=clock.sleep, now=clock.now
            )
        assert len(result.dispatch.retry) == 5 and result.dispatch.failed == []
        assert [n.channel for n in result.dispatch.sent] == ["sms"]
        # Within the run: one wait of the first backoff per message between its two attempts.
        assert clock.waits == [60.0] * 5
        with Session(engine, expire_on_commit=False) as s:
            waiting = list(s.scalars(sa.select(Notification).where(Notification.status == "pending")))
            assert len(waiting) == 5 and all(n.attempts == 2 and n.last_error for n in waiting)
            # After the second failure the wait doubles, and is kept for the next notify run.
            due = {n.id: n.next_attempt_at for n in waiting}
            assert all(t is not None and t - clock.at <= dt.timedelta(seconds=120) for t in due.values())
            assert max(t for t in due.values() if t is not None) == clock.at + dt.timedelta(seconds=120)
            latest = max(t for t in due.values() if t is not None)
        handler = MailHandler()
        with smtp_server(handler) as port:
            # A run before the backoff is over leaves the messages alone: no attempt, no mail.
            clock.at = min(t for t in due.values() if t is not None) - dt.timedelta(seconds=1)
            with Session(engine, expire_on_commit=False) as s:
                early = run(
                    s, _config(db, tmp_path, port, sms_url), policy=policy, sleep=clock.sleep, now=clock.now
                )
            assert early.dispatch.sent == [] and len(early.dispatch.waiting) == 5 and not early.dispatch.ok
            assert handler.received == []
            clock.at = latest
            with Session(engine, expire_on_commit=False) as s:
                retry = run(
                    s, _config(db, tmp_path, port, sms_url), policy=policy, sleep=clock.sleep, now=clock.now
                )
        assert retry.recorded == 0 and len(retry.dispatch.sent) == 5 and retry.dispatch.ok
        assert len(handler.received) == 5 and len(sms) == 1
        with Session(engine, expire_on_commit=False) as s:
            emails = list(s.scalars(sa.select(Notification).where(Notification.channel == "email")))
            assert {n.attempts for n in emails} == {3}
            assert all(n.next_attempt_at is None for n in emails)


def test_gives_up_after_max_attempts(db: str, tmp_path: Path) -> None:
    engine = new_engine_noop(db)
    policy = RetryPolicy(attempts_per_run=2, backoff_s=0.0, max_attempts=3)
    with sms_gateway(status=503) as (sms_url, _), dropping_server() as port:
        cfg = _config(db, tmp_path, port, sms_url)
        with Session(engine, expire_on_commit=False) as s:
            r1 = run(s, cfg, policy=policy)
        assert len(r1.dispatch.retry) == 6
        with Session(engine, expire_on_commit=False) as s:
            r2 = run(s, cfg, policy=policy)
        assert len(r2.dispatch.failed) == 6 and r2.dispatch.retry == []
        with Session(engine, expire_on_commit=False) as s:
            r3 = run(s, cfg, policy=policy)
        assert r3.dispatch.sent == [] and r3.dispatch.failed == []  # given up: not retried forever
        with Session(engine, expire_on_commit=False) as s:
            assert {n.status for n in s.scalars(sa.select(Notification))} == {"failed"}


def test_cli_dry_run_and_notify(db: str, tmp_path: Path) -> None:
    handler = MailHandler()
    with smtp_server(handler) as port, sms_gateway() as (sms_url, sms):
        env = {k: v for k, v in os.environ.items() if not k.startswith("BADGEWATCH_")}
        env.update(
            BADGEWATCH_DATABASE_URL=db,
            BADGEWATCH_SMTP_PORT=str(port),
            BADGEWATCH_SMTP_HOST="127.0.0.1",
            BADGEWATCH_SMS_URL=sms_url,
            BADGEWATCH_EVIDENCE_DIR=str(tmp_path / "ev"),
        )
        runner = CliRunner()
        dry = runner.invoke(badgewatch.cli, ["notify", "--dry-run"], env=env)
        assert dry.exit_code == 0, dry.output
        assert "[新] email → city@office.test" in dry.output and "[新] sms → 13900000002" in dry.output
        assert handler.received == [] and sms == []
        sent = runner.invoke(badgewatch.cli, ["notify", "--retry-wait", "0"], env=env)
        assert sent.exit_code == 0, sent.output
        assert "本次发送成功5条" in sent.output
        dry2 = runner.invoke(badgewatch.cli, ["notify", "--dry-run"], env=env)
        assert "[已发送，不再发送] email → city@office.test" in dry2.output
        again = runner.invoke(badgewatch.cli, ["notify"], env=env)
        assert again.exit_code == 0 and "本次发送成功0条" in again.output
    assert len(handler.received) == 4 and len(sms) == 1


def _scoped_scan(db: str, codes: list[str]) -> int:
    """A finished scan of ``codes`` only (the scope the crawler records), after the fixture's two."""
    engine = new_engine_noop(db)
    sid = add_scan(engine, dt.datetime(2026, 11, 3, tzinfo=dt.UTC), [("130621", "icp.missing", "fail", True)])
    with engine.begin() as conn:
        conn.execute(
            sa.update(Scan).where(Scan.id == sid).values(scope={"office_codes": codes, "limit": None})
        )
    engine.dispose()
    return int(sid)


def test_notify_after_a_scan_of_one_office_mails_only_that_office(db: str, tmp_path: Path) -> None:
    sid = _scoped_scan(db, ["130621"])
    handler = MailHandler()
    with smtp_server(handler) as port, sms_gateway() as (sms_url, sms):
        engine = new_engine_noop(db)
        with Session(engine, expire_on_commit=False) as s:
            result = run(s, _config(db, tmp_path, port, sms_url), scan_id=sid, policy=FAST)
        assert result.dispatch.ok
    by_rcpt = {r.rcpt_tos[0]: r.message for r in handler.received}
    # 保定市 and 易县 were not visited by this scan: no list for them (a clean one would be false).
    assert set(by_rcpt) == {"mancheng@office.test", "center@test.example", "unit130633@unit.test"}
    assert f"巡检编号 {sid}" in by_rcpt["mancheng@office.test"].get_body(("plain",)).get_content()
    assert "不合规1项" in by_rcpt["mancheng@office.test"]["Subject"]
    [att] = list(by_rcpt["center@test.example"].iter_attachments())
    assert load_workbook(io.BytesIO(att.get_content())).sheetnames == ["满城县"]
    assert "1个编办" in by_rcpt["center@test.example"]["Subject"] and len(sms) == 1


def test_notify_office_option(db: str, tmp_path: Path) -> None:
    sid = _scoped_scan(db, ["130621"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("BADGEWATCH_")}
    env.update(
        BADGEWATCH_DATABASE_URL=db,
        BADGEWATCH_SMTP_HOST="127.0.0.1",
        BADGEWATCH_EVIDENCE_DIR=str(tmp_path / "ev"),
        BADGEWATCH_CENTER_EMAIL="center@test.example",
    )
    runner = CliRunner()
    # The city and below, after a scan of 满城县: only 满城县's list, and 易县's unit its rejection.
    dry = runner.invoke(
        badgewatch.cli, ["notify", "--scan", str(sid), "--office", "130600", "--dry-run"], env=env
    )
    assert dry.exit_code == 0, dry.output
    lines = [line for line in dry.output.splitlines() if line.startswith("[")]
    assert any("email → mancheng@office.test" in line for line in lines)
    assert not any("city@office.test" in line or "yixian@office.test" in line for line in lines)
    assert not any("center@test.example" in line for line in lines)  # the summary is the whole scan's
    assert any("email → unit130633@unit.test" in line for line in lines)
    # 易县 alone (on the full scan 2): its list and its unit's rejection; nothing of 满城县.
    dry2 = runner.invoke(
        badgewatch.cli, ["notify", "--scan", "2", "--office", "130633", "--dry-run"], env=env
    )
    assert dry2.exit_code == 0, dry2.output
    assert "yixian@office.test" in dry2.output and "unit130633@unit.test" in dry2.output
    assert "mancheng@office.test" not in dry2.output and "city@office.test" not in dry2.output
    # 满城县 alone: no rejection of an 易县 unit.
    dry3 = runner.invoke(
        badgewatch.cli, ["notify", "--scan", "2", "--office", "130621", "--dry-run"], env=env
    )
    assert "mancheng@office.test" in dry3.output and "unit130633" not in dry3.output
    # An office the scan did not cover, and an unknown office, are refused by name.
    uncovered = runner.invoke(badgewatch.cli, ["notify", "--scan", str(sid), "--office", "130633"], env=env)
    assert uncovered.exit_code != 0 and "130633" in uncovered.output and f"巡检 {sid}" in uncovered.output
    unknown = runner.invoke(badgewatch.cli, ["notify", "--office", "999999", "--dry-run"], env=env)
    assert unknown.exit_code != 0 and "999999" in unknown.output


def test_office_run_retries_only_that_offices_failures(db: str, tmp_path: Path) -> None:
    engine = new_engine_noop(db)
    policy = RetryPolicy(attempts_per_run=1, backoff_s=0.0, max_attempts=5)
    with (
        sms_gateway() as (sms_url, _sms),
        dropping_server() as port,
        Session(engine, expire_on_commit=False) as s,
    ):
        first = run(s, _config(db, tmp_path, port, sms_url), policy=policy)
    assert len(first.dispatch.retry) == 5
    handler = MailHandler()
    with (
        sms_gateway() as (sms_url, _sms),
        smtp_server(handler) as port,
        Session(engine, expire_on_commit=False) as s,
    ):
        scoped = run(s, _config(db, tmp_path, port, sms_url), policy=policy, office="130621")
    assert [n.recipient for n in scoped.dispatch.sent] == ["mancheng@office.test"]
    assert [r.rcpt_tos for r in handler.received] == [["mancheng@office.test"]]
    with Session(engine) as s:
        left = set(s.scalars(sa.select(Notification.recipient).where(Notification.status == "pending")))
    assert left == {"city@office.test", "yixian@office.test", "center@test.example", "unit130633@unit.test"}
