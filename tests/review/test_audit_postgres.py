"""The audit trail on PostgreSQL: the trigger refuses UPDATE and DELETE, and writers appending at
once still make one unbroken chain (the advisory lock)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage import audit
from storage.models import AuditEvent

from .world import World, build_world

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_world(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    name = "bw_audit_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    world = build_world(tmp_path_factory.mktemp("audit-pg"), postgres_url.rsplit("/", 1)[0] + "/" + name)
    try:
        yield world
    finally:
        world.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_trigger_refuses_changes_on_postgres(pg_world: World) -> None:
    with pg_world.session() as s:
        rows = list(s.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)))
    assert [r.kind for r in rows] == ["report.submitted"] * 4  # the world's four imported reports
    for statement in (
        "UPDATE audit_event SET actor = 'x'",
        f"UPDATE audit_event SET detail = '{{}}' WHERE id = {rows[0].id}",
        f"DELETE FROM audit_event WHERE id = {rows[-1].id}",
        "DELETE FROM audit_event",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), pg_world.engine.begin() as conn:
            conn.execute(sa.text(statement))
    with pg_world.session() as s:
        assert [(r.id, r.hash) for r in s.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))] == [
            (r.id, r.hash) for r in rows
        ]
        assert audit.verify(s).ok


def test_concurrent_appends_make_one_chain(pg_world: World, tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(5):
                with Session(pg_world.engine) as s:
                    audit.append(s, kind="report.submitted", actor=f"writer-{n}", via="api", detail={"i": i})
                    s.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with pg_world.session() as s:
        check = audit.verify(s)
        assert check.ok and check.count == 4 + 8 * 5
        assert s.scalar(sa.select(sa.func.count(sa.distinct(AuditEvent.prev_hash)))) == check.count
