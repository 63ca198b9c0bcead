"""A composed, archived document -> its outbox rows (one per channel of its plan).

Pure: the rows are plain dicts for `DeliveryStore.insert`, written in the index's
transaction with the document (DocumentIndex.add(also=...)). Per row:

- the provider that sends the channel for this tenant and recipient, and the recipient's
  address (e-mail, mobile number, Peppol id, `<service>:<id>` of a mailbox; print: the
  print queue), both from `routing.Router`; an e-invoice no provider carries (Factur-X,
  Finvoice) is archived and gets no row (`document_rows`). A planned channel nobody
  sends is recorded `failed` at once with that reason and does *not* fall back: a
  configuration gap must not turn every e-mail into paper (a *fallback* channel nobody
  sends is skipped before it is rendered, and the chain goes on:
  server.delivery.fallback). An operator retries it once a provider is configured
  (`kanal deliveries retry`), and its fallbacks come back then.
  A mailbox recipient no configured mailbox service serves is `failed` too, and its
  fallbacks go on at once;
- the idempotency key decided now, before any attempt: the e-mail's own `Message-ID`
  header (the archived bytes carry it), for other channels the delivery id;
- the primary channel (the plan's first) carries the plan's fallbacks, in order;
- details the send-time rules need: kind, marketing, legally required, consents (the
  data's and the sender's: a journey's customer profile), the sender's opt-outs, country,
  and for print the piece's facts (envelope, inserts, postal code, pages).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from typing import Any

from ulid import ULID

from archive.records import OutputRecord
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition, Output
from server.delivery.model import HANDS_OVER, State
from server.delivery.payment import mailbox_details
from server.delivery.routing import Route
from server.delivery.rules import country_of
from server.printing.sheets import sheet_rules

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def message_id_for(channel: str, content: bytes, delivery_id: str) -> str:
    if channel == Channel.EMAIL:
        # the header section alone: the parser would otherwise read the whole message,
        # base64 PDF attachment included, line by line (RFC 5322: headers end at the first
        # empty line)
        head = _HEADER_END.split(content, maxsplit=1)[0]
        header = BytesHeaderParser().parsebytes(head).get("Message-ID")
        if header:
            return str(header).strip()
    return delivery_id


def details_for(composition: Composition, layout: Layout, output: OutputRecord
                ) -> dict[str, Any]:
    recipient = composition.recipient
    address = recipient.address
    details: dict[str, Any] = {
        "marketing": bool(layout.section("email").get("marketing", False)),
        "legally_required": bool(layout.section("delivery").get("legally_required", False)),
        "consents": list(recipient.consents),
        "country": country_of(address.country if address else "", recipient.mobile or ""),
        "facts": dict(output.facts),
    }
    if recipient.opt_outs:  # the sender's (a journey's profile), beside delivery_optouts
        details["opt_outs"] = list(recipient.opt_outs)
    if output.channel == Channel.MAILBOX:
        details["mailbox"] = mailbox_details(composition, layout, output.pages or 1)
    if output.channel == Channel.PRINT:
        details["print"] = {
            "pages": output.pages or 1, "envelope": composition.print_options.envelope,
            "profile": composition.print_options.profile,
            "sides": sheet_rules(composition.print_options).to_text(),
            "inserts": list(composition.inserts),
            "insert_rules": [list(pair) for pair in composition.insert_rules],
            "country": address.country if address else "",
            "postal_code": address.postal_code if address else "",
        }
    return details


def delivery_row(composition: Composition, layout: Layout, output: OutputRecord,
                 content: bytes, route: Route, now: datetime, expires: timedelta,
                 *, fallbacks: Sequence[str] = (), fallback_of: str | None = None,
                 new_id: Callable[[], str] = lambda: str(ULID())) -> dict[str, Any]:
    delivery_id = new_id()
    state, reason = State.QUEUED, "queued"
    if fallback_of:
        reason = f"fallback of delivery {fallback_of}"
    details = details_for(composition, layout, output)
    details["plan_fallbacks"] = list(fallbacks)
    provider = route.provider
    if not provider:
        state, reason = State.FAILED, route.reason
        if not route.falls_back:
            fallbacks = ()
    return {
        "delivery_id": delivery_id, "tenant": composition.tenant,
        "document_id": composition.document_id,
        "customer_id": composition.recipient.customer_id, "kind": composition.kind.value,
        "channel": output.channel, "provider": provider or "",
        "recipient": route.address,
        "archive_key": output.key, "sha256": output.sha256, "media_type": output.media_type,
        "message_id": message_id_for(output.channel, content, delivery_id),
        "provider_message_id": "", "state": state.value, "state_at": now, "reason": reason,
        "attempts": 0, "next_attempt_at": now, "lease_owner": None, "lease_until": None,
        "created_at": now, "expires_at": now + expires, "fallback_of": fallback_of,
        "fallbacks": ",".join(fallbacks), "dead_letter": False,
        "details": json.dumps(details, sort_keys=True, default=str),
    }


def document_rows(composition: Composition, layout: Layout, records: Sequence[OutputRecord],
                  outputs: Sequence[Output], routes: Mapping[str, Route],
                  now: datetime, expires: Mapping[str, timedelta]) -> list[dict[str, Any]]:
    """One row per planned channel that has an archived output and can be sent, in plan
    order. An output nobody can send (`Route.archived_only`: a Factur-X or Finvoice
    e-invoice) gets none, unless it is the primary channel and the plan has fallbacks:
    then its row is born `failed` and they take over (server.delivery.routing)."""
    plan = composition.channel_plan
    by_channel = {r.channel: r for r in records}
    contents = {o.channel.value: o.content for o in outputs}
    rows = []
    for n, channel in enumerate(plan.channels):
        record = by_channel.get(channel.value)
        if record is None:
            continue
        route = routes[channel.value]
        if route.archived_only and not (n == 0 and plan.fallbacks):
            continue
        rows.append(delivery_row(
            composition, layout, record, contents.get(channel.value, b""), route, now,
            expires.get(route.provider or "", timedelta(hours=72)),
            fallbacks=[c.value for c in plan.fallbacks] if n == 0 else ()))
    return rows


@dataclass(frozen=True, slots=True)
class OutboxWrite:
    """One document's outbox: its delivery rows (server.delivery.outbox.document_rows),
    when they were made, and its sealed compose input (tenant, document id, sealed bytes,
    purge time) or None."""

    rows: tuple[dict[str, Any], ...]
    now: datetime
    sealed: tuple[str, str, bytes, datetime] | None = None


_HANDS_OVER = frozenset(s.value for s in HANDS_OVER)


def hands_over(writes: Sequence[OutboxWrite]) -> bool:
    """Whether a row of these outboxes is born handing over to a fallback (its channel has
    no provider and it carries the plan's fallbacks), which the dispatcher's fallback step
    must look for after the commit; rows born queued wait for their own attempts."""
    return any(row["state"] in _HANDS_OVER and row["fallbacks"]
               for write in writes for row in write.rows)


def first_event(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A new delivery's first `delivery_events` row: its state as written."""
    return {"delivery_id": row["delivery_id"], "tenant": row["tenant"],
            "document_id": row["document_id"], "channel": row["channel"],
            "state": row["state"], "at": now, "reason": row["reason"][:2000]}
