"""Receipts -> state changes: a DSN, an SMPP delivery receipt or an access point's answer
that arrives after the attempt, applied to its delivery.

Finding the delivery, in order: the delivery id the receipt names (VERP, ENVID, or the
adapter that sent it in this process); the provider's id for it or for one of its parts;
else, for an attempt whose provider id was never recorded (the link or the process died
between the provider taking it and Kanal writing its answer), the recipient's waiting
deliveries by that provider whose client reference matches (`Provider.client_reference`:
SMPP `user_message_reference`, which the SMSC returns in the receipt).

What it does (RFC 3464 for DSNs, SMPP 3.4 §5.2.28 `message_state` for receipts):

    delivered  -> `delivered`; a message sent in N parts when the N-th part's receipt
                  says so (each part's outcome is kept in `delivery_provider_ids`)
    bounced    -> `bounced` (any part: the message did not arrive whole) -> fallback
    expired    -> `expired` -> fallback
    failed     -> `failed` -> fallback
    retry      -> `queued` again after a backoff (a 4.x.x DSN), or a dead letter

`delivered` is final (RFC 3464 `Action: delivered`, `stat:DELIVRD`, a mailbox's or access
point's acknowledgement): a failure receipt that comes after it changes nothing -- no
state change, no fallback, no letter -- and is logged (`receipt after delivered
ignored`; the outbox's events are state changes, so it is not one). Only a delivery a
DSN reported `relayed` or `expanded` (`Receipt.final` false: a later hop may still
bounce it) is `delivered` with `details.may_still_bounce`, and a failure then moves it.

A receipt can beat the send's own answer: an SMSC sends the `deliver_sm` right after the
`submit_sm_resp`, before the dispatcher's thread has committed `sent`. The receipt waits up
to `answer_wait` seconds for that answer, so the history reads sending -> sent (with the
provider's own words, e.g. ESME_ROK and its id) -> delivered. If the answer never comes (the
sender died or hangs), the receipt itself proves the provider took the message: `sent` is
recorded for it first, then the outcome.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from server import logs
from server.delivery import metrics
from server.delivery.model import MAY_STILL_BOUNCE, Receipt, State
from server.delivery.policy import attempts_spent, backoff
from server.delivery.providers.base import Provider
from server.delivery.store import DeliveryStore

log = logs.get_logger(__name__)

WAITING = (State.SENT, State.QUEUED, State.SENDING)
SENT_BY_RECEIPT = "accepted: its receipt came before the provider's answer was recorded"


class Receipts:
    answer_wait = 2.0  # s a receipt waits for its send's answer to be recorded (docstring)

    def __init__(self, store: DeliveryStore, providers: Mapping[str, Provider],
                 clock: Callable[[], datetime]):
        self.store = store
        self.providers = providers
        self.clock = clock

    def find(self, receipt: Receipt) -> dict[str, Any] | None:
        store = self.store
        if receipt.delivery_id:
            return store.row(receipt.delivery_id)
        if receipt.provider_message_id:
            row = store.by_provider_id(receipt.provider, receipt.provider_message_id)
            if row is not None:
                return row
        provider = self.providers.get(receipt.provider)
        if provider is None or not (receipt.client_reference and receipt.recipient):
            return None
        return next((r for r in store.waiting_for(receipt.provider, receipt.recipient)
                     if provider.client_reference(r["message_id"]) == receipt.client_reference),
                    None)

    def apply(self, receipt: Receipt) -> bool:
        """-> whether the delivery moved. Raises when the database is away (the sender
        should retry)."""
        row = self.find(receipt)
        if row is None:
            log.info("receipt for an unknown delivery", outcome=receipt.outcome,
                     provider=receipt.provider)
            return False
        if receipt.provider_message_id and not self._whole(row, receipt):
            return False
        row = self._after_the_answer(row)
        now, provider = self.clock(), row["provider"]
        # An attempt whose answer was lost learns the provider's id from its receipt.
        learnt = ({"provider_message_id": receipt.provider_message_id[:200]}
                  if receipt.provider_message_id and not row["provider_message_id"] else {})
        if row["state"] == State.SENDING and receipt.outcome != "retry":
            self.store.move(row["delivery_id"], State.SENT, SENT_BY_RECEIPT, now,
                            only_from=(State.SENDING,), lease_owner=None, lease_until=None)
        details = json.loads(row["details"] or "{}")
        if receipt.outcome == "delivered":
            if not receipt.final:
                learnt["details"] = json.dumps({**details, MAY_STILL_BOUNCE: True},
                                               sort_keys=True, default=str)
            moved = self.store.move(row["delivery_id"], State.DELIVERED, receipt.reason, now,
                                    only_from=WAITING, lease_owner=None, lease_until=None,
                                    **learnt)
            if moved:
                metrics.DELIVERED.labels(provider).inc()
            return moved
        if receipt.outcome == "retry":
            return self._retry(row, receipt, now)
        reopens = (State.DELIVERED,) if details.get(MAY_STILL_BOUNCE) else ()
        if row["state"] == State.DELIVERED and not reopens:
            log.warning("receipt after delivered ignored", delivery_id=row["delivery_id"],
                        outcome=receipt.outcome, reason=receipt.reason[:300])
            return False
        state = {"bounced": State.BOUNCED, "expired": State.EXPIRED}.get(
            receipt.outcome, State.FAILED)
        moved = self.store.move(row["delivery_id"], state, receipt.reason, now,
                                only_from=(*WAITING, *reopens),
                                lease_owner=None, lease_until=None, **learnt)
        if moved:
            metrics.failed(provider, state.value)
        return moved

    def _after_the_answer(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row once its attempt's answer is recorded, or as it is after `answer_wait`
        seconds (module docstring)."""
        deadline = time.monotonic() + self.answer_wait
        while row["state"] == State.SENDING and time.monotonic() < deadline:
            time.sleep(0.02)
            row = self.store.row(row["delivery_id"]) or row
        return row

    def _whole(self, row: dict[str, Any], receipt: Receipt) -> bool:
        """Record a part's receipt; whether the message's outcome is decided by it (a
        failure of any part is; a delivery once every part is delivered)."""
        segments = int(json.loads(row["details"] or "{}").get("facts", {}).get("segments") or 1)
        if segments <= 1:
            return True  # one part: its receipt is the message's
        delivered = self.store.part_receipt(row, receipt.provider_message_id, receipt.outcome)
        return receipt.outcome != "delivered" or delivered >= segments

    def _retry(self, row: dict[str, Any], receipt: Receipt, now: datetime) -> bool:
        provider = self.providers.get(row["provider"])
        limits = provider.limits if provider else None
        spent = attempts_spent(row)
        if limits is not None and spent >= limits.max_attempts:
            moved = self.store.move(
                row["delivery_id"], State.FAILED,
                f"dead letter after {spent} attempts: {receipt.reason}", now,
                only_from=(State.SENT,), dead_letter=True)
            if moved:
                metrics.failed(row["provider"], State.FAILED.value)
            return moved
        wait = backoff(spent, limits) if limits else timedelta(0)
        return self.store.move(row["delivery_id"], State.QUEUED, receipt.reason, now,
                               only_from=(State.SENT,), next_attempt_at=now + wait)
