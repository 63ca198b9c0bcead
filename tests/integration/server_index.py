"""The index a server under test runs on: its SQLite default, or a fresh PostgreSQL schema of
the test database (`pg_url`), for module fixtures parametrized over both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text


@contextmanager
def index_url_for(kind: str, pg_url: str, prefix: str) -> Iterator[str | None]:
    """None for "sqlite" (the server's own file); for "postgresql" the URL of a schema
    `<prefix>_<random>` (made now, the connection's search_path), dropped after."""
    if kind != "postgresql":
        yield None
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
