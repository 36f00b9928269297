"""Evidence store: content-addressed, compressed blobs under ``Config.evidence_dir``.

A blob's key is the SHA-256 of its uncompressed bytes, so identical pages (the same CMS template on
hundreds of sites, the same page night after night) are stored once. Files are gzip (readable with
``zcat``), laid out as ``ab/cd/abcd….gz``, written atomically (temporary file, then rename), so a
killed process never leaves a half-written blob under a real key.

Retention (:func:`prune_captures`) deletes captures older than ``evidence_retention_days`` except
those an annual report refers to (through its findings) and those a review decision rests on (what
the reviewer was shown, as the audit trail records it), then removes blobs no capture refers to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from checks.errors import StateError

_SUFFIX = ".gz"
# Level 3: within a few percent of level 6's size on HTML, at about half the CPU.
_LEVEL = 3


class BlobNotFoundError(StateError, KeyError):
    """No blob with this key in the store."""


class EvidenceStore:
    """Content-addressed blob store rooted at ``root``."""

    def __init__(self, root: str | os.PathLike[str], known_cache: int = 50_000) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # Keys known to exist: skips a stat() for the many identical blobs (shared templates, CONAC
        # scripts). Bounded so a long scan's memory stays flat.
        self._known: OrderedDict[str, None] = OrderedDict()
        self._known_cache = known_cache
        self.written = 0
        self.deduplicated = 0
        self._dirs: set[Path] = set()
        self._seq = 0

    @staticmethod
    def key_of(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def path_of(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key[:2] / key[2:4] / (key + _SUFFIX)

    def _remember(self, key: str) -> None:
        self._known[key] = None
        if len(self._known) > self._known_cache:
            self._known.popitem(last=False)

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its key."""
        key = self.key_of(data)
        if key in self._known:
            self.deduplicated += 1
            return key
        path = self.path_of(key)
        if path.exists():
            self.deduplicated += 1
            self._remember(key)
            return key
        parent = path.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        comp = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip container
        packed = comp.compress(data) + comp.flush()
        # A name unique to this process and write; the rename makes the blob appear whole or not at all.
        self._seq += 1
        tmp = parent / f".tmp-{os.getpid()}-{self._seq}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(packed)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.written += 1
        self._remember(key)
        return key

    def put_json(self, obj: Any) -> str:
        return self.put(json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8"))

    def get(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            packed = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(key) from None
        data = zlib.decompress(packed, 31)
        if self.key_of(data) != key:
            raise ValueError(f"blob {key} is corrupt (content hash differs)")
        return data

    def get_json(self, key: str) -> Any:
        return json.loads(self.get(key).decode("utf-8"))

    def exists(self, key: str) -> bool:
        return key in self._known or self.path_of(key).exists()

    def keys(self) -> Iterator[str]:
        for path in self.root.glob("*/*/*" + _SUFFIX):
            yield path.name[: -len(_SUFFIX)]

    def delete_unreferenced(self, referenced: Iterable[str]) -> int:
        """Remove every blob whose key is not in ``referenced``; returns how many were removed."""
        keep = set(referenced)
        removed = 0
        for key in list(self.keys()):
            if key not in keep:
                with contextlib.suppress(FileNotFoundError):
                    self.path_of(key).unlink()
                self._known.pop(key, None)
                removed += 1
        return removed


class PruneSummary:
    """What a retention pass removed."""

    def __init__(self) -> None:
        self.captures_deleted = 0
        self.captures_kept_for_reports = 0
        self.blobs_deleted = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "captures_deleted": self.captures_deleted,
            "captures_kept_for_reports": self.captures_kept_for_reports,
            "blobs_deleted": self.blobs_deleted,
        }


def shot_blobs(shots: Any) -> set[str]:
    """The blob keys a capture's ``shots`` record refers to (full page, crops, CONAC image)."""
    keys: set[str] = set()
    if not isinstance(shots, dict):
        return keys
    if shots.get("full"):
        keys.add(str(shots["full"]))
    for crop in shots.get("crops") or []:
        if isinstance(crop, dict) and crop.get("blob"):
            keys.add(str(crop["blob"]))
    image = shots.get("badge_image")
    if isinstance(image, dict) and image.get("blob"):
        keys.add(str(image["blob"]))
    return keys


def _report_finding_ids(raw: Any) -> set[int]:
    ids: set[int] = set()
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key == "finding_ids" and isinstance(value, list):
                ids.update(int(v) for v in value if isinstance(v, int) or str(v).isdigit())
            else:
                ids |= _report_finding_ids(value)
    elif isinstance(raw, list):
        for value in raw:
            ids |= _report_finding_ids(value)
    return ids


def prune_captures(engine: Any, store: EvidenceStore, retention_days: int, now: Any = None) -> PruneSummary:
    """Delete captures older than ``retention_days`` except those an annual report rests on, then the
    blobs nothing refers to any more.

    Findings are kept (their ``capture_id`` becomes NULL): the verdict history stays, the bulky evidence
    goes. Blobs younger than the cutoff are never deleted, so a scan writing right now loses nothing.
    """
    import datetime as dt

    import sqlalchemy as sa

    from storage.audit import evidence_of
    from storage.models import (
        AnnualReport,
        AnnualReportEvent,
        AuditEvent,
        Capture,
        ConacCacheEntry,
        Finding,
        Notification,
    )

    summary = PruneSummary()
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=retention_days)
    with engine.begin() as conn:
        referenced: set[int] = set()
        for dom, badge in conn.execute(sa.select(AnnualReport.derived_domains, AnnualReport.derived_badge)):
            referenced |= _report_finding_ids(dom) | _report_finding_ids(badge)
        # What decisions rest on: the findings and captures each reviewer was shown, as the lasting
        # audit trail and the workflow's events record them, are kept for as long as those records.
        shown = [{"shown": v} for v in conn.execute(sa.select(AnnualReportEvent.shown)).scalars()]
        decided_captures, decided_findings = evidence_of(
            [*conn.execute(sa.select(AuditEvent.detail)).scalars(), *shown]
        )
        referenced |= decided_findings
        keep: set[int] = set(decided_captures)
        for chunk_start in range(0, len(referenced), 500):
            chunk = sorted(referenced)[chunk_start : chunk_start + 500]
            keep.update(
                cid
                for cid in conn.execute(sa.select(Finding.capture_id).where(Finding.id.in_(chunk))).scalars()
                if cid is not None
            )
        old = [cid for cid in conn.execute(sa.select(Capture.id).where(Capture.started < cutoff)).scalars()]
        doomed = [cid for cid in old if cid not in keep]
        summary.captures_kept_for_reports = len(old) - len(doomed)
        for i in range(0, len(doomed), 500):
            chunk = doomed[i : i + 500]
            conn.execute(sa.update(Finding).where(Finding.capture_id.in_(chunk)).values(capture_id=None))
            conn.execute(sa.delete(Capture).where(Capture.id.in_(chunk)))
        summary.captures_deleted = len(doomed)
        live: set[str] = set()
        rows = conn.execute(
            sa.select(
                Capture.body_blob,
                Capture.headers_blob,
                Capture.rendered_blob,
                Capture.screenshot_blob,
                Capture.subresources,
                Capture.shots,
            )
        )
        for body, headers, rendered, shot, subs, shots in rows:
            live.update(k for k in (body, headers, rendered, shot) if k)
            for rec in (subs or {}).values():
                if isinstance(rec, dict) and rec.get("blob"):
                    live.add(str(rec["blob"]))
            live.update(shot_blobs(shots))
        live.update(k for k in conn.execute(sa.select(Notification.attachment_blob)).scalars() if k)
        # The CONAC cache's bodies (crawler/conac_cache.py) are reused by the next scans.
        live.update(k for k in conn.execute(sa.select(ConacCacheEntry.body_blob)).scalars() if k)
    cutoff_ts = cutoff.timestamp()
    for key in list(store.keys()):
        if key in live:
            continue
        path = store.path_of(key)
        try:
            if path.stat().st_mtime >= cutoff_ts:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        store._known.pop(key, None)
        summary.blobs_deleted += 1
    return summary
