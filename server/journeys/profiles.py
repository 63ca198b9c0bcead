"""A customer's profile: the attributes events told about them, merged (newest wins per key).

Journeys' attribute conditions and the contact policy read it (segment, country, time_zone,
consents, opt_outs, recipient...). Kept in `journey_customers`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection, Engine

from server.delivery.rules import CurrentContacts
from server.jobs.model import RecordOptions
from server.journeys.tables import customers


def load_profile(conn: Connection, tenant: str, customer_id: str) -> dict[str, Any]:
    text = conn.execute(select(customers.c.attributes).where(
        customers.c.tenant == tenant, customers.c.customer_id == customer_id)).scalar()
    return json.loads(text) if text else {}


# read before every delivery attempt; built once, as server.delivery.contacts does
_ATTRIBUTES = select(customers.c.attributes).where(
    customers.c.tenant == bindparam("w_tenant"),
    customers.c.customer_id == bindparam("w_customer_id"))


def current_contacts(engine: Engine, tenant: str, customer_id: str) -> CurrentContacts | None:
    """The customer's profile's `consents` and `opt_outs` now, for the delivery stage's
    contact rules (server.delivery.rules.CurrentContacts): a customer who opts out or
    withdraws a consent after a journey planned a send (its document held by quiet hours, or
    waiting out a provider's outage) is not sent it. None: no profile."""
    with engine.begin() as conn:
        text = conn.execute(_ATTRIBUTES, {"w_tenant": tenant,
                                          "w_customer_id": customer_id}).scalar()
    if not text:
        return None
    attributes = json.loads(text)
    consents = attributes.get("consents")
    return CurrentContacts(
        consents=frozenset(words(attributes, "consents")) if isinstance(consents, list) else None,
        opt_outs=frozenset(words(attributes, "opt_outs")))


def merge_profile(conn: Connection, tenant: str, customer_id: str,
                  attributes: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Merge `attributes` (top-level keys replace) into the stored profile -> the result."""
    current = load_profile(conn, tenant, customer_id)
    merged = {**current, **attributes}
    text = json.dumps(merged, sort_keys=True, ensure_ascii=False, default=str)
    if not current and not conn.execute(select(customers.c.tenant).where(
            customers.c.tenant == tenant, customers.c.customer_id == customer_id)).first():
        conn.execute(insert(customers).values(tenant=tenant, customer_id=customer_id,
                                              attributes=text, updated_at=now))
    elif merged != current:
        conn.execute(update(customers).where(
            customers.c.tenant == tenant, customers.c.customer_id == customer_id).values(
            attributes=text, updated_at=now))
    return merged


def words(attributes: Mapping[str, Any], key: str) -> set[str]:
    """A list attribute (`consents`, `opt_outs`) as a set of strings; anything else: empty."""
    value = attributes.get(key, [])
    return {str(v) for v in value} if isinstance(value, list) else set()


def send_options(attributes: Mapping[str, Any], *, fallbacks: bool) -> RecordOptions:
    """What a journey's send adds to its compose request: the profile's consents and
    opt-outs (the ones the contact policy just read), so the delivery stage's contact rules
    judge the document by them too (the layout's data rarely carries them: a step's
    `customer = "$customer.recipient"` is the address part of the profile)."""
    return RecordOptions(consents=tuple(sorted(words(attributes, "consents"))),
                         opt_outs=tuple(sorted(words(attributes, "opt_outs"))),
                         fallbacks=fallbacks)


def other_customer(data: Mapping[str, Any], customer_id: str, source: Any) -> str | None:
    """Why a send's resolved `data` must not become a document: its `customer.customer_id`
    (every builder's recipient, server.compose.builders.customer: the document's archive
    folder, portal listing and delivery) is present and is not `customer_id`, the customer
    the journey runs for. None: it names them, or names no one (the layout's schema then
    refuses the document). `source`: the step's template for `customer`, or for its
    `customer_id` (what to fix: "$customer.recipient"). The reason does not repeat the other
    customer's id: it is kept in this customer's activity."""
    document_customer = data.get("customer")
    if not isinstance(document_customer, Mapping) or "customer_id" not in document_customer:
        return None
    if document_customer["customer_id"] == customer_id:
        return None
    if isinstance(source, Mapping):
        source = source.get("customer_id")
    origin = f" (from {source})" if isinstance(source, str) else ""
    return (f"the document's $.customer.customer_id{origin} names another customer than the "
            "journey's: it would be archived, listed and delivered under that customer")
