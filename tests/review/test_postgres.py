"""The console on PostgreSQL: the same review flow, and two decisions racing on one report."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from storage.models import AnnualReportEvent

from .conftest import Served, csrf_of, serve
from .world import build_world

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_served(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # A database of our own: other areas' tests share the session database.
    name = "bw_review_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    world = build_world(tmp_path_factory.mktemp("review-pg"), url)
    try:
        for base in serve(world):
            yield Served(world, base)
    finally:
        world.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_review_flow_on_postgres(pg_served: Served, tmp_path: Path) -> None:
    w = pg_served.world
    rid = w.ids["report:health"]
    c = pg_served.login("zhuozhou")
    page = c.get(f"/reports/{rid}")
    assert page.status_code == 200 and "字段5" in page.text and 'class="hl-icp"' in page.text
    r = c.post(
        f"/reports/{rid}/decision",
        data={
            "decision": "reject",
            "reason": "请更正字段5",
            "csrf_token": csrf_of(page.text),
            "version": "1",
        },
        headers={"Origin": pg_served.base},
    )
    assert r.status_code == 303
    assert c.get(f"/reports/{w.ids['report:water']}").status_code == 404
    with httpx.Client(base_url=pg_served.base) as api:
        got = api.get(f"/api/v1/annual-reports/{rid}", headers=pg_served.token("zhuozhou")).json()
    assert got["state"] == "rejected" and got["rejection_reason"] == "请更正字段5"
    c.close()


def test_racing_decisions_on_postgres(pg_served: Served) -> None:
    w = pg_served.world
    rid = w.ids["report:edu"]
    results: list[int] = []
    barrier = threading.Barrier(3)

    def go(token: dict[str, str]) -> None:
        with httpx.Client(base_url=pg_served.base, timeout=30) as c:
            barrier.wait()
            results.append(
                c.post(
                    f"/api/v1/annual-reports/{rid}/decision",
                    json={"decision": "reject", "reason": "并发退回", "version": 1},
                    headers=token,
                ).status_code
            )

    tokens = [pg_served.token(n) for n in ("zhuozhou", "baoding", "zhuozhou")]
    threads = [threading.Thread(target=go, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409, 409]
    with w.session() as s:
        n = s.scalar(
            sa.select(sa.func.count(AnnualReportEvent.id)).where(
                AnnualReportEvent.report_id == rid, AnnualReportEvent.to_state == "rejected"
            )
        )
    assert n == 1
