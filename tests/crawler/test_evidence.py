"""storage.evidence: content-addressed, compressed, written once, atomic, verified on read."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from storage.evidence import BlobNotFoundError, EvidenceStore


def test_identical_bodies_are_stored_once(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    body = ("<html>" + "政务公开" * 5000 + "</html>").encode()
    k1 = store.put(body)
    k2 = EvidenceStore(tmp_path).put(body)  # a second process (no memory of the first)
    assert k1 == k2 == hashlib.sha256(body).hexdigest()
    files = list(tmp_path.rglob("*.gz"))
    assert len(files) == 1
    assert files[0].stat().st_size < len(body) / 10  # compressed
    assert gzip.decompress(files[0].read_bytes()) == body  # plain gzip: zcat works
    assert store.get(k1) == body


def test_different_bodies_get_different_keys(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    keys = {store.put(bytes([i]) * 100) for i in range(50)}
    assert len(keys) == 50
    assert set(store.keys()) == keys


def test_missing_and_corrupt_blobs(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    with pytest.raises(BlobNotFoundError):
        store.get("0" * 64)
    key = store.put(b"original")
    store.path_of(key).write_bytes(gzip.compress(b"tampered"))
    with pytest.raises(ValueError, match="corrupt"):
        store.get(key)
    with pytest.raises(ValueError):
        store.path_of("../../etc/passwd")


def test_no_temporary_files_left(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    for i in range(20):
        store.put(f"page {i}".encode())
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_delete_unreferenced(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    keep = store.put(b"keep me")
    drop = store.put(b"drop me")
    assert store.delete_unreferenced([keep]) == 1
    assert store.get(keep) == b"keep me"
    assert not store.exists(drop)
