"""The outbox's rows the contact rules read at send time (server.delivery.rules): how often a
customer was reached lately, and a customer's opt-outs (a channel, or `marketing`). Part of
`server.delivery.store.DeliveryStore`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from server.delivery.model import State
from server.delivery.tables import deliveries, delivery_optouts


class ContactRows:
    """Contacts and opt-outs on `engine`."""

    engine: Engine

    def contacts_since(self, tenant: str, customer_id: str, kinds: Sequence[str],
                       since: datetime, *, marketing: bool = False,
                       exclude: str = "") -> int:
        """Deliveries that reached this customer (sent or delivered) since `since`."""
        query = select(deliveries.c.details).where(
            deliveries.c.tenant == tenant, deliveries.c.customer_id == customer_id,
            deliveries.c.state.in_([State.SENT.value, State.DELIVERED.value]),
            deliveries.c.state_at >= since, deliveries.c.delivery_id != exclude)
        if kinds:
            query = query.where(deliveries.c.kind.in_(list(kinds)))
        with self.engine.begin() as conn:
            details = list(conn.execute(query).scalars())
        if marketing:
            return sum(1 for d in details if json.loads(d).get("marketing"))
        return len(details)

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
            return set(conn.execute(select(delivery_optouts.c.scope).where(
                delivery_optouts.c.tenant == tenant,
                delivery_optouts.c.customer_id == customer_id)).scalars())
