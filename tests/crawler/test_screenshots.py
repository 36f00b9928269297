"""Marked screenshots of confirmed page-check failures (crawler/screenshots.py), on simnet scans: every
confirmed failure of badge/ICP/公安/标识码 gets a full page and a crop with a red frame on the element
(or on the footer where it is missing), and the CONAC image the badge script showed is kept as served."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crawler.render import CROP_MARGIN, SHOT_MAX_HEIGHT, Mark, full_clip
from crawler.screenshots import PAGE_CHECKS, pending, shoot_confirmed, target_for
from simnet.pngs import badge_png
from storage.config import Config
from storage.db import make_engine
from storage.evidence import EvidenceStore, prune_captures, shot_blobs
from storage.models import Capture, Finding, Website
from tests.crawler.scanning import Workspace, workspace

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed"),
]

MARK_RED = (0xD0, 0x00, 0x00)


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB rows of an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        rows.append(bytes(line[i] for i in range(stride) if i % channels < 3))
    return width, height, rows


def red_pixels(data: bytes) -> int:
    _w, _h, rows = read_png(data)
    n = 0
    for row in rows:
        for i in range(0, len(row), 3):
            if abs(row[i] - MARK_RED[0]) < 12 and row[i + 1] < 16 and row[i + 2] < 16:
                n += 1
    return n


def _scan(ws: Workspace, office: str) -> int:
    result = ws.scan("--office", office, "--render", "auto")
    assert result["status"] == "finished", result
    return int(result["scan_id"])


def _config(ws: Workspace) -> Config:
    return Config.load(env={k: v for k, v in ws.env().items() if k.startswith("BADGEWATCH_")})


def _truth_fails(truth: dict[str, Any], office: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for site in truth["sites"]:
        if site["unit"]["office_code"] != office:
            continue
        checks = site["checks"].items()
        fails = {c: v["reason"] for c, v in checks if c in PAGE_CHECKS and v["status"] == "fail"}
        if fails:
            out[site["url"]] = fails
    return out


def test_confirmed_failures_get_marked_screenshots(simnet: Any, tmp_path: Path) -> None:
    # 北市区: one site shows CONAC's error image (badge.error_image), one a malformed ICP number.
    office = "130603"
    ws = workspace(tmp_path, simnet)
    scan_id = _scan(ws, office)
    truth = _truth_fails(simnet.ground_truth, office)
    assert truth, "the catalogue office has no page-check failure"
    engine = make_engine(ws.db_url)
    store = EvidenceStore(ws.dir / "evidence")
    cfg = _config(ws)
    todo = pending(engine, scan_id, cfg.screenshot_attempts)
    summary = shoot_confirmed(engine, cfg, scan_id, store)
    assert summary.pending == len(todo) and summary.taken == len(todo), summary.to_dict()
    assert summary.failed == 0 and summary.left == 0
    assert pending(engine, scan_id, cfg.screenshot_attempts) == {}  # nothing left to do
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Finding.check, Finding.reason, Capture.url, Capture.shots)
            .join(Capture, Capture.id == Finding.capture_id)
            .where(Finding.scan_id == scan_id, Finding.status == "fail", Finding.confirmed.is_(True))
            .where(Finding.check.in_(PAGE_CHECKS))
        ).all()
    seen = {(r.url, r.check): r.reason for r in rows}
    expected = {(url, c): reason for url, fails in truth.items() for c, reason in fails.items()}
    assert seen == expected
    for row in rows:
        shots = row.shots
        full = store.get(shots["full"])
        width, height, _ = read_png(full)
        assert width == 1280 and height >= 600
        assert red_pixels(full) > 200, f"no red frame on the full page of {row.url}"
        crops = [c for c in shots["crops"] if row.check in c["checks"]]
        assert len(crops) == 1, shots["crops"]
        crop = store.get(crops[0]["blob"])
        cw, ch, _ = read_png(crop)
        assert 0 < cw <= 1280 and 0 < ch < height
        assert red_pixels(crop) > 200, f"no red frame in the crop of {row.url} {row.check}"
        if row.reason == "badge.error_image":
            # The badge element was found and its image is the error image CONAC served, byte for byte.
            assert crops[0]["found"] == "element"
            image = shots["badge_image"]
            colour = image["url"].rsplit("/", 1)[1].removesuffix(".png")
            assert "/image/" in image["url"] and colour in ("red_error", "blue_error")
            assert store.get(image["blob"]) == badge_png(colour)
    # A second pass takes nothing again.
    again = shoot_confirmed(engine, cfg, scan_id, store)
    assert again.pending == 0 and again.taken == 0
    # Retention keeps the screenshot blobs while their capture lives.
    keys = set().union(*(shot_blobs(r.shots) for r in rows))
    prune_captures(engine, store, retention_days=400)
    assert all(store.exists(k) for k in keys)
    engine.dispose()


def test_missing_badge_marks_the_footer(simnet: Any, tmp_path: Path) -> None:
    # 北市区's neighbour 130633: the badge code is commented out (badge.missing) and no 标识码 shown.
    office = "130633"
    ws = workspace(tmp_path, simnet)
    scan_id = _scan(ws, office)
    engine = make_engine(ws.db_url)
    store = EvidenceStore(ws.dir / "evidence")
    summary = shoot_confirmed(engine, _config(ws), scan_id, store)
    assert summary.taken >= 1 and summary.failed == 0, summary.to_dict()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Finding.check, Finding.reason, Capture.shots)
            .join(Capture, Capture.id == Finding.capture_id)
            .where(Finding.scan_id == scan_id, Finding.reason == "badge.missing", Finding.confirmed.is_(True))
        ).all()
    engine.dispose()
    assert rows
    for row in rows:
        crop = next(c for c in row.shots["crops"] if "badge" in c["checks"])
        # Nothing to outline: the footer, where the badge belongs, is marked and says so.
        assert crop["found"] in ("footer", "page")
        assert "未显示" in crop["caption"]
        assert "badge_image" not in row.shots
        assert red_pixels(store.get(crop["blob"])) > 200


def test_unrenderable_capture_is_recorded_not_retried_forever(simnet: Any, tmp_path: Path) -> None:
    office = "130603"
    ws = workspace(tmp_path, simnet)
    scan_id = _scan(ws, office)
    engine = make_engine(ws.db_url)
    cfg = _config(ws)
    todo = pending(engine, scan_id, cfg.screenshot_attempts)
    assert todo
    # The evidence of the first capture is gone (pruned by hand): it cannot be rendered.
    first = next(iter(todo))
    with engine.begin() as conn:
        conn.execute(sa.update(Capture).where(Capture.id == first).values(body_blob=""))
    store = EvidenceStore(ws.dir / "evidence")
    for _ in range(cfg.screenshot_attempts):
        summary = shoot_confirmed(engine, cfg, scan_id, store)
        assert summary.failed == 1
    assert first not in pending(engine, scan_id, cfg.screenshot_attempts)
    with engine.connect() as conn:
        shots = conn.execute(sa.select(Capture.shots).where(Capture.id == first)).scalar_one()
    engine.dispose()
    assert shots["attempts"] == cfg.screenshot_attempts and "full" not in shots
    assert "无法截图" in shots["error"]


def test_captions_never_call_absent_what_is_there() -> None:
    """The footer is marked as "should be here, not shown" only for failures that say so; a badge of the
    wrong kind that the browser could not locate is not described as missing."""
    wrong = target_for(Finding(check="badge", reason="badge.wrong_kind", data={}, evidence=[]), None)
    assert "未显示" not in wrong.absent and "定位" in wrong.absent
    missing = target_for(Finding(check="icp", reason="icp.missing", data={}, evidence=[]), None)
    assert "未显示" in missing.absent
    # A number is looked for as shown, then as registered, then by its label.
    mismatch = Finding(check="icp", reason="icp.number_mismatch", data={"number": "冀ICP备1号"}, evidence=[])
    assert target_for(mismatch, Website(icp="冀ICP备2号")).texts[:3] == ("冀ICP备1号", "冀ICP备2号", "ICP备")


def test_tall_pages_are_cut_below_the_lowest_mark() -> None:
    def mark(y: int, height: int) -> Mark:
        return Mark("badge", "element", (8, y, 80, 80), "c", page_size=(1280, height))

    assert full_clip([mark(500, 5000)]) is None  # a page of ordinary height is taken whole
    assert full_clip([mark(500, 30000)]) == {"x": 0.0, "y": 0.0, "width": 1280.0, "height": SHOT_MAX_HEIGHT}
    clip = full_clip([mark(500, 30000), mark(25000, 30000)])
    assert clip is not None and clip["height"] == 25000 + 80 + CROP_MARGIN  # the footer's mark stays in
