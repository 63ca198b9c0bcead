"""The outbox in the index database: its tables, and `DeliveryStore`, the one object over them.

Tables (server.delivery.tables):

- `deliveries`: one row per planned delivery of a document's channel: recipient, the
  archived output to send, the idempotency key (`message_id`, decided when the row is
  written, before any attempt), state, attempts, the next attempt's time, a lease while a
  dispatcher sends, the fallback chain (`fallback_of`, the channels still to try).
- `delivery_attempts`: one row per attempt, written *before* the provider is called and
  finished after: a kill -9 in between leaves an open attempt, which the reaper closes
  as `interrupted`.
- `delivery_events`: every state change with its time and the provider's words; the
  source of `WatchDeliveries` and of webhooks (`delivery_webhooks`: one row per event
  still to post to the tenant's URL).
- `delivery_inputs`: the document's compose input, encrypted (server.delivery.sealed),
  kept until every delivery of the document has ended, to render a fallback channel.
- `delivery_optouts`: a customer's opt-outs (a channel, or `marketing`), read at send time.
- `delivery_provider_ids`: the provider ids of a message sent in parts, with each part's
  receipt outcome.

Every change is a compare-and-set on the row's state (and lease owner), so two
dispatchers, a receipt and an operator never both move one row.

`DeliveryStore` is the one object the delivery stage and its parts (dispatcher, receipts,
fallback, webhooks) hold; its methods live by concept:

    transitions.py   writing rows with their document; every state change (compare-and-set)
    housekeeping.py  reaping lapsed leases, expiring queued rows, purging sealed inputs
    queries.py       reading rows, histories, the queue's depth, due fallbacks, sealed inputs
    contacts.py      recent contacts and opt-outs, for the contact rules
    events.py        the event row of every change, its webhook row, reading both back
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Engine

from server.delivery.contacts import ContactRows
from server.delivery.housekeeping import OutboxHousekeeping
from server.delivery.queries import OutboxQueries
from server.delivery.tables import metadata
from server.schema import create_tables


class DeliveryStore(OutboxHousekeeping, OutboxQueries, ContactRows):
    """Rows of the outbox on the index's engine. `webhook_tenants`: tenants with a webhook
    URL; each of their events also gets a `delivery_webhooks` row, in the same transaction."""

    def __init__(self, engine: Engine, webhook_tenants: Iterable[str] = ()):
        self.engine = engine
        self.webhook_tenants = frozenset(webhook_tenants)
        self.postgres = engine.dialect.name == "postgresql"

    def create_schema(self) -> None:
        """The outbox's tables, and any of their indexes an older database lacks."""
        with self.engine.begin() as conn:
            create_tables(conn, metadata)
