"""The index's database connection: an engine for SQLite (embedded) or PostgreSQL whose every
wait is bounded, and transactions whose driver failures leave as archive errors.

No caller waits on the index without bound: a connection is given within POOL_TIMEOUT_S,
PostgreSQL ends a statement after STATEMENT_TIMEOUT_MS (or the current call's deadline,
`archive.deadline`, when sooner) and a lock wait after LOCK_TIMEOUT_MS, TCP keepalives and
`tcp_user_timeout` notice a vanished host; SQLite waits for a lock at most its busy timeout
(shortened to the call's deadline). SQLite runs in WAL mode with foreign keys on.

Failures to reach the database become `ArchiveUnavailable` (retryable), other driver errors
`ArchiveError`; an `IntegrityError` passes through untouched, as the caller knows what it
means (a duplicate document, an output already there).

Separate from `archive.index` because this is plumbing, the same for every statement the index
runs, and none of it depends on the index's tables or queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from archive import deadline
from archive.errors import ArchiveError, ArchiveUnavailable

__all__ = ["LOCK_TIMEOUT_MS", "POOL_TIMEOUT_S", "SQLITE_BUSY_TIMEOUT_MS", "STATEMENT_TIMEOUT_MS",
           "create_index_engine", "transaction"]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SQLITE_BUSY_TIMEOUT_MS = 10_000
_PG_CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 15_000
LOCK_TIMEOUT_MS = 10_000
POOL_TIMEOUT_S = 5
_PG_CONNECT_ARGS = {
    "connect_timeout": _PG_CONNECT_TIMEOUT_S,
    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}",
    "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
    "tcp_user_timeout": 15_000,  # ms: data unacknowledged this long ends the connection
}


def create_index_engine(url: str, schema: str | None = None) -> Engine:
    """The engine for `url` (see `DocumentIndex`), with the timeouts above. `schema` is only
    checked here (a PostgreSQL schema name, ValueError otherwise or on SQLite); the caller
    maps it with `schema_translate_map`."""
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use [a-z_][a-z0-9_]*")
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_timeout": POOL_TIMEOUT_S}
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        if schema is not None:
            raise ValueError("schema is only supported on PostgreSQL")
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_MS / 1000
    elif url.startswith("postgresql"):
        connect_args.update(_PG_CONNECT_ARGS)
        own = make_url(url).query.get("options")  # e.g. -csearch_path=...: keep it
        if own:
            own = " ".join(own) if isinstance(own, tuple) else own
            connect_args["options"] = f"{own} {_PG_CONNECT_ARGS['options']}"
    kwargs["connect_args"] = connect_args
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction (committed on success), with driver failures
    translated: unreachable or timed-out databases become ArchiveUnavailable."""
    try:
        with engine.begin() as conn:
            _within_deadline(conn)
            yield conn
    except sa_exc.IntegrityError:
        raise
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise ArchiveUnavailable(f"document index unavailable: {_short(exc)}") from exc
    except sa_exc.TimeoutError as exc:  # no pooled connection came free
        raise ArchiveUnavailable(f"document index busy: {_short(exc)}") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise ArchiveUnavailable(f"document index connection lost: {_short(exc)}") from exc
        raise ArchiveError(f"document index error: {_short(exc)}") from exc


def _within_deadline(conn: Connection) -> None:
    """Statements of this transaction end by the current call's deadline."""
    budget = deadline.remaining()
    if conn.dialect.name == "sqlite":
        ms = SQLITE_BUSY_TIMEOUT_MS if budget is None else min(
            SQLITE_BUSY_TIMEOUT_MS, int(budget * 1000))
        conn.exec_driver_sql(f"PRAGMA busy_timeout={max(ms, 1)}")
    elif budget is not None and budget * 1000 < STATEMENT_TIMEOUT_MS:
        conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"),
                     {"ms": str(max(int(budget * 1000), 1))})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _short(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
