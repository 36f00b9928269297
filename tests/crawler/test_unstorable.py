"""One subject's data cannot fail the batch it is written with (found by the fuzz scan,
test_fuzz_scan.py): text a server sent is made storable, and a subject the database refuses is stored
as ``unknown/internal_error`` while the rest of its batch is written."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from checks.verdict import Status, Verdict
from crawler.flow import CaptureRecord, SubjectResult
from crawler.pipelines import StorePipeline, storable, write_batch, write_separately
from crawler.progress import Progress
from crawler.spiders.sites import FinalResult
from storage.db import make_engine, upgrade
from storage.models import Capture, Finding, Scan


@pytest.fixture(params=["sqlite", "postgresql"])
def scan_db(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_pg_database: Callable[[], str]
) -> Iterator[tuple[Any, int]]:
    url = f"sqlite:///{tmp_path / 'test.db'}" if request.param == "sqlite" else fresh_pg_database()
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        scan_id = conn.execute(
            sa.insert(Scan).returning(Scan.id),
            {"scope": {}, "status": "running", "started_at": datetime.now(UTC), "counters": {}, "error": ""},
        ).scalar_one()
    try:
        yield engine, int(scan_id)
    finally:
        engine.dispose()


def _result(subject: str, url: str, status: int | None = 200, detail: str = "HTTP 200") -> FinalResult:
    capture = CaptureRecord(
        url=url,
        final_url=url,
        status=status,
        error=detail,
        http_chain=[{"url": url, "status": status, "location": detail, "error": ""}],
    )
    verdicts = [Verdict(c, Status.UNKNOWN, "http.protocol_error", detail) for c in ("dns", "domain", "usage")]
    return FinalResult(SubjectResult(subject, None, None, verdicts, capture), {})


def test_text_a_server_sent_is_stored_whatever_it_holds(scan_db: tuple[Any, int]) -> None:
    """NUL (refused by PostgreSQL in text columns) and unpaired surrogates, as header values, Location
    targets and error messages quoting a status line carry them."""
    engine, scan_id = scan_db
    odd = "HTTP/1.1 200 \x00成功 \udcff"
    assert write_batch(engine, scan_id, [_result("domain:1", f"http://a.gov.cn/{odd}", detail=odd)]) == 1
    with engine.connect() as conn:
        detail = (
            conn.execute(sa.select(Finding.detail).where(Finding.subject == "domain:1")).scalars().first()
        )
        url = conn.execute(sa.select(Capture.url).where(Capture.subject == "domain:1")).scalar_one()
    assert detail == storable(odd) == "HTTP/1.1 200 \ufffd成功 ?"
    assert url.endswith(storable(odd))


def test_one_unstorable_subject_does_not_fail_its_batch(scan_db: tuple[Any, int]) -> None:
    """A status no integer column holds (twisted accepted "HTTP/1.1 20000000000000000000 OK") refused
    the whole batch: 200 subjects lost and the scan interrupted. Now the others are written and that
    one is stored as internal_error."""
    engine, scan_id = scan_db
    batch = [_result(f"domain:{n}", f"http://d{n}.gov.cn/") for n in range(5)]
    batch[2] = _result("domain:2", "http://d2.gov.cn/", status=20_000_000_000_000_000_000)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        write_batch(engine, scan_id, batch)
    # As the pipeline does it: the batch is refused, its subjects are written one by one, and the
    # scan's counters count what was stored.
    pipe = StorePipeline()
    pipe.db, pipe.scan_id, pipe.confirm_attempts = engine, scan_id, 2
    pipe.progress = Progress(len(batch), stream=io.StringIO())
    for fr in batch:
        pipe.progress.record(fr.result)
    unwritten, replaced = pipe._write(batch, None)
    assert unwritten == [] and [stand_in.subject for _original, stand_in in replaced] == ["domain:2"]
    for original, stand_in in replaced:
        pipe._restate(original, stand_in)
    summary = pipe.progress.summary()
    assert summary["by_status"] == {"unknown": 15}
    assert summary["problems"] == {"http.protocol_error": 12, "internal_error": 3}
    assert write_separately(engine, scan_id, batch) == (0, [f"domain:{n}" for n in range(5)], [])
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Finding.subject, Finding.check, Finding.status, Finding.reason, Finding.detail)
        ).all()
    assert len(rows) == 15
    stand_in = [r for r in rows if r.subject == "domain:2"]
    assert {(r.check, r.status, r.reason) for r in stand_in} == {
        (c, "unknown", "internal_error") for c in ("dns", "domain", "usage")
    }
    assert all("storing the findings failed" in r.detail for r in stand_in)
    assert {r.reason for r in rows if r.subject != "domain:2"} == {"http.protocol_error"}
