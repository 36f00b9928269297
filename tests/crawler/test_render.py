"""The render tier: headless Chromium renders the page through our own fetcher; the rendered DOM and a
screenshot are kept as evidence, and verdicts on the rendered DOM agree with the static ones."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from storage.db import make_engine
from storage.evidence import EvidenceStore
from storage.models import Capture
from tests.crawler.conftest import ScannedCatalogue
from tests.crawler.scanning import Workspace

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]


def test_render_always_keeps_dom_and_screenshot(
    scanned_catalogue: ScannedCatalogue, catalogue_ws: Workspace
) -> None:
    result = catalogue_ws.scan("--render", "always", "--limit", "3")
    assert result["status"] == "finished", result
    assert result["counters"]["renders"] == 3
    scan_id = int(result["scan_id"])
    engine = make_engine(catalogue_ws.db_url)
    with engine.connect() as conn:
        caps = conn.execute(
            sa.select(Capture.subject, Capture.rendered_blob, Capture.screenshot_blob).where(
                Capture.scan_id == scan_id, Capture.website_id.is_not(None)
            )
        ).all()
    engine.dispose()
    assert len(caps) == 3
    store = EvidenceStore(catalogue_ws.dir / "evidence")
    for cap in caps:
        dom = store.get(cap.rendered_blob).decode("utf-8")
        assert "<html" in dom.lower()
        assert store.get(cap.screenshot_blob).startswith(b"\x89PNG\r\n\x1a\n")
    # The rendered verdicts equal the uninterrupted static scan's for the same sites.
    rendered = catalogue_ws.findings(scan_id)
    reference = scanned_catalogue.ws.findings(scanned_catalogue.scan_id)
    for key, (status, reason, _n) in rendered.items():
        if key[0].startswith("site:"):
            assert reference[key][:2] == (status, reason), key
