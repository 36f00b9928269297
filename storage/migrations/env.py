"""Alembic environment: runs on the connection :func:`storage.db.upgrade` hands over, or on the URL
from the badgewatch configuration when run through the ``alembic`` command."""

from __future__ import annotations

from alembic import context

from storage.db import include_object
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds tables for it.
        render_as_batch=True,
        compare_type=True,
        # APScheduler's job table lives in the same database but is not ours to create or drop.
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from storage.config import Config
    from storage.db import make_engine

    engine = make_engine(Config.load().database_url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
