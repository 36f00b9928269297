"""Crawler fixtures: one catalogue registry and one full scan of it, shared by the tests that read it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="session")
def scanned_catalogue_static(
    simnet: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScannedCatalogue]:
    """The catalogue scanned without a browser (``--render never``): what only a browser could settle
    must stay ``unknown``."""
    ws = workspace(tmp_path_factory.mktemp("catalogue-static"), simnet)
    result = ws.scan("--render", "never")
    yield ScannedCatalogue(ws, result, simnet.ground_truth, simnet)


@pytest.fixture()
def catalogue_ws(simnet: Any, tmp_path: Path) -> Workspace:
    """A fresh database with the catalogue registry imported (not scanned)."""
    return workspace(tmp_path, simnet)


@pytest.fixture()
def fresh_pg_database(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Make fresh PostgreSQL databases (next to the session's ``postgres_url``), dropped afterwards."""
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = "bw_dist_" + uuid.uuid4().hex[:12]
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return postgres_url.rsplit("/", 1)[0] + "/" + name

    try:
        yield make
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture()
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test alone (parallel runs share the Redis); its keys are removed after."""
    import redis

    prefix = f"bwtest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()
