"""The document index: turns archived documents into rows a portal can query, and rows back
into `DocumentRecord`s. SQLAlchemy 2 Core, one schema for SQLite and PostgreSQL.

Why an index beside S3: S3 can list a prefix but cannot answer "the latest 50 documents of this
customer", "the document for this idempotency key" or "what corrected invoice X" quickly. The
index is a cache of facts that are also in the objects' metadata, so it can be rebuilt from the
archive alone (`ArchiveStore.iter_objects`); the objects are the record, the index the lookup.

Tables:

- `documents`: one row per document, keyed by (tenant, document_id); (tenant,
  idempotency_key) is unique so a retried request finds its first result; indexed on
  (tenant, customer_id, created_at DESC, document_id) for customer listings, newest first.
- `outputs`: one row per channel output (tenant, document_id, channel) with its S3 key, media
  type, sha256, size, page count and the renderer's facts as JSON text.

A document's `skipped_channels` (JSON text) are the channels its plan left out because they
could not carry it, with the reason: support answers "why did she get no SMS?" from the index.

A document and its outputs are written in one transaction: a duplicate document id or
idempotency key raises `DuplicateDocument` and leaves nothing behind. A caller may add its own
rows to that transaction (`add(record, also=...)`): that is how a later stage (the delivery
outbox) commits with the document or not at all, without the archive knowing about it.

Times are stored in UTC and always come back timezone-aware (SQLite has no time zones; a small
type decorator adds UTC back). SQLite runs in WAL mode with a busy timeout and foreign keys on.
For PostgreSQL an optional `schema` puts the tables in their own schema (via SQLAlchemy's
`schema_translate_map`), which is how tests that share one database keep apart.

Failures to reach the database become `ArchiveUnavailable`, and no caller waits on it
without bound: a connection is given within POOL_TIMEOUT_S, PostgreSQL ends a statement after
STATEMENT_TIMEOUT_MS (or the current call's deadline, `archive.deadline`, when sooner) and a
lock wait after LOCK_TIMEOUT_MS, TCP keepalives and `tcp_user_timeout` notice a vanished
host; SQLite waits for a lock at most its busy timeout (shortened to the call's deadline).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    insert,
    make_url,
    select,
    text,
    tuple_,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.types import TypeDecorator

from archive import deadline
from archive.errors import ArchiveError, ArchiveUnavailable, DuplicateDocument

__all__ = ["DocumentIndex", "DocumentRecord", "DuplicateDocument", "OutputRecord", "SkippedRecord"]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SQLITE_BUSY_TIMEOUT_MS = 10_000
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


# --- records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputRecord:
    """One archived channel output of a document."""

    channel: str
    key: str
    media_type: str
    sha256: str
    size: int
    pages: int | None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedRecord:
    """A channel a document's plan left out, and why."""

    channel: str
    reason: str
    field: str = ""  # the JSON path or layout setting behind it, when known


def skipped_to_json(skipped: Sequence[SkippedRecord]) -> str:
    """The stored form (index column, object metadata): a JSON list, "" when none."""
    if not skipped:
        return ""
    return json.dumps([{"channel": s.channel, "reason": s.reason, "field": s.field}
                       for s in skipped], ensure_ascii=False, separators=(",", ":"))


def skipped_from_json(text: str | None) -> tuple[SkippedRecord, ...]:
    return tuple(SkippedRecord(**entry) for entry in json.loads(text)) if text else ()


@dataclass(frozen=True)
class DocumentRecord:
    """One archived document and its outputs, as the index knows it."""

    tenant: str
    document_id: str
    customer_id: str
    kind: str
    layout_ref: str  # "layout-id@version"
    locale: str
    created_at: datetime
    input_sha256: str
    idempotency_key: str | None
    channel_plan: str  # e.g. "email>print"
    retain_until: datetime | None
    outputs: tuple[OutputRecord, ...]
    corrects_document_id: str | None = None
    # how `locale` was decided, e.g. "rule: $.currency = SEK -> SE" (None: not recorded)
    locale_decision: str | None = None
    skipped_channels: tuple[SkippedRecord, ...] = ()
    plan_reason: str | None = None  # the plan rule that chose the channels (None: not recorded)


# --- schema -----------------------------------------------------------------------------


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamps stored in the index must be timezone-aware")
        utc = value.astimezone(UTC)
        # SQLite keeps a naive text form; comparisons stay correct because all values are UTC.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("tenant", String(100), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("layout_ref", String(200), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("input_sha256", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("channel_plan", Text(), nullable=False),
    Column("corrects_document_id", String(128), nullable=True),
    Column("retain_until", UTCDateTime(), nullable=True),
    Column("locale_decision", Text(), nullable=True),
    Column("skipped_channels", Text(), nullable=True),  # JSON, see SkippedRecord
    Column("plan_reason", Text(), nullable=True),  # e.g. "paper-preference" (0005)
    PrimaryKeyConstraint("tenant", "document_id", name="pk_documents"),
    UniqueConstraint("tenant", "idempotency_key", name="uq_documents_idempotency_key"),
)
# The indexes as of the newest migration (archive/migrations/versions); the migrations, not
# `create_all`, make them.
Index(
    "ix_documents_customer_created",
    documents.c.tenant,
    documents.c.customer_id,
    documents.c.created_at,
    documents.c.document_id,
)
Index(
    "ix_documents_customer_kind_created",
    documents.c.tenant,
    documents.c.customer_id,
    documents.c.kind,
    documents.c.created_at,
    documents.c.document_id,
)
Index("ix_documents_corrects", documents.c.tenant, documents.c.corrects_document_id)

outputs = Table(
    "outputs",
    metadata,
    Column("tenant", String(100), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("key", Text(), nullable=False),
    Column("media_type", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("pages", Integer(), nullable=True),
    Column("facts", Text(), nullable=False),
    PrimaryKeyConstraint("tenant", "document_id", "channel", name="pk_outputs"),
    ForeignKeyConstraint(
        ["tenant", "document_id"],
        ["documents.tenant", "documents.document_id"],
        name="fk_outputs_document",
        ondelete="CASCADE",
    ),
)


# --- the index --------------------------------------------------------------------------


class DocumentIndex:
    """Document and output rows in SQLite (embedded default) or PostgreSQL."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        """`url` e.g. "sqlite:///state/index.db" or
        "postgresql+psycopg://postgres@127.0.0.1:5432/kanal". `schema` (PostgreSQL only)
        places the tables in that schema instead of the connection's default."""
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid schema name {schema!r}: use [a-z_][a-z0-9_]*")
        self.schema = schema
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_timeout": POOL_TIMEOUT_S}
        connect_args: dict[str, Any] = {}
        if url.startswith("sqlite"):
            if schema is not None:
                raise ValueError("schema is only supported on PostgreSQL")
            connect_args["timeout"] = _SQLITE_BUSY_TIMEOUT_MS / 1000
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
        self._base_engine = engine
        self._engine: Engine = (
            engine.execution_options(schema_translate_map={None: schema}) if schema else engine
        )

    @property
    def engine(self) -> Engine:
        """The engine (with the schema mapping applied), for maintenance tools and tests."""
        return self._engine

    @property
    def dialect(self) -> str:
        return self._base_engine.dialect.name

    def close(self) -> None:
        """Release pooled connections."""
        self._base_engine.dispose()

    def create_schema(self) -> None:
        """Bring the schema up to date (see `migrate`); kept under its first name."""
        self.migrate()

    def migrate(self) -> None:
        """Create the PostgreSQL schema (if given) and run the Alembic migrations
        (archive/migrations) up to the newest revision. Safe to call on every start and from
        several servers at once (PostgreSQL: an advisory lock serialises them)."""
        from archive.migrations.run import upgrade

        with self._connect() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SET LOCAL statement_timeout = 0"))  # an index on a big
                conn.execute(text("SET LOCAL lock_timeout = 0"))  # table takes its time
                conn.execute(text("SELECT pg_advisory_xact_lock(7305514)"))
            if self.schema is not None:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                conn.execute(text(f'SET LOCAL search_path TO "{self.schema}"'))
            upgrade(conn, self.schema)

    def drop_schema(self) -> None:
        """Drop the index tables and the migration record: the index is lost (it can be
        rebuilt from the archive with `archive.rebuild.reindex`). For recovery drills."""
        with self._connect() as conn:
            metadata.drop_all(conn)
            conn.execute(text(
                f'DROP TABLE IF EXISTS {self._qualified("alembic_version_archive")}'))

    def _qualified(self, name: str) -> str:
        return f'"{self.schema}"."{name}"' if self.schema else f'"{name}"'

    # --- writing --------------------------------------------------------------------------

    def add(self, record: DocumentRecord,
            also: Callable[[Connection], None] | None = None) -> None:
        """Insert a document and its outputs in one transaction.

        `also(conn)`, when given, runs inside that transaction after the rows are inserted:
        its statements commit with the document or not at all (a transactional outbox).

        Raises DuplicateDocument (and writes nothing) if the (tenant, document_id) or the
        (tenant, idempotency_key) is already indexed.
        """
        document_row = _document_row(record)
        output_rows = [_output_row(record.tenant, record.document_id, output)
                       for output in record.outputs]
        channels = [row["channel"] for row in output_rows]
        if len(set(channels)) != len(channels):
            raise ValueError(f"document {record.document_id}: duplicate channel in outputs")
        try:
            with self._connect() as conn:
                conn.execute(insert(documents), [document_row])
                if output_rows:
                    conn.execute(insert(outputs), output_rows)
                if also is not None:
                    also(conn)
        except sa_exc.IntegrityError as exc:
            raise self._duplicate(record) from exc

    def add_many(self, records: Sequence[tuple[DocumentRecord,
                                               Callable[[Connection], None] | None]]) -> None:
        """`add` for many documents in ONE transaction (a bulk chunk): every document row,
        every output row (one multi-row statement each), then each document's `also(conn)`.
        All commit or none. Raises DuplicateDocument (nothing written) when any document is
        indexed already; the caller then adds them one by one to learn which."""
        if not records:
            return
        document_rows, output_rows = [], []
        for record, _ in records:
            document_rows.append(_document_row(record))
            rows = [_output_row(record.tenant, record.document_id, output)
                    for output in record.outputs]
            if len({row["channel"] for row in rows}) != len(rows):
                raise ValueError(f"document {record.document_id}: duplicate channel in outputs")
            output_rows.extend(rows)
        try:
            with self._connect() as conn:
                conn.execute(insert(documents), document_rows)
                if output_rows:
                    conn.execute(insert(outputs), output_rows)
                for _, also in records:
                    if also is not None:
                        also(conn)
        except sa_exc.IntegrityError as exc:
            raise DuplicateDocument(
                f"one of {len(records)} documents is already indexed") from exc

    def add_output(self, tenant: str, document_id: str, output: OutputRecord,
                   also: Callable[[Connection], None] | None = None) -> bool:
        """Index one more output of an indexed document (a channel rendered later, e.g. a
        delivery fallback), with `also(conn)` in the same transaction. -> False (and nothing
        written) when the document already has an output of that channel."""
        row = _output_row(tenant, document_id, output)
        try:
            with self._connect() as conn:
                conn.execute(insert(outputs), [row])
                if also is not None:
                    also(conn)
        except sa_exc.IntegrityError:
            return False
        return True

    def bulk_load(self, rows: Iterator[tuple[Any, ...]] | Sequence[tuple[Any, ...]]) -> int:
        """Load document rows fast (no outputs), in `documents` column order up to
        `retain_until` (bulk-loaded documents have no skipped channels and no plan reason),
        with aware datetimes: PostgreSQL COPY, SQLite one executemany. For benchmarks, tests
        and data migrations; it bypasses the duplicate checks of `add`."""
        columns = [c.name for c in documents.columns
                   if c.name not in ("skipped_channels", "plan_reason")]
        count = 0
        raw = self._base_engine.raw_connection()
        try:
            cursor = raw.cursor()
            if self.dialect == "postgresql":
                table = self._qualified("documents")
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
            else:
                def sqlite_rows() -> Iterator[tuple[Any, ...]]:
                    nonlocal count
                    for row in rows:
                        count += 1
                        yield tuple(_sqlite_value(v) for v in row)
                marks = ", ".join("?" * len(columns))
                cursor.executemany(
                    f"INSERT INTO documents ({', '.join(columns)}) VALUES ({marks})",
                    sqlite_rows())
            raw.commit()
        finally:
            raw.close()
        return count

    def _duplicate(self, record: DocumentRecord) -> DuplicateDocument:
        if self.get(record.tenant, record.document_id) is not None:
            return DuplicateDocument(
                f"document {record.tenant}/{record.document_id} is already indexed",
                field="document_id",
            )
        if record.idempotency_key is not None:
            existing = self.find_by_idempotency_key(record.tenant, record.idempotency_key)
            if existing is not None:
                return DuplicateDocument(
                    f"idempotency key already used by document {existing.document_id}",
                    field="idempotency_key",
                    existing_document_id=existing.document_id,
                )
        return DuplicateDocument(f"document {record.tenant}/{record.document_id} conflicts")

    # --- reading --------------------------------------------------------------------------

    def get(self, tenant: str, document_id: str) -> DocumentRecord | None:
        query = select(documents).where(
            documents.c.tenant == tenant, documents.c.document_id == document_id
        )
        return self._one(query)

    def find_by_idempotency_key(self, tenant: str, key: str) -> DocumentRecord | None:
        query = select(documents).where(
            documents.c.tenant == tenant, documents.c.idempotency_key == key
        )
        return self._one(query)

    def list_for_customer(
        self, tenant: str, customer_id: str, *, limit: int = 50
    ) -> list[DocumentRecord]:
        """A customer's documents, newest first (ties broken by document id, descending)."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be within 1..1000")
        query = (
            select(documents)
            .where(documents.c.tenant == tenant, documents.c.customer_id == customer_id)
            .order_by(documents.c.created_at.desc(), documents.c.document_id.desc())
            .limit(limit)
        )
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
            return self._with_outputs(conn, rows)

    def list_page(self, tenant: str, customer_id: str, **filters: Any) -> list[DocumentRecord]:
        """One page of a customer's documents, newest first, by keyset: only documents
        strictly older than `after` = (created_at, document_id) of the previous page's last
        row. Documents added meanwhile sort before `after` or after it by their own key, so
        a page sequence never repeats or skips a document. Filters: see `list_query`."""
        query = self.list_query(tenant, customer_id, **filters)
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
            return self._with_outputs(conn, rows)

    def list_query(
        self,
        tenant: str,
        customer_id: str,
        *,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
        kinds: Sequence[str] = (),
        channels: Sequence[str] = (),
        layout_id: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Any:
        """The SELECT behind `list_page` (exposed so tests can EXPLAIN it)."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be within 1..1000")
        query = select(documents).where(
            documents.c.tenant == tenant, documents.c.customer_id == customer_id
        )
        if after is not None:
            _aware("after", after[0])
            query = query.where(
                tuple_(documents.c.created_at, documents.c.document_id) < tuple_(
                    bindparam("after_created", after[0], type_=UTCDateTime()),
                    bindparam("after_id", after[1], type_=String()),
                )
            )
        if kinds:
            query = query.where(documents.c.kind.in_(list(kinds)))
        if layout_id:
            query = query.where(documents.c.layout_ref.startswith(f"{layout_id}@", autoescape=True))
        if created_from is not None:
            _aware("created_from", created_from)
            query = query.where(documents.c.created_at >= created_from)
        if created_before is not None:
            _aware("created_before", created_before)
            query = query.where(documents.c.created_at < created_before)
        if channels:
            query = query.where(
                select(outputs.c.channel)
                .where(
                    outputs.c.tenant == documents.c.tenant,
                    outputs.c.document_id == documents.c.document_id,
                    outputs.c.channel.in_(list(channels)),
                )
                .exists()
            )
        return query.order_by(
            documents.c.created_at.desc(), documents.c.document_id.desc()
        ).limit(limit)

    def corrected_by(self, tenant: str, document_ids: Sequence[str]) -> dict[str, list[str]]:
        """For each id, the documents that say they correct it (oldest first)."""
        found: dict[str, list[str]] = {document_id: [] for document_id in document_ids}
        if not document_ids:
            return found
        query = (
            select(documents.c.corrects_document_id, documents.c.document_id)
            .where(
                documents.c.tenant == tenant,
                documents.c.corrects_document_id.in_(list(document_ids)),
            )
            .order_by(documents.c.created_at, documents.c.document_id)
        )
        with self._connect() as conn:
            for corrected, document_id in conn.execute(query):
                found[corrected].append(document_id)
        return found

    def iter_all(self, batch: int = 1000) -> Iterator[DocumentRecord]:
        """Every indexed document with its outputs, ordered by (tenant, document_id): for
        comparing two indexes and for `verify`."""
        last: tuple[str, str] | None = None
        while True:
            query = select(documents).order_by(documents.c.tenant, documents.c.document_id)
            if last is not None:
                query = query.where(tuple_(documents.c.tenant, documents.c.document_id) > last)
            with self._connect() as conn:
                rows = conn.execute(query.limit(batch)).mappings().all()
                records = self._with_outputs(conn, rows)
            if not records:
                return
            yield from records
            last = (records[-1].tenant, records[-1].document_id)

    def known_ids(self, tenant: str, document_ids: Sequence[str]) -> set[str]:
        """Which of these document ids of `tenant` are indexed."""
        if not document_ids:
            return set()
        query = select(documents.c.document_id).where(
            documents.c.tenant == tenant, documents.c.document_id.in_(list(document_ids))
        )
        with self._connect() as conn:
            return set(conn.execute(query).scalars())

    def _one(self, query: Any) -> DocumentRecord | None:
        with self._connect() as conn:
            row = conn.execute(query).mappings().first()
            if row is None:
                return None
            return self._with_outputs(conn, [row])[0]

    @staticmethod
    def _with_outputs(conn: Connection, rows: Sequence[RowMapping]) -> list[DocumentRecord]:
        if not rows:
            return []
        ids = [(row["tenant"], row["document_id"]) for row in rows]
        query = (
            select(outputs)
            .where(tuple_(outputs.c.tenant, outputs.c.document_id).in_(ids))
            .order_by(outputs.c.channel)
        )
        by_document: dict[tuple[str, str], list[OutputRecord]] = {key: [] for key in ids}
        for out in conn.execute(query).mappings():
            by_document[(out["tenant"], out["document_id"])].append(_output_record(out))
        return [
            _document_record(row, by_document[(row["tenant"], row["document_id"])]) for row in rows
        ]

    # --- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection in a transaction (committed on success), with driver failures
        translated: unreachable or timed-out databases become ArchiveUnavailable."""
        try:
            with self._engine.begin() as conn:
                self._within_deadline(conn)
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


    def _within_deadline(self, conn: Connection) -> None:
        """Statements of this transaction end by the current call's deadline."""
        budget = deadline.remaining()
        if self.dialect == "sqlite":
            ms = _SQLITE_BUSY_TIMEOUT_MS if budget is None else min(
                _SQLITE_BUSY_TIMEOUT_MS, int(budget * 1000))
            conn.exec_driver_sql(f"PRAGMA busy_timeout={max(ms, 1)}")
        elif budget is not None and budget * 1000 < STATEMENT_TIMEOUT_MS:
            conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"),
                         {"ms": str(max(int(budget * 1000), 1))})

    def ping(self) -> None:
        """`SELECT 1`, or ArchiveUnavailable: how health checks ask whether the index answers."""
        with self._connect() as conn:
            conn.execute(text("SELECT 1"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy's SQLite DateTime stores it (naive UTC text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _short(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware")


def _document_row(record: DocumentRecord) -> dict[str, Any]:
    _aware("created_at", record.created_at)
    _aware("retain_until", record.retain_until)
    return {
        "tenant": record.tenant,
        "document_id": record.document_id,
        "customer_id": record.customer_id,
        "kind": str(record.kind),
        "layout_ref": record.layout_ref,
        "locale": record.locale,
        "created_at": record.created_at,
        "input_sha256": record.input_sha256,
        "idempotency_key": record.idempotency_key,
        "channel_plan": record.channel_plan,
        "corrects_document_id": record.corrects_document_id,
        "retain_until": record.retain_until,
        "locale_decision": record.locale_decision,
        "skipped_channels": skipped_to_json(record.skipped_channels) or None,
        "plan_reason": record.plan_reason,
    }


def _output_row(tenant: str, document_id: str, output: OutputRecord) -> dict[str, Any]:
    try:
        facts = json.dumps(output.facts, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"output {output.channel}: facts must be JSON-serialisable") from exc
    return {
        "tenant": tenant,
        "document_id": document_id,
        "channel": str(output.channel),
        "key": output.key,
        "media_type": output.media_type,
        "sha256": output.sha256,
        "size": output.size,
        "pages": output.pages,
        "facts": facts,
    }


def _output_record(row: Mapping[str, Any]) -> OutputRecord:
    return OutputRecord(
        channel=row["channel"],
        key=row["key"],
        media_type=row["media_type"],
        sha256=row["sha256"],
        size=int(row["size"]),
        pages=row["pages"],
        facts=json.loads(row["facts"]),
    )


def _document_record(row: Mapping[str, Any], outs: list[OutputRecord]) -> DocumentRecord:
    return DocumentRecord(
        tenant=row["tenant"],
        document_id=row["document_id"],
        customer_id=row["customer_id"],
        kind=row["kind"],
        layout_ref=row["layout_ref"],
        locale=row["locale"],
        created_at=row["created_at"],
        input_sha256=row["input_sha256"],
        idempotency_key=row["idempotency_key"],
        channel_plan=row["channel_plan"],
        retain_until=row["retain_until"],
        outputs=tuple(outs),
        corrects_document_id=row["corrects_document_id"],
        locale_decision=row["locale_decision"],
        skipped_channels=skipped_from_json(row["skipped_channels"]),
        plan_reason=row["plan_reason"],
    )
