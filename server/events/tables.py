"""The events' table, in the index database (own `MetaData`, created with `create_all` on
start like the delivery stage's; the archive's migrations never see it).

`events`: one row per accepted event, in arrival order (`seq`), never changed or deleted:
the journeys' history and what `kanal events replay` feeds through the journeys again.
`(tenant, idempotency_key)` is unique: the database, not a lock, makes a retried publish
one event.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from archive.tables import UTCDateTime

metadata = MetaData()

events = Table(
    "kanal_events", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("event_id", String(26), nullable=False, unique=True),
    Column("tenant", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("data", Text, nullable=False),  # JSON as received (numbers kept as written)
    Column("attributes", Text, nullable=False, default="{}"),  # JSON, see PublishEventRequest
    UniqueConstraint("tenant", "idempotency_key", name="uq_kanal_events_key"),
)
Index("ix_kanal_events_customer", events.c.tenant, events.c.customer_id, events.c.occurred_at)
Index("ix_kanal_events_type", events.c.tenant, events.c.customer_id, events.c.event_type,
      events.c.occurred_at)
