"""The outbox's tables, in the index database (own `MetaData`, created with `create_all` on
start like the print queue's, and an index added later created on an existing table too:
server.schema.create_tables; the archive's migrations never see them). What each holds:
see server.delivery.store."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from archive.tables import UTCDateTime

metadata = MetaData()

deliveries = Table(
    "deliveries", metadata,
    Column("delivery_id", String(26), primary_key=True),
    Column("tenant", String(100), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("provider", String(100), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("archive_key", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("media_type", String(200), nullable=False),
    Column("message_id", Text, nullable=False),
    Column("provider_message_id", String(200), nullable=False, default=""),
    Column("state", String(16), nullable=False),
    Column("state_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime()),
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("fallback_of", String(26)),
    Column("fallbacks", String(100), nullable=False, default=""),  # "print" or "email,print"
    Column("dead_letter", Boolean, nullable=False, default=False),
    Column("details", Text, nullable=False, default="{}"),  # JSON: facts, kind flags, print
)
Index("ix_deliveries_due", deliveries.c.state, deliveries.c.provider,
      deliveries.c.next_attempt_at)
Index("ix_deliveries_document", deliveries.c.tenant, deliveries.c.document_id)
Index("ix_deliveries_provider_id", deliveries.c.provider, deliveries.c.provider_message_id)
Index("ix_deliveries_contact", deliveries.c.tenant, deliveries.c.customer_id,
      deliveries.c.kind, deliveries.c.state_at)
# A tenant's deliveries newest first (`OutboxQueries.list`: ListDeliveries, a page at a
# time) read in index order and stop at the page's end; without it SQLite sorted every
# delivery the tenant ever had for each page (45 ms at 100,000).
Index("ix_deliveries_tenant_newest", deliveries.c.tenant, deliveries.c.delivery_id)
# The same, filtered (ListDeliveries by state, by dead letter): read newest first until the
# page fills, the tenant's newest walked every row the tenant ever had when few match
# (at 100,000: 28-81 ms on SQLite by state, 26-96 by dead letter, 52-107 on PostgreSQL by
# dead letter; 0.1-0.3 and 0.3-0.7 by these). A state's rows in order (one read per state
# asked for, merged), and the few dead letters alone: partial, so the many rows that are
# not take no room and cost no write.
Index("ix_deliveries_tenant_state", deliveries.c.tenant, deliveries.c.state,
      deliveries.c.delivery_id)
Index("ix_deliveries_dead_letter", deliveries.c.tenant, deliveries.c.delivery_id,
      sqlite_where=deliveries.c.dead_letter.is_(True),
      postgresql_where=deliveries.c.dead_letter.is_(True))
# A recipient's deliveries by one provider (`OutboxQueries.waiting_for`: a receipt whose
# provider id was never recorded, matched by its client reference). Without it the query
# read every row of the provider still `sent` (an SMS whose receipt never came stays so
# for good): 17-36 ms on SQLite and 21-77 on PostgreSQL at 100,000 such rows, 0.2-0.6 and
# 0.4-0.9 by it (load_tests/bench_history_queries.py).
Index("ix_deliveries_recipient", deliveries.c.provider, deliveries.c.recipient)
# The rows a fallback may still start from (`OutboxQueries.due_fallbacks`, at every dispatch
# round after a document or a failure): only those with a fallback left. Without it the
# query read every failed, bounced, expired and suppressed row ever kept (most have no
# fallback): 24-46 ms per round at 100,000 such rows on SQLite, 22-27 on PostgreSQL, growing
# with the outbox's history. Partial, so delivered rows that kept their `fallbacks` and
# rows without one take no room in it.
Index("ix_deliveries_fallback_due", deliveries.c.state,
      sqlite_where=deliveries.c.fallbacks != "", postgresql_where=deliveries.c.fallbacks != "")

delivery_attempts = Table(
    "delivery_attempts", metadata,
    Column("delivery_id", String(26), nullable=False),
    Column("number", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("outcome", String(16), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("message_id", Text, nullable=False),
    PrimaryKeyConstraint("delivery_id", "number"),
)

# Every provider id of a delivery sent in parts (an SMS's submit_sm ids), with each part's
# receipt outcome ("" until it comes): a receipt names one part.
delivery_provider_ids = Table(
    "delivery_provider_ids", metadata,
    Column("provider", String(100), nullable=False),
    Column("provider_message_id", String(200), nullable=False),
    Column("delivery_id", String(26), nullable=False),
    Column("outcome", String(16), nullable=False, default=""),
    # An SMSC's message ids are unique only for a while (counters wrap, restart): a receipt
    # goes to the newest delivery that has its id (DeliveryStore.by_provider_id).
    PrimaryKeyConstraint("provider", "provider_message_id", "delivery_id"),
)
Index("ix_delivery_provider_ids_delivery", delivery_provider_ids.c.delivery_id)

delivery_events = Table(
    "delivery_events", metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(26), nullable=False),
    Column("tenant", String(100), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False, default=""),
)
Index("ix_delivery_events_tenant", delivery_events.c.tenant, delivery_events.c.event_id)
Index("ix_delivery_events_delivery", delivery_events.c.delivery_id)

delivery_webhooks = Table(
    "delivery_webhooks", metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=False),
    Column("tenant", String(100), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("done", Boolean, nullable=False, default=False),
    Column("last_error", Text, nullable=False, default=""),
)
Index("ix_delivery_webhooks_due", delivery_webhooks.c.done, delivery_webhooks.c.next_attempt_at)

delivery_inputs = Table(
    "delivery_inputs", metadata,
    Column("tenant", String(100), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("purge_at", UTCDateTime(), nullable=False),  # at the latest
    PrimaryKeyConstraint("tenant", "document_id"),
)

delivery_optouts = Table(
    "delivery_optouts", metadata,
    Column("tenant", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("scope", String(32), nullable=False),  # a channel, or "marketing"
    Column("at", UTCDateTime(), nullable=False),
    Column("source", Text, nullable=False, default=""),
    PrimaryKeyConstraint("tenant", "customer_id", "scope"),
)
