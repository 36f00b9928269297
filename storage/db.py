"""Engines, sessions and schema upgrades.

SQLite is the default (foreign keys on, WAL journal, a busy timeout so concurrent writers wait
instead of failing); PostgreSQL is used through psycopg 3 when ``BADGEWATCH_DATABASE_URL`` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from checks.errors import ServiceError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# Tables in our database that are not ours: APScheduler keeps its job store there (scheduler.py) and
# creates and migrates that table itself, so Alembic's autogenerate and compare must not touch it.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object`` hook: everything but the tables in :data:`FOREIGN_TABLES` (and
    their indexes)."""
    if type_ == "table":
        return name not in FOREIGN_TABLES
    table = getattr(obj, "table", None)
    return getattr(table, "name", None) not in FOREIGN_TABLES


class DatabaseError(ServiceError):
    """The database cannot be used (says which URL and why)."""


def normalise_url(url: str) -> str:
    """Map ``postgres://`` and ``postgresql://`` to the psycopg 3 driver; leave others alone."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def describe_database(url: str, *, creating: bool = True) -> str:
    """The database ``url`` names, in Chinese for the terminal, never with its password:
    ``SQLite 数据库文件 /srv/bw/badgewatch.db``, ``PostgreSQL 数据库 badgewatch（db.example:5432，用户 bw）``.

    A SQLite file that does not exist yet is said to be created (a command run in the wrong directory
    would otherwise quietly start a new, empty database there); with ``creating=False``, only that it
    does not exist.
    """
    try:
        parsed = sa.make_url(normalise_url(url))
    except sa.exc.ArgumentError:
        return "无效的数据库地址"
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return "SQLite 内存数据库（进程结束即消失）"
        path = Path(parsed.database).expanduser().resolve()
        if path.exists():
            return f"SQLite 数据库文件 {path}"
        return f"SQLite 数据库文件 {path}（尚不存在" + ("，将新建空库）" if creating else "）")
    names = {"postgresql": "PostgreSQL", "mysql": "MySQL"}
    where = parsed.host or "本机"
    if parsed.port:
        where += f":{parsed.port}"
    if parsed.username:
        where += f"，用户 {parsed.username}"
    return f"{names.get(backend, backend)} 数据库 {parsed.database or '（默认库）'}（{where}）"


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # WAL lets readers (the console) work while a scan writes; memory databases ignore it.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``: SQLite with foreign keys and WAL, or PostgreSQL through psycopg 3."""
    url = normalise_url(url)
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DatabaseError(f"数据库地址无效: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            parent = Path(parsed.database).expanduser().resolve().parent
            if not parent.exists():
                raise DatabaseError(f"数据库目录不存在: {parent}")
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back on any exception."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _alembic_config(connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(target: Engine | str, revision: str = "head") -> str:
    """Create or upgrade the schema to ``revision`` (idempotent); returns the revision now current."""
    from alembic import command

    engine = make_engine(target) if isinstance(target, str) else target
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), revision)
        return current_revision(engine) or ""
    except sa.exc.OperationalError as exc:
        raise DatabaseError(
            f"无法连接或升级数据库 {engine.url.render_as_string(hide_password=True)}: {exc.orig}"
        ) from exc
    finally:
        if isinstance(target, str):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head
