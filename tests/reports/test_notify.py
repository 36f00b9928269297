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
from storage.models import AnnualReport, Notification, Unit

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
    assert city["Subject"].startswith("【网标巡检】保定市网站标识及域名不合规清单（巡检2）")
    assert "不合规1项" in city["Subject"]
    [att] = list(city.iter_attachments())
    assert att.get_filename() == "不合规清单_保定市_巡检2.xlsx"
    wb = load_workbook(io.BytesIO(att.get_content()))
    assert wb.sheetnames == ["保定市"]
    ws = wb["保定市"]
    header = [c.value for c in ws[2]]
    row = {h: c.value for h, c in zip(header, ws[3], strict=True)}
    assert row["类别"] == "不合规" and row["变化"] == "持续" and row["单位名称"] == "单位130600"
    assert (
        row["问题"] == describe("badge.missing").message
        and row["整改建议"] == describe("badge.missing").advice
    )
    html = city.get_body(("html",))
    assert html is not None and describe("badge.missing").message in html.get_content()
    yi = by_rcpt["yixian@office.test"]
    assert "不合规0项" in yi["Subject"] and "无法核实1项" in yi["Subject"]
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


@pytest.mark.parametrize("failure", ["refuse", "drop"])
def test_failed_delivery_stays_queued_and_is_retried(db: str, tmp_path: Path, failure: str) -> None:
    engine = new_engine_noop(db)
    with sms_gateway() as (sms_url, sms):
        bad = smtp_server(MailHandler(refuse=True)) if failure == "refuse" else dropping_server()
        with bad as port, Session(engine, expire_on_commit=False) as s:
            result = run(s, _config(db, tmp_path, port, sms_url), policy=FAST)
        assert len(result.dispatch.retry) == 5 and result.dispatch.failed == []
        assert [n.channel for n in result.dispatch.sent] == ["sms"]
        with Session(engine, expire_on_commit=False) as s:
            waiting = list(s.scalars(sa.select(Notification).where(Notification.status == "pending")))
            assert len(waiting) == 5 and all(n.attempts == 2 and n.last_error for n in waiting)
        handler = MailHandler()
        with smtp_server(handler) as port, Session(engine, expire_on_commit=False) as s:
            retry = run(s, _config(db, tmp_path, port, sms_url), policy=FAST)
        assert retry.recorded == 0 and len(retry.dispatch.sent) == 5 and retry.dispatch.ok
        assert len(handler.received) == 5 and len(sms) == 1
        with Session(engine, expire_on_commit=False) as s:
            assert {
                n.attempts for n in s.scalars(sa.select(Notification).where(Notification.channel == "email"))
            } == {3}


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
