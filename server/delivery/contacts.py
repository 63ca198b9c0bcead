"""The outbox's rows the contact rules read at send time (server.delivery.rules): how often a
customer was reached lately, and a customer's opt-outs (a channel, or `marketing`). Part of
`server.delivery.store.DeliveryStore`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Engine

from server.delivery.model import State
from server.delivery.tables import deliveries, delivery_optouts

# read before every send; built once (a statement built per call costs SQLAlchemy more CPU
# than SQLite takes to run it)
_OPTED_OUT = select(delivery_optouts.c.scope).where(
    delivery_optouts.c.tenant == bindparam("w_tenant"),
    delivery_optouts.c.customer_id == bindparam("w_customer_id"))


class ContactRows:
    """Contacts and opt-outs on `engine`."""

    engine: Engine

    def contacts_since(self, tenant: str, customer_id: str, kinds: Sequence[str],
                       since: datetime, *, marketing: bool = False,
                       document_id: str = "") -> int:
        """Documents that reached this customer (a delivery sent or delivered) since
        `since`, other than `document_id`: a document sent by e-mail and on paper is one
        message, and its other channels do not count against its own cap."""
        query = select(deliveries.c.document_id, deliveries.c.details).where(
            deliveries.c.tenant == tenant, deliveries.c.customer_id == customer_id,
            deliveries.c.state.in_([State.SENT.value, State.DELIVERED.value]),
            deliveries.c.state_at >= since, deliveries.c.document_id != document_id)
        if kinds:
            query = query.where(deliveries.c.kind.in_(list(kinds)))
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
        return len({document for document, details in rows
                    if not marketing or json.loads(details).get("marketing")})

    def opt_out(self, tenant: str, customer_id: str, scope: str, now: datetime,
                source: str = "") -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(delivery_optouts).where(
                delivery_optouts.c.tenant == tenant, delivery_optouts.c.customer_id == customer_id,
                delivery_optouts.c.scope == scope))
            conn.execute(insert(delivery_optouts).values(
                tenant=tenant, customer_id=customer_id, scope=scope, at=now, source=source))

    def opted_out(self, tenant: str, customer_id: str) -> set[str]:
        with self.engine.begin() as conn:
            return set(conn.execute(_OPTED_OUT, {"w_tenant": tenant,
                                                 "w_customer_id": customer_id}).scalars())
