"""Segments: a journey's conditions on the customer's attributes and event history.

Attribute conditions read the profile (server.journeys.profiles): `equals`, `in`, `not_in`,
`at_least`, `at_most` (numbers compared as Decimal), `exists`. Event conditions count the
customer's stored events of a type within `within_days` before the trigger (all history
when unset): `absent = true` holds when there are none, else at least `count_at_least`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from server.events.tables import events
from server.journeys.definition import Condition


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def attribute_holds(condition: Condition, attributes: Mapping[str, Any]) -> bool:
    present = condition.attribute in attributes
    value = attributes.get(condition.attribute)
    op, wanted = condition.op, condition.value
    if op == "exists":
        return present == bool(wanted)
    if not present:
        return op == "not_in"
    if op == "equals":
        return str(value) == str(wanted)
    if op == "in":
        return str(value) in {str(w) for w in wanted}
    if op == "not_in":
        return str(value) not in {str(w) for w in wanted}
    number, bound = _number(value), _number(wanted)
    if number is None or bound is None:
        return False
    return number >= bound if op == "at_least" else number <= bound


def holds(conn: Connection, conditions: Sequence[Condition], *, tenant: str,
          customer_id: str, attributes: Mapping[str, Any], at: datetime) -> tuple[bool, str]:
    """Whether every condition holds at `at` -> (holds, the first one that does not)."""
    for condition in conditions:
        if condition.attribute:
            if not attribute_holds(condition, attributes):
                return False, f"attribute {condition.attribute} {condition.op} {condition.value!r}"
            continue
        query = select(func.count()).select_from(events).where(
            events.c.tenant == tenant, events.c.customer_id == customer_id,
            events.c.event_type == condition.event, events.c.occurred_at <= at)
        if condition.within_days is not None:
            query = query.where(events.c.occurred_at >= at - timedelta(
                days=condition.within_days))
        count = int(conn.execute(query).scalar() or 0)
        if condition.absent and count:
            return False, f"{condition.event} happened"
        if not condition.absent and count < condition.count_at_least:
            return False, f"fewer than {condition.count_at_least} {condition.event}"
    return True, ""
