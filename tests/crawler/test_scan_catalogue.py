"""The whole simnet scenario catalogue, scanned end to end and compared with its ground truth."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from crawler.checking import REGISTRY_CHECKS
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


def test_no_scenario_whose_truth_is_unknown_is_accused(scanned_catalogue: ScannedCatalogue) -> None:
    """The worst defect: a ``fail`` where the evidence does not decide (a challenge, a notice, a stub, a
    merged site, a protocol error …). Not one, in any check."""
    sc = scanned_catalogue
    engine = make_engine(sc.ws.db_url)
    cmp = compare(engine, sc.scan_id, sc.truth, rendered=True)
    engine.dispose()
    unknown_truths = sum(n for (_c, exp, _g), n in cmp.confusion.items() if exp.startswith("unknown/"))
    assert unknown_truths > 150, cmp.table()  # every non-content shape is in the catalogue
    assert cmp.accusations() == [], "\n" + cmp.table()


def test_without_a_browser_every_check_matches_its_static_truth(
    scanned_catalogue_static: ScannedCatalogue,
) -> None:
    """``--render never``: pages only a browser can settle (script-built footers, single-page apps,
    stubs whose target a script computes) stay unknown, with their own reason, never a fail."""
    sc = scanned_catalogue_static
    assert sc.scan["status"] == "finished", sc.scan
    engine = make_engine(sc.ws.db_url)
    cmp = compare(engine, sc.scan_id, sc.truth, rendered=False)
    engine.dispose()
    assert cmp.ok, "\n" + cmp.report()
    assert cmp.accusations() == [], "\n" + cmp.table()


def test_only_sites_the_import_refused_are_missing(scanned_catalogue: ScannedCatalogue) -> None:
    sc = scanned_catalogue
    engine = make_engine(sc.ws.db_url)
    cmp = compare(engine, sc.scan_id, sc.truth)
    engine.dispose()
    # The import refuses rows whose Chinese domain is invalid or of the wrong kind (docs/registry.md):
    # those sites never reach a scan. Nothing else may be missing.
    for site in cmp.not_imported:
        assert site["scenario"] in ("domain.wrong_kind", "domain.label_too_long", "domain.invalid"), site
    assert cmp.missing == []


def test_confirmation_retries_failures_and_records_agreement(scanned_catalogue: ScannedCatalogue) -> None:
    findings = scanned_catalogue.ws.findings(scanned_catalogue.scan_id)
    observed = {k: v for k, v in findings.items() if k[1] not in REGISTRY_CHECKS}
    attempts = Counter((status, n) for status, _reason, n in observed.values())
    # With confirm_attempts=2 every fail seen on the network was tried twice and both attempts agreed
    # (simnet is stable); a pass is final at once.
    assert attempts[("fail", 2)] > 10
    assert attempts[("fail", 1)] == 0
    assert attempts[("pass", 1)] > 500
    # A failure read from the registry alone (a bad domain name, no Chinese domain) is final at once:
    # stored confirmed, without a second attempt unless another check of the subject asked for one.
    registry_fails = {k: v for k, v in findings.items() if k[1] in REGISTRY_CHECKS and v[0] == "fail"}
    assert registry_fails, "the catalogue has registry-level failures"
    engine = make_engine(scanned_catalogue.ws.db_url)
    with engine.connect() as conn:
        unconfirmed = conn.execute(
            sa.select(sa.func.count())
            .select_from(Finding)
            .where(
                Finding.scan_id == scanned_catalogue.scan_id,
                Finding.check.in_(REGISTRY_CHECKS),
                Finding.status == "fail",
                Finding.confirmed.is_(False),
            )
        ).scalar_one()
    engine.dispose()
    assert unconfirmed == 0


def test_every_finding_rests_on_stored_evidence(scanned_catalogue: ScannedCatalogue) -> None:
    sc = scanned_catalogue
    store = EvidenceStore(sc.ws.dir / "evidence")
    engine = make_engine(sc.ws.db_url)
    with engine.connect() as conn:
        orphans = conn.execute(
            sa.select(sa.func.count())
            .select_from(Finding)
            .where(Finding.scan_id == sc.scan_id, Finding.capture_id.is_(None), Finding.unit_id.is_(None))
        ).scalar_one()
        # Unit-level findings rest on the registry (no visit): the domains they read are kept with them.
        unit_rows = conn.execute(
            sa.select(Finding.subject, Finding.unit_id, Finding.capture_id, Finding.data).where(
                Finding.scan_id == sc.scan_id, Finding.subject.like("unit:%")
            )
        ).all()
        caps = conn.execute(
            sa.select(Capture.subject, Capture.body_blob, Capture.headers_blob, Capture.status).where(
                Capture.scan_id == sc.scan_id
            )
        ).all()
        scan_status = conn.execute(sa.select(Scan.status).where(Scan.id == sc.scan_id)).scalar_one()
    engine.dispose()
    assert orphans == 0
    assert unit_rows, "every unit of the scope has a unit-level finding"
    for subject, unit_id, capture_id, data in unit_rows:
        assert subject == f"unit:{unit_id}" and capture_id is None and "registered" in data, subject
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
