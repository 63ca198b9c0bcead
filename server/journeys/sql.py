"""Small SQL helpers the journeys share: insert-unless-present on both databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_new(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING -> whether the row was new. A unique constraint,
    not a read-then-write, decides: two servers racing insert one row."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    key = list(table.primary_key.columns)[0]
    result = conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing()
                          .returning(key))
    return result.first() is not None  # (rowcount is not reliable here on psycopg 3)
