"""The events stage's one entry point: `EventService` (and `publish_event` for other stages).

publish: event input -> checked (type known, data valid against the type's JSON Schema,
attributes a JSON object) -> stored in `kanal_events` -> handed to the listeners (the
journeys) on the same database transaction, so an event is stored together with the
journeys it started or ended, or not at all.

Idempotency: `(tenant, idempotency_key)` is unique in the table. The same key again with the
same content is answered with the stored event (`replayed`) and changes nothing; with other
content it is a Conflict. The content is what the caller sent (customer, type, occurred-at
as sent, data, attributes): an event sent without occurred-at is stored as of the server's
clock, and its retry, again without, is the same event (`replayed`), not a Conflict. An
event without a key but with an occurred-at is keyed by its content, so the same event
published twice is one event. An event with neither a key nor an occurred-at is never
deduplicated: two identical ones are two events (nothing tells a retry from a second
occurrence; send an idempotency key to make retries safe). Within one
request (PublishEvents, or a stream's open transaction) a key given to two events of
different content is INVALID_ARGUMENT on the second's `events[n].idempotency_key`, naming
the first: nothing of that request is stored, so no stored event is there to name.

Replay (`replay`, `kanal events replay`): stored events are handed to the listeners again,
in arrival order. Listeners are idempotent per event (a journey instance is unique per
trigger event), so a replay starts only what a journey added since would have started.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import and_, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping
from ulid import ULID

from server import logs
from server.compose.data import read_stored_json
from server.errors import Conflict, Gathered, InvalidInput, TooLarge, Unavailable, quote
from server.events.tables import events, metadata
from server.events.types import EventTypes, parse_attributes

log = logs.get_logger(__name__)

MAX_KEY = 200
MAX_EVENT_BYTES = 256 * 1024  # data + attributes: an event is facts, not a document
MAX_FUTURE = timedelta(hours=1)  # clocks differ a little, never by more
# A set `occurred_at` must be after this: a protobuf Timestamp of 0 seconds (a caller's
# zero value, sent as set) reads as the Unix epoch, a default, never a fact.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CUSTOMER_ID = 200
TRANSACTION_BATCH = 500


@dataclass(frozen=True, slots=True)
class EventInput:
    """What a caller publishes. `occurred_at`: aware, after EARLIEST (1970-01-01T00:00:00Z)
    and at most MAX_FUTURE ahead of the clock; None: now. `data_json` / `attributes_json`:
    JSON objects as text."""

    tenant: str
    customer_id: str
    event_type: str
    data_json: str = "{}"
    occurred_at: datetime | None = None
    idempotency_key: str = ""
    attributes_json: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """A stored event. `data` numbers are Decimal (never float)."""

    seq: int
    event_id: str
    tenant: str
    customer_id: str
    event_type: str
    occurred_at: datetime
    received_at: datetime
    idempotency_key: str
    data: Mapping[str, Any]
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Published:
    event: Event
    replayed: bool
    started: int = 0  # journeys started by it
    exited: int = 0  # journeys it ended


class Listener(Protocol):
    def on_event(self, conn: Connection, event: Event, replay: bool) -> tuple[int, int]:
        """Act on a stored event inside its transaction -> (journeys started, exited)."""


def event_from_row(row: RowMapping) -> Event:
    return Event(row["seq"], row["event_id"], row["tenant"], row["customer_id"],
                 row["event_type"], row["occurred_at"], row["received_at"],
                 row["idempotency_key"], read_stored_json(row["data"]),
                 json.loads(row["attributes"] or "{}"))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


class EventService:
    def __init__(self, engine: Engine, types: EventTypes, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.engine = engine
        self.types = types
        self.clock = clock
        self.listeners: list[Listener] = []

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn)

    # --- publishing ------------------------------------------------------------------------

    def check(self, item: EventInput, where: str = "") -> dict[str, Any]:
        """The row an input would be stored as, or InvalidInput naming `<where>field`."""
        if not item.customer_id:
            raise InvalidInput.field(f"{where}customer_id", "is required")
        if len(item.customer_id) > MAX_CUSTOMER_ID:
            raise InvalidInput.field(f"{where}customer_id",
                                     f"must be at most {MAX_CUSTOMER_ID} characters")
        if len(item.idempotency_key) > MAX_KEY:
            raise InvalidInput.field(f"{where}idempotency_key",
                                     f"must be at most {MAX_KEY} characters")
        size = len(item.data_json.encode()) + len(item.attributes_json.encode())
        if size > MAX_EVENT_BYTES:
            raise TooLarge(f"{where}data_json and attributes_json are {size} bytes; the limit "
                           f"is {MAX_EVENT_BYTES}")
        if item.occurred_at is not None and item.occurred_at.tzinfo is None:
            raise InvalidInput.field(f"{where}occurred_at", "must carry a time zone")
        if item.occurred_at is not None and item.occurred_at <= EARLIEST:
            raise InvalidInput.field(f"{where}occurred_at", (
                f"{item.occurred_at.isoformat()} is not after 1970-01-01T00:00:00Z (the "
                "time of an unset protobuf Timestamp); leave occurred_at unset for now"))
        gathered = Gathered(f"invalid {where.rstrip('.') or 'event'}: data and attributes")
        with gathered:  # one refusal names what is wrong with both
            data = self.types.parse(item.event_type, item.data_json, where)
        with gathered:
            attributes = parse_attributes(item.attributes_json, where, item.customer_id)
        gathered.raise_any()
        now = self.clock()
        occurred = (item.occurred_at or now).astimezone(UTC)
        if occurred > now + MAX_FUTURE:
            raise InvalidInput.field(f"{where}occurred_at", f"{occurred.isoformat()} is in "
                                     "the future: an event is something that happened")
        # what the caller sent: a retry without a time is the same event, though `now` moved
        sent_time = occurred.isoformat() if item.occurred_at is not None else None
        content = hashlib.sha256(_canonical(
            [item.customer_id, item.event_type, sent_time, data, attributes]
        ).encode()).hexdigest()
        event_id = str(ULID())
        if item.idempotency_key:
            key = item.idempotency_key
        elif sent_time is not None:
            key = f"sha256:{content}"
        else:  # no key, no time: nothing tells a retry from a second event; never merged
            key = f"event:{event_id}"
        return {
            "event_id": event_id, "tenant": item.tenant, "customer_id": item.customer_id,
            "event_type": item.event_type, "occurred_at": occurred, "received_at": now,
            "idempotency_key": key,
            "content_sha256": content, "data": item.data_json or "{}",
            "attributes": _canonical(attributes),
        }

    def publish(self, items: Sequence[EventInput], *, indexed: bool = False
                ) -> list[Published]:
        """Check every item, then store them (and run the listeners) in one transaction:
        all or nothing. `indexed`: name fields `events[n].…` in errors."""
        rows = [self.check(item, f"events[{n}]." if indexed else "")
                for n, item in enumerate(items)]
        keys = _RequestKeys()
        for n, row in enumerate(rows):
            keys.add(n, row)
        return self._store_rows(rows)

    def publish_stream(self, items: Iterable[EventInput]) -> Iterator[list[Published]]:
        """Store a stream in transactions of TRANSACTION_BATCH -> each transaction's events.
        A bad item raises (InvalidInput naming `events[n]`, n counted from 0 in the stream)
        after everything before it was stored; so does an error raised by `items` itself
        (a request that cannot be read, the caller gone): what came before it is kept. A key
        stored before with other content: Conflict naming `events[n].idempotency_key`,
        after the events before it were stored."""
        batch: list[dict[str, Any]] = []
        keys = _RequestKeys()  # within the open transaction; a stored key is found stored
        source = iter(items)
        for n in itertools.count():
            try:
                item = next(source, None)
                if item is None:
                    break
                row = self.check(item, f"events[{n}].")
                keys.add(n, row)
            except Exception:
                yield from self._store_stream_rows(batch, n - len(batch))
                raise
            batch.append(row)
            if len(batch) >= TRANSACTION_BATCH:
                yield from self._store_stream_rows(batch, n + 1 - len(batch))
                batch, keys = [], _RequestKeys()
        yield from self._store_stream_rows(batch, n - len(batch))

    def _store_stream_rows(self, rows: list[dict[str, Any]], first: int
                           ) -> Iterator[list[Published]]:
        """Store a stream's rows (rows[0] is `events[first]`) in one transaction. A key
        stored before with other content at rows[i]: rows[:i] are stored in a transaction of
        their own, then Conflict naming `events[first + i]`."""
        if not rows:
            return
        try:
            yield self._store_rows(rows)
        except _KeyConflict as exc:
            if exc.index:
                yield self._store_rows(rows[:exc.index])
            raise Conflict(f"events[{first + exc.index}].idempotency_key: {exc}") from exc

    def _store_rows(self, rows: list[dict[str, Any]]) -> list[Published]:
        """Store rows and run the listeners in one transaction -> their events. Raises
        _KeyConflict (a Conflict) naming the row whose key was stored with other content,
        Unavailable when the database is down."""
        for attempt in (1, 2):
            try:
                with self.engine.begin() as conn:
                    stored: list[Published] = []
                    for index, row in enumerate(rows):
                        try:
                            stored.append(self._store(conn, row))
                        except Conflict as exc:
                            raise _KeyConflict(str(exc), index) from exc
                    return stored
            except sa_exc.IntegrityError:  # a concurrent publish of the same key won
                if attempt == 2:
                    raise
            except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
                raise Unavailable(f"event store unavailable: {exc.orig or exc}") from exc
        raise AssertionError("unreachable")

    def _store(self, conn: Connection, row: dict[str, Any]) -> Published:
        seq = self._insert(conn, row)
        if seq is None:  # the key is taken: the same event again, or a conflict
            stored = conn.execute(select(events).where(and_(
                events.c.tenant == row["tenant"],
                events.c.idempotency_key == row["idempotency_key"]))).mappings().one()
            if stored["content_sha256"] != row["content_sha256"]:
                raise Conflict(f"idempotency key {row['idempotency_key']!r} was already used "
                               f"for event {stored['event_id']} with other content")
            return Published(event_from_row(stored), replayed=True)
        event = Event(seq, row["event_id"], row["tenant"], row["customer_id"],
                      row["event_type"], row["occurred_at"], row["received_at"],
                      row["idempotency_key"], read_stored_json(row["data"]),
                      json.loads(row["attributes"]))
        started = exited = 0
        for listener in self.listeners:
            s, e = listener.on_event(conn, event, False)
            started, exited = started + s, exited + e
        return Published(event, False, started, exited)

    @staticmethod
    def _insert(conn: Connection, row: dict[str, Any]) -> int | None:
        """INSERT unless the (tenant, key) is taken -> the new seq, or None."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        return conn.execute(dialect.insert(events).values(**row).on_conflict_do_nothing(
            index_elements=["tenant", "idempotency_key"]).returning(events.c.seq)).scalar()

    # --- reading and replaying --------------------------------------------------------------

    def for_customer(self, tenant: str, customer_id: str, limit: int = 1000) -> list[Event]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(events).where(
                events.c.tenant == tenant, events.c.customer_id == customer_id)
                .order_by(events.c.occurred_at.desc(), events.c.seq.desc()).limit(limit)
            ).mappings().all()
        return [event_from_row(r) for r in rows]

    def replay(self, *, tenant: str | None = None, customer_id: str | None = None,
               since: datetime | None = None, after_seq: int = 0, batch: int = 500
               ) -> tuple[int, int]:
        """Hand stored events to the listeners again, oldest first -> (events, journeys
        started). Safe to run any number of times, also beside a running server."""
        replayed = started = 0
        while True:
            query = select(events).where(events.c.seq > after_seq)
            if tenant:
                query = query.where(events.c.tenant == tenant)
            if customer_id:
                query = query.where(events.c.customer_id == customer_id)
            if since is not None:
                query = query.where(events.c.occurred_at >= since)
            with self.engine.begin() as conn:
                rows = conn.execute(query.order_by(events.c.seq).limit(batch)).mappings().all()
                for row in rows:
                    event = event_from_row(row)
                    for listener in self.listeners:
                        started += listener.on_event(conn, event, True)[0]
            if not rows:
                return replayed, started
            replayed += len(rows)
            after_seq = rows[-1]["seq"]


class _KeyConflict(Conflict):
    """A Conflict at rows[index] of a transaction (which was rolled back)."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


class _RequestKeys:
    """The idempotency keys of the events going into one transaction: a key may come again
    with the same content (the same event: stored once, the second answered `replayed`),
    never with other content. Caught here, not by the table's unique key: that would roll
    the transaction back and name as the key's owner an event id that was never stored."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[int, str]] = {}  # key -> (events[n], content sha256)

    def add(self, n: int, row: Mapping[str, Any]) -> None:
        """Note events[n]'s row, or InvalidInput on `events[n].idempotency_key`."""
        key = row["idempotency_key"]
        first, content = self._first.setdefault(key, (n, row["content_sha256"]))
        if content != row["content_sha256"]:
            raise InvalidInput.field(
                f"events[{n}].idempotency_key",
                f"{quote(key)} is also the key of events[{first}] in this request, whose "
                "content differs; an idempotency key names one event")


def json_text(value: Mapping[str, Any]) -> str:
    """A mapping -> JSON text, Decimals written as JSON numbers (exactly, never via float)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      default=lambda v: f"\x00{v}\x00" if isinstance(v, Decimal) else str(v))
    return re.sub(r'"\\u0000(-?[0-9.Ee+-]+)\\u0000"', r"\1", text)


def publish_event(events_service: EventService, *, tenant: str, customer_id: str,
                  event_type: str, data: Mapping[str, Any] | str = "{}",
                  occurred_at: datetime | None = None, idempotency_key: str = "",
                  attributes: Mapping[str, Any] | None = None) -> Published:
    """For other stages (surveys: `survey_response`, `follow_up_required`): publish one
    event as if it came over gRPC: validated against its type's schema, stored, and
    handed to the journeys. `data`: a mapping (Decimal allowed) or JSON text. Raises
    InvalidInput (field paths `data.$.…`), Conflict (key reused with other content),
    Unavailable (database down). The same idempotency key again: `replayed`, no effect."""
    data_json = data if isinstance(data, str) else json_text(data)
    [published] = events_service.publish([EventInput(
        tenant=tenant, customer_id=customer_id, event_type=event_type, data_json=data_json,
        occurred_at=occurred_at, idempotency_key=idempotency_key,
        attributes_json=_canonical(attributes) if attributes else "")])
    return published
