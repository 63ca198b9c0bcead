"""One customer's timeline for customer service: everything Kanal knows happened, newest first.

Merged from the tables that own each fact (read only): events (`kanal_events`; a
`survey_response` event reads as a survey response), communications (`journey_sends`, with
the archived document's id), delivery state changes (`delivery_events` of the customer's
`deliveries`), suppressions (`contact_suppressions`), and journeys (`journey_instances`:
running at a step, or ended and why, e.g. "first_deposit came"). Paging is by position in the
merged list; a page token is that position.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from server.delivery.tables import deliveries, delivery_events
from server.errors import InvalidInput
from server.events.tables import events
from server.journeys.tables import instances, sends, suppressions

SURVEY_RESPONSE_TYPES = frozenset({"survey_response"})
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class Activity:
    at: datetime
    kind: str  # event | communication | delivery | suppression | survey_response | journey
    summary: str
    event_id: str = ""
    event_type: str = ""
    journey: str = ""
    step: str = ""
    document_id: str = ""
    channel: str = ""
    state: str = ""
    reason: str = ""
    details_json: str = ""


def _events(conn, tenant: str, customer: str, limit: int) -> Iterator[Activity]:
    for r in conn.execute(select(events).where(
            events.c.tenant == tenant, events.c.customer_id == customer)
            .order_by(events.c.occurred_at.desc()).limit(limit)).mappings():
        kind = "survey_response" if r["event_type"] in SURVEY_RESPONSE_TYPES else "event"
        yield Activity(r["occurred_at"], kind, f"{r['event_type']} ({r['event_id']})",
                       event_id=r["event_id"], event_type=r["event_type"],
                       details_json=r["data"])


def _sends(conn, tenant: str, customer: str, limit: int) -> Iterator[Activity]:
    for r in conn.execute(select(sends).where(
            sends.c.tenant == tenant, sends.c.customer_id == customer)
            .order_by(sends.c.planned_at.desc()).limit(limit)).mappings():
        ref = f"{r['journey']}@{r['version']}"
        yield Activity(r["planned_at"], "communication",
                       f"{r['category']} {r['layout_id']} from journey {ref} step {r['step']}",
                       journey=ref, step=r["step"], document_id=r["document_id"] or "",
                       state=r["state"], channel=r["channels"])


def _deliveries(conn, tenant: str, customer: str, limit: int) -> Iterator[Activity]:
    query = (select(delivery_events, deliveries.c.customer_id)
             .join(deliveries, deliveries.c.delivery_id == delivery_events.c.delivery_id)
             .where(deliveries.c.tenant == tenant, deliveries.c.customer_id == customer)
             .order_by(delivery_events.c.at.desc()).limit(limit))
    for r in conn.execute(query).mappings():
        yield Activity(r["at"], "delivery",
                       f"{r['channel']} {r['state']}" + (f": {r['reason']}" if r["reason"]
                                                         else ""),
                       document_id=r["document_id"], channel=r["channel"], state=r["state"],
                       reason=r["reason"])


def _suppressions(conn, tenant: str, customer: str, limit: int) -> Iterator[Activity]:
    for r in conn.execute(select(suppressions).where(
            suppressions.c.tenant == tenant, suppressions.c.customer_id == customer)
            .order_by(suppressions.c.at.desc()).limit(limit)).mappings():
        journey, step = "", ""
        if r["source"].startswith("journey:"):
            _, journey, step = (r["source"].split(":", 2) + ["", ""])[:3]
        yield Activity(r["at"], "suppression", f"{r['category']} suppressed: {r['reason']}",
                       journey=journey, step=step, reason=r["reason"],
                       details_json=json.dumps({"source": r["source"],
                                                "category": r["category"]}))


def _journeys(conn, tenant: str, customer: str, limit: int) -> Iterator[Activity]:
    """A journey ended (why: finished, or the event that ended it) or still running."""
    for r in conn.execute(select(instances).where(
            instances.c.tenant == tenant, instances.c.customer_id == customer)
            .order_by(instances.c.started_at.desc()).limit(limit)).mappings():
        ref = f"{r['journey']}@{r['version']}"
        at = r["ended_at"] or r["started_at"]
        summary = (f"journey {ref} {r['state']}: {r['reason']}" if r["ended_at"]
                   else f"journey {ref} running, at step {r['step']}")
        yield Activity(at, "journey", summary, event_id=r["trigger_event_id"], journey=ref,
                       step=r["step"], state=r["state"], reason=r["reason"])


def customer_activity(engine: Engine, tenant: str, customer_id: str, page_size: int = 100,
                      page_token: str = "") -> tuple[list[Activity], str]:
    """-> (up to page_size activities, newest first; the next page's token or "")."""
    if not customer_id:
        raise InvalidInput.field("customer_id", "is required")
    page_size = page_size or 100
    if not 1 <= page_size <= MAX_PAGE:
        raise InvalidInput.field("page_size", f"must be within 1..{MAX_PAGE}")
    try:
        offset = int(page_token) if page_token else 0
        if offset < 0:
            raise ValueError
    except ValueError:
        raise InvalidInput.field("page_token", "not a token this call returned") from None
    need = offset + page_size + 1
    with engine.begin() as conn:
        merged = [a for source in (_events, _sends, _deliveries, _suppressions, _journeys)
                  for a in source(conn, tenant, customer_id, need)]
    merged.sort(key=lambda a: a.at, reverse=True)
    page = merged[offset:offset + page_size]
    more = len(merged) > offset + page_size
    return page, str(offset + page_size) if more else ""
