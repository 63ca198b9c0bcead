"""The SQLite plan of the statements a call really runs (tests of the indexes that keep
queries on tables with a long history from reading all of it)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
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
