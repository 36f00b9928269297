"""The scan (Scrapy's downloader) keeps what each TLS handshake showed as evidence: the certificates the
server sent after its leaf and the protocol; its http verdicts rest on them (the verdicts themselves are
compared with the ground truth in ``test_scan_catalogue.py``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from storage.db import make_engine
from storage.evidence import EvidenceStore
from storage.models import Capture, Finding, Website
from tests.crawler.conftest import ScannedCatalogue


def _visits(sc: ScannedCatalogue) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """scenario → (http reason, detail, headers meta) for the catalogue's https sites."""
    scenarios = {s["url"]: s["scenario"] for s in sc.truth["sites"]}
    store = EvidenceStore(sc.ws.dir / "evidence")
    engine = make_engine(sc.ws.db_url)
    out: dict[str, tuple[str, str, dict[str, Any] | None]] = {}
    with engine.connect() as conn:
        urls = {f"site:{i}": u for i, u in conn.execute(sa.select(Website.id, Website.url))}
        blobs = dict(
            conn.execute(
                sa.select(Capture.subject, Capture.headers_blob).where(Capture.scan_id == sc.scan_id)
            ).all()
        )
        rows = conn.execute(
            sa.select(Finding.subject, Finding.reason, Finding.detail).where(
                Finding.scan_id == sc.scan_id, Finding.check == "http"
            )
        ).all()
    engine.dispose()
    for subject, reason, detail in rows:
        scenario = scenarios.get(urls.get(subject, ""))
        if scenario:
            blob = blobs.get(subject)
            out[scenario] = (reason, detail, store.get_json(blob) if blob else None)
    return out


def test_scan_records_the_chain_sent_and_the_protocol(scanned_catalogue: ScannedCatalogue) -> None:
    visits = _visits(scanned_catalogue)
    expect = {
        # scenario: (reason, protocol, certificates sent after the leaf)
        "compliant.https": ("http.ok", {"TLSv1.2", "TLSv1.3"}, 1),
        "http.redirect_chain": ("http.ok", {"TLSv1.2", "TLSv1.3"}, 1),
        "http.cert_expired": ("http.cert_expired", {"TLSv1.2", "TLSv1.3"}, 1),
        "http.cert_wrong_host": ("http.cert_hostname", {"TLSv1.2", "TLSv1.3"}, 1),
        "http.cert_self_signed": ("http.cert_untrusted", {"TLSv1.2", "TLSv1.3"}, 0),
        "http.cert_chain_incomplete": ("http.cert_incomplete_chain", {"TLSv1.2", "TLSv1.3"}, 0),
        "http.tls_legacy": ("http.tls_legacy", {"TLSv1"}, 1),
    }
    for scenario, (reason, versions, sent) in expect.items():
        got_reason, _detail, meta = visits[scenario]
        assert got_reason == reason, (scenario, got_reason)
        assert meta is not None and meta["tls"]["version"] in versions, (scenario, meta)
        assert len(meta["tls"]["chain"]) == sent, (scenario, meta["tls"])
    reason, detail, meta = visits["http.tls_sm2"]
    assert reason == "http.tls_sm2" and "TLCP" in detail
    assert meta is None or "tls" not in meta  # nothing was read
