"""The dispatcher's rules with a test double provider on a real SQLite outbox: retries
with backoff, dead letters, the circuit breaker, the concurrency cap and rate limit, an
in-doubt resend, reaping an attempt a dead process left open, and receipts."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update
from ulid import ULID

from archive.index import DocumentIndex
from server.delivery.dispatcher import Dispatcher
from server.delivery.model import MAY_STILL_BOUNCE, Accepted, Failed, Receipt, Retry, State
from server.delivery.providers.base import Provider, ProviderContext
from server.delivery.rules import ContactRules
from server.delivery.store import DeliveryStore
from server.delivery.tables import deliveries, delivery_inputs

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Archive:
    def get(self, key: str, expected_sha256: str = "") -> bytes:
        return b"the archived message"


class Double(Provider):
    """Answers from a script; counts calls; can block to hold a slot."""

    channel = "email"

    def __init__(self, answers, **limits):
        super().__init__("double", {"type": "double", **limits}, ProviderContext(state_dir=None))
        self.answers = list(answers)
        self.calls = []
        self.gate: threading.Event | None = None

    def send(self, message):
        self.calls.append(message)
        if self.gate is not None:
            self.gate.wait(10)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(index.engine)
    store.create_schema()
    yield store
    index.close()


def add(store: DeliveryStore, count: int = 1, **over) -> list[str]:
    ids = []
    prefix = str(ULID())[:22]  # ids in claim order, unique across calls
    with store.engine.begin() as conn:
        for n in range(count):
            delivery_id = f"{prefix}{n:04d}"
            row = {
                "delivery_id": delivery_id, "tenant": "t", "document_id": f"doc{n}",
                "customer_id": "c", "kind": "invoice", "channel": "email",
                "provider": "double", "recipient": "a@example.no", "archive_key": "k",
                "sha256": "s", "media_type": "message/rfc822", "message_id": f"<{n}@bank>",
                "provider_message_id": "", "state": "queued", "state_at": T0, "reason": "",
                "attempts": 0, "next_attempt_at": T0, "lease_owner": None, "lease_until": None,
                "created_at": T0, "expires_at": T0 + timedelta(days=3), "fallback_of": None,
                "fallbacks": "print", "dead_letter": False,
                "details": json.dumps({"country": "NO", "consents": ["email"]}), **over}
            store.insert(conn, [row], T0)
            ids.append(delivery_id)
    return ids


def dispatcher(store, provider, clock) -> Dispatcher:
    return Dispatcher(store, {"double": provider}, Archive(), ContactRules.from_dict({}),
                      clock=clock, lease=timedelta(seconds=30))


def round_(d: Dispatcher) -> int:
    started = d.tick()
    deadline = time.monotonic() + 10
    while any(s.inflight for s in d.slots.values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return started


def test_retries_with_backoff_then_a_dead_letter_that_falls_back(store) -> None:
    clock = Clock()
    provider = Double([Retry("451 4.3.0 try later", provider_down=False)], max_attempts=3,
                      backoff_seconds=10, backoff_max_seconds=100)
    d = dispatcher(store, provider, clock)
    [delivery_id] = add(store)
    for attempt in (1, 2):
        assert round_(d) == 1
        row = store.row(delivery_id)
        assert row["state"] == "queued" and row["attempts"] == attempt
        wait = row["next_attempt_at"] - clock.now
        assert timedelta(0) <= wait <= timedelta(seconds=10 * 2 ** (attempt - 1))
        assert round_(d) == 0  # not due yet
        clock.now = row["next_attempt_at"]
    assert round_(d) == 1
    row = store.row(delivery_id)
    assert row["state"] == "failed" and row["dead_letter"]
    assert row["reason"] == "dead letter after 3 attempts: 451 4.3.0 try later"
    assert [r["delivery_id"] for r in store.due_fallbacks()] == [delivery_id]
    delivery = store.get("t", delivery_id)
    assert [a.outcome for a in delivery.attempt_log] == ["retry", "retry", "retry"]
    assert [a.message_id for a in delivery.attempt_log] == ["<0@bank>"] * 3
    d.stop()


def test_the_breaker_stops_taking_work_while_the_provider_is_down(store) -> None:
    clock = Clock()
    provider = Double([Retry("connection refused")], breaker_failures=2,
                      breaker_seconds=3600, backoff_seconds=0.001, concurrency=1)
    d = dispatcher(store, provider, clock)
    add(store, 4)
    round_(d)
    round_(d)
    assert d.slots["double"].breaker.state == "open"
    clock.now += timedelta(seconds=1)
    assert round_(d) == 0 and len(provider.calls) == 2  # due, but the breaker holds them
    d.stop()


def test_concurrency_cap_and_rate_limit_bound_what_is_taken(store) -> None:
    clock = Clock()
    provider = Double([Accepted("250 ok")], concurrency=2)
    provider.gate = threading.Event()
    d = dispatcher(store, provider, clock)
    add(store, 5)
    assert d.tick() == 2  # two slots
    assert d.tick() == 0
    provider.gate.set()
    deadline = time.monotonic() + 10
    while d.slots["double"].inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert round_(d) == 2 and len(provider.calls) == 4
    d.stop()


def test_an_attempt_sent_with_nothing_waiting_wakes_no_round(store) -> None:
    """A round after every sent row would only claim nothing (a transaction each, several
    per real-time call): with the provider's due rows all taken, an attempt that ends sent
    does not wake the loop; new rows wake it themselves (`notify`)."""
    provider = Double([Accepted("250 ok")], concurrency=4)
    d = dispatcher(store, provider, Clock())
    assert d.tick() == 0  # the first round's housekeeping (it looks for fallbacks too)
    add(store, 1)
    assert round_(d) == 1 and len(provider.calls) == 1
    assert not d._wake.is_set()
    d.stop()


def test_an_attempt_wakes_a_round_for_the_rows_left_waiting_or_sent_again(store) -> None:
    provider = Double([Accepted("250 ok")], concurrency=1)
    d = dispatcher(store, provider, Clock())
    add(store, 2)
    assert round_(d) == 1 and d._wake.is_set()  # the second row waits for the free place
    d._wake.clear()
    assert round_(d) == 1 and d._wake.is_set()  # it took all it asked for: maybe more
    d._wake.clear()
    retried = Double([Retry("451 try later")], concurrency=4)
    d = dispatcher(store, retried, Clock())
    add(store, 1)
    assert round_(d) == 1 and d._wake.is_set()  # queued again
    d.stop()


def test_new_rows_with_nothing_to_fall_back_to_wake_no_fallback_round(store) -> None:
    looked: list[int] = []
    due_fallbacks = store.due_fallbacks
    store.due_fallbacks = lambda: looked.append(1) or due_fallbacks()
    d = Dispatcher(store, {"double": Double([Accepted("250 ok")])}, Archive(),
                   ContactRules.from_dict({}), clock=Clock(), lease=timedelta(seconds=30),
                   fallbacks=lambda row: None)
    d.tick()  # the first round's housekeeping looks for fallbacks (other processes' rows)
    looked.clear()
    d.notify(fallbacks=False)
    d.tick()
    assert looked == []
    d.notify()
    d.tick()
    assert looked == [1]
    d.stop()


def test_rate_limit_caps_a_round(store) -> None:
    provider = Double([Accepted("250 ok")], rate_per_second=4, concurrency=50)
    d = dispatcher(store, provider, Clock())
    add(store, 10)
    assert round_(d) == 4
    d.stop()


def test_an_in_doubt_attempt_waits_for_a_receipt_before_resending(store) -> None:
    clock = Clock()
    provider = Double([Retry("connection lost during DATA", in_doubt=True)],
                      in_doubt_seconds=600)
    d = dispatcher(store, provider, clock)
    [delivery_id] = add(store)
    round_(d)
    row = store.row(delivery_id)
    assert row["state"] == "queued" and row["next_attempt_at"] == T0 + timedelta(seconds=600)
    # the relay's success DSN arrives meanwhile: delivered, and never sent again
    assert d.receipt(Receipt("delivered", "DSN delivered: 2.0.0", delivery_id=delivery_id))
    clock.now += timedelta(seconds=601)
    assert round_(d) == 0 and store.row(delivery_id)["state"] == "delivered"
    d.stop()


def test_an_attempt_left_open_by_a_dead_process_is_reaped(store) -> None:
    clock = Clock()
    [delivery_id] = add(store)
    dead = dispatcher(store, Double([Accepted("250")]), clock)
    [claimed] = store.claim("double", 1, clock.now, dead.owner, timedelta(seconds=30))
    assert claimed["state"] == "sending"  # ... and the process dies here
    live = dispatcher(store, Double([Accepted("250 2.0.0 Ok")], in_doubt_seconds=60), clock)
    live._housekeeping(clock.now + timedelta(seconds=10))
    assert store.row(delivery_id)["state"] == "sending"  # the lease still holds
    clock.now += timedelta(seconds=31)
    live._housekeeping(clock.now)
    row = store.row(delivery_id)
    assert row["state"] == "queued" and row["next_attempt_at"] == clock.now + timedelta(
        seconds=60)
    clock.now += timedelta(seconds=60)
    round_(live)
    delivery = store.get("t", delivery_id)
    assert delivery.state == State.SENT
    assert [a.outcome for a in delivery.attempt_log] == ["interrupted", "accepted"]
    # the dead process's late finish cannot overwrite the live one's
    assert not store.finish(claimed, dead.owner, State.FAILED, "late", "failed", clock.now)
    dead.stop()
    live.stop()


def test_receipts_move_sent_rows(store) -> None:
    clock = Clock()
    d = dispatcher(store, Double([Accepted("250 ok", provider_message_id=f"m-{n}")
                                  for n in range(3)], concurrency=1), clock)
    a, b, c = add(store, 3)
    for _ in range(3):
        round_(d)
    assert store.row(a)["provider_message_id"] == "m-0"
    assert d.receipt(Receipt("bounced", "DSN failed: 5.1.1 unknown user", delivery_id=a))
    assert store.row(a)["state"] == "bounced"
    assert d.receipt(Receipt("delivered", "stat:DELIVRD", provider="double",
                             provider_message_id="m-2"))  # found by the provider's id
    assert store.row(c)["state"] == "delivered" and store.row(c)["reason"] == "stat:DELIVRD"
    assert d.receipt(Receipt("retry", "DSN failed: 4.4.1 timeout", delivery_id=b))
    assert store.row(b)["state"] == "queued"
    assert not d.receipt(Receipt("delivered", "late", delivery_id="01M8N1XH1T0X6MVPG205JXZZZZ"))
    assert not d.receipt(Receipt("delivered", "2.0.0", delivery_id=a))  # bounced stays
    d.stop()


def test_a_permanent_failure_is_not_retried(store) -> None:
    d = dispatcher(store, Double([Failed("RCPT TO: 550 5.1.1 no such user",
                                         State.BOUNCED)]), Clock())
    [delivery_id] = add(store)
    round_(d)
    row = store.row(delivery_id)
    assert row["state"] == "bounced" and row["attempts"] == 1 and not row["dead_letter"]
    d.stop()


def test_webhooks_are_signed_retried_in_order_and_given_up_after_the_attempts(tmp_path):
    from server.delivery.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSender, verify
    from tests.integration.delivery_fixtures import WebhookReceiver

    index = DocumentIndex(f"sqlite:///{tmp_path / 'hooks.db'}")
    store = DeliveryStore(index.engine, webhook_tenants=["t"])
    store.create_schema()
    receiver = WebhookReceiver(status=503)
    clock = Clock()
    try:
        [delivery_id] = add(store)  # its `queued` event gets a webhook row
        store.move(delivery_id, State.FAILED, "cancelled", T0, only_from=[State.QUEUED])
        sender = WebhookSender(store, {"t": {"webhook_url": receiver.url,
                                             "webhook_secret": "s"}}, clock=clock, attempts=3)
        assert sender.post_due() == 0
        assert len(receiver.received) == 1  # the first failed: the second waits (order)
        clock.now += timedelta(hours=1)
        receiver.status = 200
        assert sender.post_due() == 2
        states = [json.loads(body)["state"] for _, body in receiver.received]
        assert states == ["queued", "queued", "failed"]
        for headers, body in receiver.received[1:]:  # each post signed afresh
            assert verify("s", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                          now=clock.now.timestamp())
        assert sender.post_due() == 0  # nothing twice
        # A receiver that never answers 2xx: dropped after `attempts`.
        receiver.status = 500
        store.move(delivery_id, State.QUEUED, "retried", T0, only_from=[State.FAILED])
        for _ in range(5):
            clock.now += timedelta(hours=1)
            sender.post_due()
        assert len(receiver.received) == 3 + 3
        assert store.webhooks_due(clock.now + timedelta(days=1)) == []
    finally:
        receiver.close()
        index.close()


def test_the_input_of_a_delivered_email_with_a_fallback_is_kept_while_it_may_bounce(store):
    # A success DSN may say only "relayed": the next server can still bounce the e-mail,
    # and its letter is printed from the sealed input (purged at once, the bounce found
    # nothing to print from: "no fallback: the compose input was purged"). One a DSN
    # said `delivered` has ended: no bounce can reopen it (receipts).
    kept, without_fallback, final = add(store, 3)
    with store.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.delivery_id == without_fallback)
                     .values(fallbacks=""))
        conn.execute(update(deliveries).values(state="delivered", state_at=T0))
        conn.execute(update(deliveries).where(deliveries.c.delivery_id.in_(
            [kept, without_fallback])).values(details=json.dumps({MAY_STILL_BOUNCE: True})))
        conn.execute(insert(delivery_inputs), [
            {"tenant": "t", "document_id": doc, "sealed": b"x", "created_at": T0,
             "purge_at": T0 + timedelta(days=30)} for doc in ("doc0", "doc1", "doc2")])

    def inputs():
        with store.engine.begin() as conn:
            return sorted(conn.execute(select(delivery_inputs.c.document_id)).scalars())

    grace = timedelta(days=7)
    assert store.purge_inputs(T0 + timedelta(hours=1), grace) == 2
    assert inputs() == ["doc0"]  # relayed, with a fallback; the others have none to print
    assert store.purge_inputs(T0 + timedelta(days=8), grace) == 1
    assert inputs() == []


def test_a_cap_counts_other_documents_not_the_other_channels_of_this_one(store, tmp_path):
    """A marketing letter planned for e-mail and paper is one message: its e-mail, sent
    first, must not count against the marketing cap of 1 and suppress its own letter (the
    print delivery is what puts the piece in the print queue); a second letter is capped."""
    from server.delivery.providers.printing import PrintQueueProvider
    from server.printing.queue import PrintQueue, PrintSettings, print_pieces

    clock = Clock()
    queue = PrintQueue(DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}"),
                       PrintSettings.from_dict({}))
    queue.engine = store.engine
    queue.create_schema()
    printer = PrintQueueProvider("print", {"type": "print"}, ProviderContext(
        state_dir=tmp_path, services={"print_queue": queue}))
    d = Dispatcher(store, {"double": Double([Accepted("250 ok")]), "print": printer},
                   Archive(), ContactRules.from_dict({"caps": {"marketing": {
                       "max": 1, "days": 14}}}), clock=clock, lease=timedelta(seconds=30))
    details = json.dumps({"country": "NO", "consents": ["marketing"], "marketing": True,
                          "print": {"pages": 1, "envelope": "C5", "country": "NO",
                                    "postal_code": "0150"}})
    paper = {"channel": "print", "provider": "print", "media_type": "application/pdf",
             "fallbacks": "", "details": details, "kind": "letter"}
    [email] = add(store, document_id="letter1", kind="letter", details=details)
    round_(d)
    assert store.row(email)["state"] == "sent"
    [letter] = add(store, document_id="letter1", **paper)
    round_(d)
    assert store.row(letter)["state"] == "sent", store.row(letter)["reason"]
    [second] = add(store, document_id="letter2", **paper)
    round_(d)
    assert store.row(second)["state"] == "suppressed"
    assert "frequency cap marketing: 1 of 1" in store.row(second)["reason"]
    with store.engine.begin() as conn:
        assert list(conn.execute(select(print_pieces.c.document_id)).scalars()) == ["letter1"]
    d.stop()


def test_a_restart_with_new_quiet_hours_applies_them_to_held_rows(store):
    # QA: SMS held "until 08:00 Europe/Oslo" stayed held after the server restarted with
    # quiet hours 04:00-04:01. T0 is 13:00 in Oslo.
    sms = {"channel": "sms", "recipient": "+4791234567",
           "details": json.dumps({"country": "NO", "consents": ["sms"]})}
    clock = Clock()
    old_rules = ContactRules.from_dict({"quiet_hours": {"sms": {"start": "12:00",
                                                                 "end": "20:00"}}})
    provider = Double([Accepted("ok")])
    first = Dispatcher(store, {"double": provider}, Archive(), old_rules, clock=clock,
                       lease=timedelta(seconds=30))
    held, kept = add(store, 2, **sms)
    assert round_(first) == 2 and provider.calls == []
    for delivery_id in (held, kept):
        row = store.row(delivery_id)
        assert row["state"] == State.QUEUED and row["reason"].startswith("quiet hours for sms")
        assert row["next_attempt_at"] == datetime(2026, 11, 30, 19, 0, tzinfo=UTC)
    events = len(store.get("t", kept).events)

    # The same rules again: nothing moves, no events.
    assert Dispatcher(store, {"double": provider}, Archive(), old_rules, clock=clock,
                      lease=timedelta(seconds=30)).recheck_held(clock()) == 0
    assert len(store.get("t", kept).events) == events
    # A window that opens later than the old one: held as it is (its time re-decides).
    later = ContactRules.from_dict({"quiet_hours": {"sms": {"start": "12:00",
                                                             "end": "22:00"}}})
    assert Dispatcher(store, {"double": provider}, Archive(), later, clock=clock,
                      lease=timedelta(seconds=30)).recheck_held(clock()) == 0

    # New rules (quiet 13:00-13:30 Oslo): held until 13:30, no longer 20:00.
    clock.now = T0 + timedelta(minutes=10)
    new_rules = ContactRules.from_dict({"quiet_hours": {"sms": {"start": "13:00",
                                                                 "end": "13:30"}}})
    restarted = Dispatcher(store, {"double": provider}, Archive(), new_rules, clock=clock,
                           lease=timedelta(seconds=30))
    assert restarted.recheck_held(clock()) == 2
    assert round_(restarted) == 2 and provider.calls == []  # decided again: held anew
    row = store.row(held)
    assert row["next_attempt_at"] == datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
    assert row["reason"] == "quiet hours for sms in NO until 13:30 Europe/Oslo"
    # A server started with no quiet hours at all: sent at once, not at 13:30.
    quiet_free = Dispatcher(store, {"double": provider}, Archive(),
                            ContactRules.from_dict({"quiet_hours": {"sms": {}}}),
                            clock=clock, lease=timedelta(seconds=30), poll_seconds=0.05)
    quiet_free.start()
    try:
        deadline = time.monotonic() + 10
        while len(provider.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        quiet_free.stop()
    assert len(provider.calls) == 2
    assert {store.row(d)["state"] for d in (held, kept)} == {State.SENT}
