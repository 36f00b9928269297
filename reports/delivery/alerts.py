"""Alerts to the domain center (``center_email``) when a night of the nightly chain fails.

Through the outbox (:mod:`reports.delivery.outbox`) when the database works, so an alert is sent once per
run and stage; straight over SMTP, unrecorded, when the database itself is what failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from html import escape

from sqlalchemy.orm import Session

from reports.delivery.mail import DeliveryError, SmtpSettings, build_email, send_email
from reports.delivery.outbox import Outgoing, RetryPolicy, dispatch, enqueue
from reports.notify import addresses, default_senders
from storage.config import Config
from storage.db import make_engine

log = logging.getLogger("badgewatch.scheduler")


@dataclass(frozen=True)
class FailedStage:
    """What the center is told: which schedule, which run and stage, how often tried, the error."""

    schedule: str
    cron: str
    tz: str
    office: str | None
    run_id: int
    stage: str
    stage_label: str
    attempts: int
    message: str
    scan_id: int | None


def center_addresses(cfg: Config) -> list[str]:
    return [a for a in addresses(cfg.center_email) if "@" in a]


def send_stage_alert(cfg: Config, failed: FailedStage) -> None:
    """E-mail the center that a stage failed for good (once per run and stage, through the outbox)."""
    f = failed
    subject = f"【网标巡检】定时任务 {f.schedule} 失败：{f.stage_label}（运行 #{f.run_id}）"
    body = (
        f"<html><body><p>定时任务 <b>{escape(f.schedule)}</b>（{escape(f.cron)}，{escape(f.tz)}，"
        f"范围：{escape(f.office or '全部编办')}）的第 #{f.run_id} 次运行在“{f.stage_label}”"
        f"步骤失败，已尝试 {f.attempts} 次。</p>"
        f'<p style="white-space: pre-wrap"><b>错误：</b>{escape(f.message)}</p>'
        f"<p>巡检编号：{f.scan_id if f.scan_id is not None else '无'}。此前各步骤的结果已保存，"
        f"处理办法见运维手册 docs/operations.md（“某一夜失败时”）。</p></body></html>"
    )
    engine = make_engine(cfg.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            rows = []
            for addr in center_addresses(cfg):
                key = f"schedule:{f.run_id}:{f.stage}:failed:email:{addr.lower()}"
                row, _ = enqueue(session, Outgoing(key, "email", addr, subject, body), None)
                rows.append(row)
            session.commit()
            dispatch(
                session, rows, default_senders(cfg), None, RetryPolicy(attempts_per_run=2, backoff_s=1.0)
            )
    finally:
        engine.dispose()


def mail_center_directly(cfg: Config, schedule: str, when: dt.datetime, message: str) -> None:
    """An alert that cannot go through the outbox (the database is down): sent once, not recorded."""
    subject = f"【网标巡检】定时任务 {schedule} 未能运行（计划 {when.isoformat()}）"
    for addr in center_addresses(cfg):
        try:
            msg = build_email(cfg.smtp_from, addr, subject, f"<p>{escape(message)}</p>", message)
            send_email(SmtpSettings.from_config(cfg), msg)
        except (DeliveryError, ValueError) as exc:
            log.error("could not tell %s that schedule %s did not run: %s", addr, schedule, exc)
