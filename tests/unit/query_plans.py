"""Tests of the indexes that keep queries on tables with a long history from reading all of
it: the SQLite plan of the statements a call really runs, and an index added in a later
version reaching a database made before it (server.schema.create_tables)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine


def plans_of(engine: Engine, call: Callable[[], object], like: str) -> str:
    """The SQLite plans of the statements `call` runs that contain `like`."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if like in statement and not statement.startswith("explain"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen, f"no statement with {like!r} ran"
    with engine.connect() as conn:
        return " ".join(str(step) for statement, parameters in seen for step in
                        conn.exec_driver_sql(f"explain query plan {statement}", parameters))


def assert_added_on_start(engine: Engine, create_schema: Callable[[], None], table: str,
                          *indexes: str) -> None:
    """`indexes` of `table`, dropped as a server of an earlier version left the database,
    are there again once the stage creates its schema on start; a second start has nothing
    to do."""
    with engine.begin() as conn:
        for name in indexes:
            conn.execute(text(f"drop index {name}"))
    assert not set(indexes) & {i["name"] for i in inspect(engine).get_indexes(table)}
    create_schema()
    create_schema()
    assert set(indexes) <= {i["name"] for i in inspect(engine).get_indexes(table)}
