"""``recheck`` stores what the scan stored: every column a verdict gives its finding, not only the
status and reason, from the same evidence and rules (both write them with crawler/findings.py).

Two inputs a recheck does not have are left out of the comparison, each named: the size limit a body
exceeded (the capture keeps no body, so the detail of ``http.too_large`` cannot repeat the number) and
the sub-resources a check still wanted when the scan could not render (``data["needs"]``: a recheck
reads stored evidence only, so nothing is left to want)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from storage.db import make_engine
from storage.models import Finding
from tests.crawler.conftest import ScannedCatalogue


def _rows(db_url: str, scan_id: int) -> dict[tuple[str, str], tuple[Any, ...]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    Finding.subject,
                    Finding.check,
                    Finding.status,
                    Finding.reason,
                    Finding.detail,
                    Finding.evidence,
                    Finding.data,
                    Finding.attempts,
                    Finding.confirmed,
                    Finding.capture_id,
                ).where(Finding.scan_id == scan_id)
            ).all()
    finally:
        engine.dispose()
    out = {}
    for r in rows:
        data = {k: v for k, v in (r.data or {}).items() if k != "needs"}
        detail = "" if r.reason == "http.too_large" else r.detail
        out[(r.subject, r.check)] = (r.status, r.reason, detail, r.evidence, data, *r[7:])
    return out


def test_recheck_stores_the_scans_rows_unchanged(scanned_catalogue_static: ScannedCatalogue) -> None:
    sc = scanned_catalogue_static
    before = _rows(sc.ws.db_url, sc.scan_id)
    assert len(before) > 100  # the catalogue: every scenario of docs/simnet.md
    assert any(row[3] for row in before.values()), "no finding carries evidence: nothing compared"
    assert any(row[4] for row in before.values()), "no finding carries data: nothing compared"
    proc = sc.ws.run("recheck", "--scan", str(sc.scan_id), BADGEWATCH_NAMESERVERS="127.0.0.1:9")
    assert "0 条结论有变化" in proc.stdout, proc.stdout
    after = _rows(sc.ws.db_url, sc.scan_id)
    changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert changed == {}
    assert after.keys() == before.keys()
