"""The stages' own tables in the index database (the outbox, the print queue): each stage
keeps them in its own SQLAlchemy `MetaData`, created on start; the archive's Alembic
migrations never see them."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection


def create_tables(conn: Connection, metadata: MetaData) -> None:
    """Create `metadata`'s missing tables, then any index an existing table lacks:
    `create_all` makes a table's indexes only together with the table, so an index added
    in a later version would never reach a database made before it."""
    metadata.create_all(conn)
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)
