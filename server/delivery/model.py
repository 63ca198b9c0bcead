"""The delivery stage's values: states, one delivery as a provider sees it, and what a
provider answers. Frozen dataclasses; no I/O.

States (the outbox pattern's life of one row)::

    queued ──> sending ──> sent ──> delivered
      ^           │          └───> bounced ─┐      (a receipt, e.g. an RFC 3464 DSN)
      └─ retry ───┤                         ├──> fell_back (the next channel took over)
                  ├──> failed (permanent, or dead letter after max attempts) ─┤
    queued ──> expired (not sent in time) ──────────────────────────────────┘
    queued ──> suppressed (contact rules: consent, opt-out, frequency cap)

`sent` means the provider accepted the message (SMTP 250 after DATA, an SMPP message id,
a mailbox's 201); `delivered` means a receipt said it reached the recipient (a DSN with
`Action: delivered`, `stat:DELIVRD`, a mailbox or access point acknowledgement, a print
shop's acknowledgement of the print batch).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class State(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    FAILED = "failed"
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"
    FELL_BACK = "fell_back"


# ListDeliveries: a page holds 1..MAX_PAGE_SIZE deliveries (page_size 0: DEFAULT_PAGE_SIZE).
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000

# Failed for good: the next channel of the plan is due (when there is one).
FAILED_FOR_GOOD = frozenset({State.BOUNCED, State.FAILED, State.EXPIRED})
# A row in one of these states with fallbacks left hands over to the next channel (a
# suppression keeps its fallbacks only when the customer opted out of that one channel).
HANDS_OVER = FAILED_FOR_GOOD | {State.SUPPRESSED}
# Nothing more will happen to the row by itself (`sent` may still get a receipt).
FINAL = frozenset({State.DELIVERED, State.BOUNCED, State.FAILED, State.EXPIRED,
                   State.SUPPRESSED, State.FELL_BACK})
# The `details` key of a `delivered` row that a later failure receipt may still move: a
# DSN said only `relayed` or `expanded` (server.delivery.receipts).
MAY_STILL_BOUNCE = "may_still_bounce"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One attempt to send, as a provider gets it.

    `content` is the archived output's bytes (sha256-verified): the `.eml` for e-mail, the
    SMS text, the PDF, the UBL. `message_id` is the idempotency key decided when the row was
    written and recorded before the first attempt: the SMTP `Message-ID`, and the key a
    provider with idempotency support (a mailbox API's `Idempotency-Key`, a Peppol AP's
    message id) must be given, so that a resend after a crash is recognised as the same.
    """

    delivery_id: str
    tenant: str
    document_id: str
    customer_id: str
    channel: str
    recipient: str  # e-mail address, E.164 number, Peppol participant id, mailbox id
    content: bytes
    media_type: str
    message_id: str
    attempt: int  # 1 for the first
    facts: Mapping[str, Any] = field(default_factory=dict)  # renderer facts (sms segments...)
    details: Mapping[str, Any] = field(default_factory=dict)  # kind, country, print facts...


# --- what a provider answers ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message (-> `sent`, or `delivered` when `delivered`)."""

    reason: str  # the provider's words, e.g. "250 2.0.0 Ok: queued as 4F1A2"
    provider_message_id: str = ""  # the provider's id, to match receipts against
    delivered: bool = False  # a synchronous final receipt (a mailbox's 201 Created)
    # A message sent in parts (a long SMS: one submit_sm per segment) has an id per part,
    # each with its own receipt; all are recorded, and it is delivered when every part is.
    parts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure (4xx, a timeout, throttling): try again after a backoff.

    `in_doubt`: the provider may have accepted it (the connection dropped after the data
    was sent); the dispatcher then waits the provider's `in_doubt_wait` for a receipt
    before sending again. `after` overrides the backoff (a provider's Retry-After)."""

    reason: str
    in_doubt: bool = False
    after: timedelta | None = None
    provider_down: bool = True  # counts towards the circuit breaker


@dataclass(frozen=True, slots=True)
class Failed:
    """A permanent failure (5xx, recipient unknown, not registered): no retry.
    `state` is `bounced` for a recipient the provider refused, else `failed`."""

    reason: str
    state: State = State.FAILED


Result = Accepted | Retry | Failed


@dataclass(frozen=True, slots=True)
class Receipt:
    """An asynchronous report about a sent message (DSN, SMPP deliver_sm, a callback).

    Find the delivery by `delivery_id` (VERP, ENVID), by (`provider`,
    `provider_message_id`) or, for an attempt whose provider id was never recorded (the
    link or the process died after the provider took it), by (`provider`, `recipient`,
    `client_reference`): the reference Kanal gave the provider (`Provider.client_reference`,
    e.g. SMPP `user_message_reference`, which a delivery receipt carries back). `outcome`:
    `delivered`, `bounced`, `expired`, `failed`, or `retry` (a 4.x.x DSN: the relay gave up
    for now; Kanal sends again)."""

    outcome: str
    reason: str  # the provider's own words (Status + Diagnostic-Code, `stat:` + `err:`)
    delivery_id: str = ""
    provider: str = ""
    provider_message_id: str = ""
    recipient: str = ""
    client_reference: str = ""
    # `delivered` that ends the road: no later failure receipt reopens it. False for a DSN
    # whose Action is `relayed` or `expanded` (RFC 3464 §2.3.3: handed on to where no
    # success DSN comes from; a later hop may still bounce it).
    final: bool = True


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    event_id: int
    delivery_id: str
    tenant: str
    document_id: str
    channel: str
    state: State
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str  # accepted | retry | failed | interrupted | (empty while running)
    reason: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the outbox, as operators and the API see it."""

    delivery_id: str
    tenant: str
    document_id: str
    customer_id: str
    channel: str
    provider: str
    recipient: str
    state: State
    state_at: datetime
    reason: str
    attempts: int
    next_attempt_at: datetime | None
    message_id: str
    provider_message_id: str
    created_at: datetime
    fallback_of: str | None
    fallbacks: tuple[str, ...]  # channels still to try if this one fails for good
    dead_letter: bool
    kind: str
    archive_key: str
    events: tuple[DeliveryEvent, ...] = ()
    attempt_log: tuple[Attempt, ...] = ()
