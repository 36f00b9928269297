"""Retention: old captures go, except those an annual report rests on; unreferenced blobs go; findings
stay. Real SQLite database through the migrations, real evidence store on disk."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import sqlalchemy as sa

from storage.db import make_engine, session_scope, upgrade
from storage.evidence import EvidenceStore, prune_captures
from storage.models import AnnualReport, Capture, Finding, Office, Scan, Unit, Website

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


def _age(store: EvidenceStore, key: str, days: int) -> None:
    ts = (NOW - dt.timedelta(days=days)).timestamp()
    os.utime(store.path_of(key), (ts, ts))


def test_prune_keeps_what_reports_refer_to(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    engine = make_engine(url)
    store = EvidenceStore(tmp_path / "ev")
    blobs = {
        name: store.put(f"<html>{name}</html>".encode()) for name in ("old", "reported", "new", "shared")
    }
    for key in blobs.values():
        _age(store, key, 500)
    young_orphan = store.put(b"written by a scan that is running now")
    with session_scope(engine) as s:
        s.add(Office(code="130600", name="保定市", level="city"))
        s.flush()
        unit = Unit(name="保定市测试局", kind="党政机关", office_code="130600")
        s.add(unit)
        s.flush()
        site = Website(unit_id=unit.id, name="站", url="http://a.gov.cn/")
        s.add(site)
        old_scan = Scan(scope={}, status="finished", started_at=NOW - dt.timedelta(days=500))
        new_scan = Scan(scope={}, status="finished", started_at=NOW - dt.timedelta(days=3))
        s.add_all([old_scan, new_scan])
        s.flush()

        def capture(scan: Scan, days: int, blob: str) -> Capture:
            c = Capture(
                scan_id=scan.id,
                website_id=site.id,
                subject=f"site:{site.id}",
                url=site.url,
                started=NOW - dt.timedelta(days=days),
                body_blob=blob,
                subresources={"http://dcs.conac.cn/x.js": {"kind": "badge_script", "blob": blobs["shared"]}},
            )
            s.add(c)
            s.flush()
            return c

        c_old = capture(old_scan, 500, blobs["old"])
        c_rep = capture(old_scan, 500, blobs["reported"])
        c_new = capture(new_scan, 3, blobs["new"])
        f_old = Finding(
            scan_id=old_scan.id,
            website_id=site.id,
            subject="site:1",
            check="badge",
            status="pass",
            reason="badge.ok",
            capture_id=c_old.id,
        )
        f_rep = Finding(
            scan_id=old_scan.id,
            website_id=site.id,
            subject="site:1",
            check="icp",
            status="pass",
            reason="icp.ok",
            capture_id=c_rep.id,
        )
        s.add_all([f_old, f_rep])
        s.flush()
        s.add(
            AnnualReport(
                unit_id=unit.id,
                year=2025,
                derived_badge={"value": "是", "finding_ids": [f_rep.id], "scan_id": old_scan.id},
            )
        )
        ids = (c_old.id, c_rep.id, c_new.id, f_old.id)

    summary = prune_captures(engine, store, retention_days=400, now=NOW)

    assert summary.captures_deleted == 1
    assert summary.captures_kept_for_reports == 1
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(Capture.id)).scalars())
        assert left == {ids[1], ids[2]}
        assert conn.execute(sa.select(Finding.capture_id).where(Finding.id == ids[3])).scalar_one() is None
        assert conn.execute(sa.select(sa.func.count()).select_from(Finding)).scalar_one() == 2
    assert not store.exists(blobs["old"])
    for name in ("reported", "new", "shared"):
        assert store.get(blobs[name])
    assert store.get(young_orphan)  # too young to be garbage: a running scan may reference it soon
    assert summary.blobs_deleted == 1
    engine.dispose()
