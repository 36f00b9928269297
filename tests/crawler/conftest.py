"""Crawler fixtures: one catalogue registry and one full scan of it, shared by the tests that read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.crawler.scanning import Workspace, workspace


@dataclass
class ScannedCatalogue:
    ws: Workspace
    scan: dict[str, Any]
    truth: dict[str, Any]
    net: Any

    @property
    def scan_id(self) -> int:
        return int(self.scan["scan_id"])


@pytest.fixture(scope="session")
def scanned_catalogue(simnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScannedCatalogue]:
    """The whole scenario catalogue, imported and scanned once (``--render auto``)."""
    ws = workspace(tmp_path_factory.mktemp("catalogue"), simnet)
    result = ws.scan("--render", "auto")
    yield ScannedCatalogue(ws, result, simnet.ground_truth, simnet)


@pytest.fixture()
def catalogue_ws(simnet: Any, tmp_path: Path) -> Workspace:
    """A fresh database with the catalogue registry imported (not scanned)."""
    return workspace(tmp_path, simnet)
