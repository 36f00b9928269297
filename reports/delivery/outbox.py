"""The outbox: every message is a :class:`~storage.models.Notification` row, sent at most once.

A message's ``dedupe_key`` names what it belongs to (scan or report event), its recipient and its
channel; enqueueing the same key again returns the stored row, so running ``notify`` twice sends
nothing new. Sending claims a row by bumping ``attempts`` with a compare-and-set, so two ``notify``
processes never send the same row at the same time. A failed attempt keeps the row ``pending`` with
its error and is retried with exponential backoff, within the run and by later runs, until
``max_attempts``; then it is ``failed`` (and reported). The backoff is stored in the row
(``next_attempt_at``), so a ``notify`` run started before a failed message's wait is over leaves it
alone (``waiting``) instead of hammering a server that just refused it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reports.delivery.mail import DeliveryError
from storage.evidence import EvidenceStore
from storage.models import Notification, NotificationStatus
from storage.types import utcnow

log = logging.getLogger(__name__)

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to be recorded and sent."""

    dedupe_key: str
    channel: str  # "email" | "sms"
    recipient: str
    subject: str
    body: str  # HTML for e-mail, the text for SMS
    attachment_name: str = ""
    attachment: bytes | None = None
    office_code: str | None = None
    unit_id: int | None = None
    scan_id: int | None = None
    report_id: int | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts_per_run: int = 3
    backoff_s: float = 2.0  # first wait; doubles after each failure
    max_backoff_s: float = 60.0
    max_attempts: int = 10  # over all runs; then the message is marked failed

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failed attempt of a message (counted over all runs)."""
        return float(min(self.backoff_s * (2 ** max(failures - 1, 0)), self.max_backoff_s))


DEFAULT_POLICY = RetryPolicy()

# A sender gets the row and the attachment bytes (if any) and raises DeliveryError on failure.
Sender = Callable[[Notification, bytes | None], None]


@dataclass(slots=True)
class DispatchResult:
    sent: list[Notification] = field(default_factory=list)
    retry: list[Notification] = field(default_factory=list)  # still pending, will be retried
    failed: list[Notification] = field(default_factory=list)  # gave up after max_attempts
    waiting: list[Notification] = field(default_factory=list)  # pending, its backoff not yet over

    @property
    def ok(self) -> bool:
        return not self.retry and not self.failed and not self.waiting


def enqueue(session: Session, out: Outgoing, store: EvidenceStore | None) -> tuple[Notification, bool]:
    """Record ``out`` unless its key is already recorded; returns (row, created)."""
    existing = session.scalars(
        sa.select(Notification).where(Notification.dedupe_key == out.dedupe_key)
    ).first()
    if existing is not None:
        return existing, False
    blob = ""
    if out.attachment is not None:
        if store is None:
            raise ValueError(f"{out.dedupe_key}: 附件需要证据存储目录（evidence_dir）")
        blob = store.put(out.attachment)
    row = Notification(
        dedupe_key=out.dedupe_key,
        channel=out.channel,
        recipient=out.recipient,
        office_code=out.office_code,
        unit_id=out.unit_id,
        scan_id=out.scan_id,
        report_id=out.report_id,
        subject=out.subject,
        body=out.body,
        attachment_name=out.attachment_name,
        attachment_blob=blob,
        status=NotificationStatus.PENDING.value,
        attempts=0,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another notify recorded it between our look-up and insert: theirs stands.
        stored = session.scalars(
            sa.select(Notification).where(Notification.dedupe_key == out.dedupe_key)
        ).one()
        return stored, False
    return row, True


def _claim(session: Session, row: Notification, due_by: datetime | None) -> bool:
    """Take the row for one attempt (compare-and-set on ``attempts``); committed at once. With
    ``due_by``, only if its backoff is over by then."""
    conditions = [
        Notification.id == row.id,
        Notification.attempts == row.attempts,
        Notification.status == NotificationStatus.PENDING.value,
    ]
    if due_by is not None:
        conditions.append(
            sa.or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= due_by)
        )
    result = session.execute(
        sa.update(Notification)
        .where(*conditions)
        .values(attempts=Notification.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(row)
    return bool(getattr(result, "rowcount", 0) == 1)


def dispatch(
    session: Session,
    rows: Iterable[Notification],
    senders: Mapping[str, Sender],
    store: EvidenceStore | None,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = utcnow,
) -> DispatchResult:
    """Try to send every pending row whose backoff is over; commits after every attempt so nothing is
    lost on a crash. A failure sets the row's ``next_attempt_at``; rows not yet due are ``waiting``."""
    result = DispatchResult()
    for row in rows:
        if row.status != NotificationStatus.PENDING.value:
            continue
        if row.next_attempt_at is not None and row.next_attempt_at > now():
            result.waiting.append(row)
            continue
        sender = senders.get(row.channel)
        failures_this_run = 0
        while True:
            # The first attempt checks the stored backoff (another process may have failed since we
            # read the row); later ones in this run come after our own wait.
            if not _claim(session, row, now() if failures_this_run == 0 else None):
                log.info("notification %s is being sent by another process", row.id)
                break
            try:
                if sender is None:
                    raise DeliveryError(f"没有可用的发送通道: {row.channel}")
                data = None
                if row.attachment_blob:
                    if store is None:
                        raise DeliveryError(f"附件 {row.attachment_name} 无法读取：未配置证据存储目录")
                    data = store.get(row.attachment_blob)
                sender(row, data)
            except Exception as exc:  # any failure of one message must not stop the others
                failures_this_run += 1
                row.last_error = (
                    str(exc)[:2000] if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
                )
                log.warning(
                    "notification %s to %s failed (attempt %s): %s",
                    row.id,
                    row.recipient,
                    row.attempts,
                    row.last_error,
                )
                if row.attempts >= policy.max_attempts:
                    row.status = NotificationStatus.FAILED.value
                    row.next_attempt_at = None
                    session.commit()
                    result.failed.append(row)
                    break
                # The backoff grows with the failures over all runs, and is kept for the next run.
                wait = policy.delay(row.attempts)
                row.next_attempt_at = now() + timedelta(seconds=wait)
                session.commit()
                if failures_this_run >= policy.attempts_per_run:
                    result.retry.append(row)
                    break
                sleep(wait)
                continue
            row.status = NotificationStatus.SENT.value
            row.sent_at = utcnow()
            row.last_error = ""
            row.next_attempt_at = None
            session.commit()
            result.sent.append(row)
            break
    return result


def pending(session: Session) -> list[Notification]:
    return list(
        session.scalars(
            sa.select(Notification)
            .where(Notification.status == NotificationStatus.PENDING.value)
            .order_by(Notification.id)
        )
    )
