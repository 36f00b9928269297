"""Scheduler fixtures: a mail server per test and workspaces with the catalogue registry imported."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.db import make_engine, upgrade
from storage.registry import import_registry
from tests.scheduler.helpers import Mailbox, Workspace, smtp_server


@pytest.fixture()
def mailbox() -> Iterator[tuple[int, Mailbox]]:
    with smtp_server() as served:
        yield served


@pytest.fixture()
def make_ws(simnet: Any, mailbox: tuple[int, Mailbox], tmp_path: Path) -> Iterator[Callable[..., Workspace]]:
    """``make_ws()`` (SQLite) or ``make_ws(url)``: a workspace whose database holds the catalogue registry."""
    made: list[Workspace] = []

    def make(db_url: str | None = None, registry: bool = True) -> Workspace:
        d = tmp_path / f"ws{len(made)}"
        d.mkdir()
        ws = Workspace(d, db_url or f"sqlite:///{d / 'badgewatch.db'}", simnet.env(), mailbox[0])
        made.append(ws)
        if registry:
            # In this process: `badgewatch init` and `registry import` have tests of their own, and two
            # CLI starts would cost many seconds on a busy machine.
            engine = make_engine(ws.db_url)
            try:
                upgrade(engine)
                import_registry(engine, simnet.registry_path, simnet.offices_path, skip_invalid=True)
            finally:
                engine.dispose()
        return ws

    try:
        yield make
    finally:
        for ws in made:
            ws.close()
