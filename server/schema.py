"""The stages' own tables in the index database (the outbox, the print queue, the surveys,
the jobs): each stage keeps them in its own SQLAlchemy `MetaData`, created on start; the
archive's Alembic migrations never see them."""

from __future__ import annotations

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection


def create_tables(conn: Connection, metadata: MetaData) -> None:
    """Create `metadata`'s missing tables, then any index an existing table lacks."""
    metadata.create_all(conn)
    create_missing_indexes(conn, metadata)


def create_missing_indexes(conn: Connection, metadata: MetaData) -> None:
    """Every index of `metadata`'s tables that the database lacks: `create_all` makes a
    table's indexes only together with the table, so an index added in a later version
    would never reach a database made before it."""
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def add_missing_columns(conn: Connection, metadata: MetaData) -> None:
    """Every (nullable) column of `metadata`'s tables that the database's table lacks:
    `create_all` leaves an existing table as it is, so a column added in a later version
    would never reach a database made before it."""
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspect(conn).get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
