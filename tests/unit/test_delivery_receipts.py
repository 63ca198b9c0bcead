"""Receipts on a real SQLite outbox: a message sent in parts is delivered when every part
is and bounced when any part is; a receipt may come before the attempt's answer is
recorded; an attempt whose answer was lost is found by its client reference."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from sqlalchemy import select

from server.delivery.dispatcher import Dispatcher
from server.delivery.model import MAY_STILL_BOUNCE, Accepted, Receipt, State
from server.delivery.receipts import SENT_BY_RECEIPT
from server.delivery.rules import ContactRules
from server.delivery.tables import delivery_provider_ids
from tests.unit.test_delivery_dispatcher import Archive, Clock, Double, add, store  # noqa: F401

SMS = {"channel": "sms", "recipient": "+4791234567",
       "details": json.dumps({"country": "NO", "consents": ["sms"],
                              "facts": {"segments": 2}})}


def dispatcher(store, answer):  # noqa: F811
    double = Double([answer])
    return Dispatcher(store, {"double": double}, Archive(), ContactRules.from_dict(
        {"quiet_hours": {"sms": {}}}), clock=Clock(), lease=timedelta(seconds=60)), double


def run(d: Dispatcher) -> None:
    d.tick()
    for slot in d.slots.values():
        slot.pool.shutdown(wait=True)


def test_a_two_part_sms_is_delivered_when_both_parts_are(store):  # noqa: F811
    d, _ = dispatcher(store, Accepted("ok", provider_message_id="A1", parts=("A1", "A2")))
    [delivery_id] = add(store, **SMS)
    run(d)
    with store.engine.connect() as conn:
        assert sorted(conn.execute(select(delivery_provider_ids.c.provider_message_id))
                      .scalars()) == ["A1", "A2"]
    assert not d.receipt(Receipt("delivered", "stat:DELIVRD", provider="double",
                                 provider_message_id="A2"))
    assert store.row(delivery_id)["state"] == State.SENT
    assert d.receipt(Receipt("delivered", "stat:DELIVRD", provider="double",
                             provider_message_id="A1"))
    assert store.row(delivery_id)["state"] == State.DELIVERED


def test_one_undelivered_part_bounces_the_message(store):  # noqa: F811
    d, _ = dispatcher(store, Accepted("ok", provider_message_id="B1", parts=("B1", "B2")))
    [delivery_id] = add(store, **SMS)
    run(d)
    d.receipt(Receipt("delivered", "stat:DELIVRD", provider="double", provider_message_id="B1"))
    assert d.receipt(Receipt("bounced", "stat:UNDELIV err:001", provider="double",
                             provider_message_id="B2"))
    row = store.row(delivery_id)
    assert row["state"] == State.BOUNCED and "UNDELIV" in row["reason"]
    assert [r["delivery_id"] for r in store.due_fallbacks()] == [delivery_id]


def states(store, delivery_id):  # noqa: F811
    return [(e.state, e.reason) for e in store.get("t", delivery_id).events]


def test_a_receipt_before_the_answer_is_recorded_keeps_the_providers_id(store):  # noqa: F811
    # The sender never answers (it died): the receipt records `sent` for it, then the outcome.
    [delivery_id] = add(store, **{**SMS, "details": json.dumps({"facts": {"segments": 1}})})
    [row] = store.claim("double", 1, Clock()(), "me", timedelta(seconds=60))
    d, _ = dispatcher(store, Accepted("ok"))
    d.receipts.answer_wait = 0.1
    assert d.receipt(Receipt("delivered", "stat:DELIVRD", delivery_id=delivery_id,
                             provider="double", provider_message_id="C1"))
    assert not store.finish(row, "me", State.SENT, "ok", "accepted", Clock()(),
                            provider_message_id="C1")
    after = store.row(delivery_id)
    assert after["state"] == State.DELIVERED and after["provider_message_id"] == "C1"
    assert states(store, delivery_id) == [
        (State.QUEUED, ""), (State.SENDING, "attempt 1"), (State.SENT, SENT_BY_RECEIPT),
        (State.DELIVERED, "stat:DELIVRD")]


def test_a_receipt_racing_the_sends_answer_waits_for_it(store):  # noqa: F811
    # The SMSC's deliver_sm follows its submit_sm_resp at once: the receipt thread gets it
    # while the dispatcher's thread is still committing `sent`. The history keeps the
    # provider's own answer, in order.
    [delivery_id] = add(store, **{**SMS, "details": json.dumps({"facts": {"segments": 1}})})
    [row] = store.claim("double", 1, Clock()(), "me", timedelta(seconds=60))
    d, _ = dispatcher(store, Accepted("ok"))
    answer = threading.Timer(0.2, store.finish, (row, "me", State.SENT,
                                                 "ESME_ROK message_id C2", "accepted",
                                                 Clock()()), {"provider_message_id": "C2"})
    answer.start()
    assert d.receipt(Receipt("delivered", "stat:DELIVRD", provider="double",
                             provider_message_id="C2", delivery_id=delivery_id))
    answer.join()
    assert states(store, delivery_id) == [
        (State.QUEUED, ""), (State.SENDING, "attempt 1"), (State.SENT, "ESME_ROK message_id C2"),
        (State.DELIVERED, "stat:DELIVRD")]


def test_a_lost_answer_is_settled_by_its_client_reference(store):  # noqa: F811
    [delivery_id, other] = add(store, 2, **{**SMS, "details": json.dumps({})})
    d, _ = dispatcher(store, Accepted("ok"))
    message_id = store.row(delivery_id)["message_id"]
    assert d.receipt(Receipt("delivered", "stat:DELIVRD", provider="double",
                             provider_message_id="D9", recipient="+4791234567",
                             client_reference=message_id))
    row = store.row(delivery_id)
    assert row["state"] == State.DELIVERED and row["provider_message_id"] == "D9"
    assert store.row(other)["state"] == State.QUEUED  # the same number's other message
    # Another recipient with the same reference is not taken for it.
    assert not d.receipt(Receipt("delivered", "x", provider="double",
                                 provider_message_id="D10", recipient="+4700000000",
                                 client_reference=store.row(other)["message_id"]))


def test_a_provider_id_given_out_again_reaches_the_newest_delivery(store):  # noqa: F811
    """SMSC message ids are unique only for a while (a counter that wraps or restarts with
    the SMSC): a later message with an id an earlier one had is recorded, and its receipt
    goes to the newest delivery that has the id, never to the old one."""
    d, _ = dispatcher(store, Accepted("ok", provider_message_id="C1", parts=("C1", "C2")))
    [old] = add(store, **SMS)
    run(d)
    for part in ("C1", "C2"):
        d.receipt(Receipt("delivered", "stat:DELIVRD", provider="double",
                          provider_message_id=part))
    assert store.row(old)["state"] == State.DELIVERED
    d, _ = dispatcher(store, Accepted("ok", provider_message_id="C1", parts=("C1", "C2")))
    [new] = add(store, **SMS)
    run(d)
    assert store.row(new)["state"] == State.SENT
    for part in ("C1", "C2"):
        d.receipt(Receipt("bounced", "stat:UNDELIV", provider="double",
                          provider_message_id=part))
    assert store.row(new)["state"] == State.BOUNCED
    assert store.row(old)["state"] == State.DELIVERED


def test_a_failure_receipt_after_delivered_changes_nothing(store):  # noqa: F811
    # QA: an e-mail Postfix's DSN reported delivered (to the maildir) was switched back to
    # bounced by a later failure DSN for its VERP address, and a letter was printed.
    d, _ = dispatcher(store, Accepted("250 ok"))
    [delivery_id] = add(store)  # an e-mail with a print fallback
    run(d)
    assert d.receipt(Receipt("delivered", "DSN delivered: 2.0.0 delivered to maildir",
                             delivery_id=delivery_id))
    for outcome in ("bounced", "failed", "expired"):
        assert not d.receipt(Receipt(outcome, "DSN failed: 5.1.1 unknown user",
                                     delivery_id=delivery_id))
    row = store.row(delivery_id)
    assert row["state"] == State.DELIVERED and row["fallbacks"] == "print"
    assert store.due_fallbacks() == []  # no letter
    assert [s for s, _ in states(store, delivery_id)] == [
        State.QUEUED, State.SENDING, State.SENT, State.DELIVERED]


def test_a_relayed_email_may_still_bounce(store):  # noqa: F811
    # RFC 3464 `relayed`: handed to a server that sends no success DSN; a later hop can
    # still refuse it, and then its letter is due.
    d, _ = dispatcher(store, Accepted("250 ok"))
    [delivery_id] = add(store)
    run(d)
    assert d.receipt(Receipt("delivered", "DSN relayed: 2.0.0", delivery_id=delivery_id,
                             final=False))
    assert json.loads(store.row(delivery_id)["details"])[MAY_STILL_BOUNCE] is True
    assert d.receipt(Receipt("bounced", "DSN failed: 5.1.1 unknown user",
                             delivery_id=delivery_id))
    assert store.row(delivery_id)["state"] == State.BOUNCED
    assert [r["delivery_id"] for r in store.due_fallbacks()] == [delivery_id]
