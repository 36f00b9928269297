"""The whole simnet scenario catalogue, scanned end to end and compared with its ground truth."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from storage.db import make_engine
from storage.evidence import EvidenceStore
from storage.models import Capture, Finding, Scan
from tests.crawler.conftest import ScannedCatalogue
from tests.crawler.truth import compare


def test_every_check_matches_ground_truth(scanned_catalogue: ScannedCatalogue) -> None:
    sc = scanned_catalogue
    assert sc.scan["status"] == "finished", sc.scan
    engine = make_engine(sc.ws.db_url)
    cmp = compare(engine, sc.scan_id, sc.truth, rendered=True)
    engine.dispose()
    assert cmp.compared > 900, cmp.report()
    assert cmp.ok, "\n" + cmp.report()


def test_only_sites_the_import_refused_are_missing(scanned_catalogue: ScannedCatalogue) -> None:
    sc = scanned_catalogue
    engine = make_engine(sc.ws.db_url)
    cmp = compare(engine, sc.scan_id, sc.truth)
    engine.dispose()
    # The import refuses rows whose Chinese domain is invalid or of the wrong kind (domain.md §2):
    # those sites never reach a scan. Nothing else may be missing.
    for site in cmp.not_imported:
        assert site["scenario"] in ("domain.wrong_kind", "domain.label_too_long", "domain.invalid"), site
    assert cmp.missing == []


def test_confirmation_retries_failures_and_records_agreement(scanned_catalogue: ScannedCatalogue) -> None:
    findings = scanned_catalogue.ws.findings(scanned_catalogue.scan_id)
    attempts = Counter((status, n) for status, _reason, n in findings.values())
    # With confirm_attempts=2 every fail was tried twice and both attempts agreed (simnet is stable);
    # a pass is final at once.
    assert attempts[("fail", 2)] > 10
    assert attempts[("fail", 1)] == 0
    assert attempts[("pass", 1)] > 500


def test_every_finding_rests_on_stored_evidence(scanned_catalogue: ScannedCatalogue) -> None:
    sc = scanned_catalogue
    store = EvidenceStore(sc.ws.dir / "evidence")
    engine = make_engine(sc.ws.db_url)
    with engine.connect() as conn:
        orphans = conn.execute(
            sa.select(sa.func.count())
            .select_from(Finding)
            .where(Finding.scan_id == sc.scan_id, Finding.capture_id.is_(None))
        ).scalar_one()
        caps = conn.execute(
            sa.select(Capture.subject, Capture.body_blob, Capture.headers_blob, Capture.status).where(
                Capture.scan_id == sc.scan_id
            )
        ).all()
        scan_status = conn.execute(sa.select(Scan.status).where(Scan.id == sc.scan_id)).scalar_one()
    engine.dispose()
    assert orphans == 0
    assert scan_status == "finished"
    assert len({c.subject for c in caps}) == len(caps), "one capture per subject"
    with_body = [c for c in caps if c.status is not None]
    assert with_body
    for c in with_body:
        assert store.get(c.body_blob) is not None
        assert store.get_json(c.headers_blob)["status"] == c.status
    # A site's home page and its English domain (the same host) serve identical bodies: stored once.
    assert len({c.body_blob for c in with_body}) < len(with_body)
    assert len(list(Path(sc.ws.dir / "evidence").rglob("*.gz"))) == len(list(store.keys()))


def test_recheck_reproduces_every_finding_from_evidence(scanned_catalogue: ScannedCatalogue) -> None:
    sc = scanned_catalogue
    before = sc.ws.findings(sc.scan_id)
    # No network: point the nameserver at a closed port; a recheck that fetched would fail.
    proc = sc.ws.run("recheck", "--scan", str(sc.scan_id), BADGEWATCH_NAMESERVERS="127.0.0.1:9")
    after = sc.ws.findings(sc.scan_id)
    assert "0 条结论有变化" in proc.stdout, proc.stdout
    assert after == before


def test_recheck_unknown_scan_is_refused(scanned_catalogue: ScannedCatalogue) -> None:
    proc = scanned_catalogue.ws.run("recheck", "--scan", "999", check=False)
    assert proc.returncode != 0
    assert "巡检 #999 不存在" in proc.stderr
