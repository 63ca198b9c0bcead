"""Alembic migrations of the document index: the schema history that `DocumentIndex.migrate`
applies on every start, on SQLite and PostgreSQL alike.

Why migrations and not `create_all`: `create_all` only adds what is missing and never changes an
index or a column, so a deployment that already holds tens of millions of rows would never get a
better listing index. Each revision in `versions/` is written by hand (no autogenerate at run time)
and uses only portable operations. An index created before migrations existed (by `create_all`)
is recognised as revision 0001 and stamped, then upgraded like any other.
"""
