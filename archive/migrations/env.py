"""Alembic environment: run the revisions on the connection `DocumentIndex.migrate` hands over.

There is no alembic.ini and no URL here: the index owns the engine (and the PostgreSQL schema,
set as the transaction's search_path), so migrations always run exactly where the index reads.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    version_table="alembic_version_archive",
    version_table_schema=context.config.attributes.get("schema"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
