"""The CONAC cache's rows (:class:`storage.models.ConacCacheEntry`): look-up, upsert, revalidation.

Synchronous (SQLAlchemy Core, one short transaction each); the crawler calls these from a small thread
pool (``crawler/conac_cache.py``) so the scan's event loop never waits on the database. Bodies live in
the evidence store; a row holds the blob key.

Concurrency: every write is one statement that cannot fail because another worker wrote the same URL
first. :meth:`ConacCacheStore.put` is an upsert (``INSERT … ON CONFLICT (url_key) DO UPDATE``, SQLite
and PostgreSQL) that keeps the more recently validated answer; :meth:`ConacCacheStore.revalidated`
only moves ``validated_at`` forward, and only for the body that was revalidated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.models import ConacCacheEntry

TABLE = cast(sa.Table, ConacCacheEntry.__table__)


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedResource:
    """One row, as the crawler uses it."""

    url: str
    status: int
    headers: dict[str, str]
    body_blob: str
    body_size: int
    fetched_at: datetime
    validated_at: datetime
    etag: str = ""
    last_modified: str = ""

    def conditional_headers(self) -> dict[str, str]:
        """``If-None-Match`` / ``If-Modified-Since`` from the validators CONAC sent (empty: none)."""
        out: dict[str, str] = {}
        if self.etag:
            out["If-None-Match"] = self.etag
        if self.last_modified:
            out["If-Modified-Since"] = self.last_modified
        return out

    def row(self) -> dict[str, Any]:
        return {
            "url_key": url_key(self.url),
            "url": self.url,
            "status": self.status,
            "headers": dict(self.headers),
            "body_blob": self.body_blob,
            "body_size": self.body_size,
            "etag": self.etag[:300],
            "last_modified": self.last_modified[:100],
            "fetched_at": self.fetched_at,
            "validated_at": self.validated_at,
        }


def _from_row(row: Any) -> CachedResource:
    return CachedResource(
        url=row.url,
        status=row.status,
        headers={str(k): str(v) for k, v in (row.headers or {}).items()},
        body_blob=row.body_blob,
        body_size=row.body_size,
        fetched_at=row.fetched_at,
        validated_at=row.validated_at,
        etag=row.etag or "",
        last_modified=row.last_modified or "",
    )


class ConacCacheStore:
    """The ``conac_cache`` table of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, url: str) -> CachedResource | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(TABLE).where(TABLE.c.url_key == url_key(url))).first()
        return _from_row(row) if row is not None and row.url == url else None

    def put(self, entry: CachedResource) -> None:
        """Insert or replace the entry of ``entry.url`` (a 200 replaces whatever was kept), unless the
        row already holds an answer validated later (another worker's newer one wins)."""
        values = entry.row()
        dialect = self.engine.dialect.name
        stmt: Any
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(TABLE).values(**values)
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(TABLE).values(**values)
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            self._put_portable(values)
            return
        updated = {k: stmt.excluded[k] for k in values if k != "url_key"}
        stmt = stmt.on_conflict_do_update(
            index_elements=[TABLE.c.url_key],
            set_=updated,
            where=TABLE.c.validated_at <= stmt.excluded.validated_at,
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def _put_portable(self, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(TABLE)
                .where(TABLE.c.url_key == values["url_key"])
                .where(TABLE.c.validated_at <= values["validated_at"])
                .values(**values)
            )
            if done.rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(TABLE).values(**values))
                except sa.exc.IntegrityError:
                    pass  # stored meanwhile, validated later: that one wins

    def revalidated(self, entry: CachedResource) -> None:
        """CONAC answered 304: the body ``entry`` holds is current as of ``entry.validated_at``."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(TABLE)
                .where(TABLE.c.url_key == url_key(entry.url))
                .where(TABLE.c.body_blob == entry.body_blob)
                .where(TABLE.c.validated_at < entry.validated_at)
                .values(
                    validated_at=entry.validated_at,
                    etag=entry.etag[:300],
                    last_modified=entry.last_modified[:100],
                )
            )

    def blob_keys(self) -> set[str]:
        """Every body the cache refers to (evidence retention keeps them)."""
        with self.engine.connect() as conn:
            return {k for k in conn.execute(sa.select(TABLE.c.body_blob)).scalars() if k}
