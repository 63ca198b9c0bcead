"""What an event may be at intake (server.events.types): its data's `format`s are checked
(a date that does not exist is refused, patterns read as ECMA-262), and the attributes the
contact policy reads have their shape (time zone, country, consents, opt-outs). Each refusal
is INVALID_ARGUMENT naming the JSON path and why; an event stored before these checks still
reads back and replays. QA L6.

One request cannot give one idempotency key to two different events
(server.events.publish): INVALID_ARGUMENT on the second's `events[n].idempotency_key`,
naming the first, and nothing of the request is stored. It was ALREADY_EXISTS naming, as
the key's owner, an event id that was rolled back with the request. QA L5.

An `occurred_at` at or before 1970-01-01T00:00:00Z (a protobuf Timestamp of 0 seconds is
the epoch, not "unset") is INVALID_ARGUMENT on `occurred_at`; no time is now. QA T5.

The idempotency hash is of what the caller sent: a retry without `occurred_at` is the first
event, though the server's now moved; with neither a key nor a time, two identical events
are two events. QA T1.

A stream (PublishEventStream) stores the events before one it cannot read or accept, and
names that one `events[n].…` (n: its index in the stream). SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, func, select, update

from kanal.v1 import events_pb2
from server.api.events import EventsServicer
from server.auth import Caller, set_caller
from server.errors import Conflict, InvalidInput, PermissionDenied
from server.events.publish import EventInput, EventService
from server.events.tables import events as events_table
from server.events.types import EventTypes, parse_attributes

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TYPES = EventTypes()
PIN = json.dumps({"card_id": "K", "via": "app"})
MISSED = {"invoice_id": "I1", "amount": "100.00", "currency": "NOK", "due_date": "2026-02-28"}


@pytest.fixture
def service(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    service = EventService(engine, TYPES, clock=lambda: T0)
    service.create_schema()
    return service


def stored(service: EventService) -> int:
    with service.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(events_table)).scalar()


def violations(raised: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in raised.value.violations]


# --- data formats -------------------------------------------------------------------------

@pytest.mark.parametrize("due, why", [
    ("2026-02-30", '"2026-02-30" is not a date (YYYY-MM-DD, RFC 3339 full-date): day is out '
                   'of range for month'),
    ("2026-13-01", '"2026-13-01" is not a date (YYYY-MM-DD, RFC 3339 full-date): month must '
                   'be in 1..12'),
])
def test_a_date_that_does_not_exist_is_refused(service, due, why):
    with pytest.raises(InvalidInput) as raised:
        service.publish([EventInput("t", "C1", "payment_missed",
                                    json.dumps({**MISSED, "due_date": due}))])
    assert violations(raised) == [("data.$.due_date", why)]
    assert stored(service) == 0


def test_a_pattern_is_read_as_ecma_262():
    # `\d` and `$` in a schema's pattern: [0-9] and the end of the text (JSON Schema 6.3.3),
    # not Python's Unicode digits and "before a trailing newline"
    for due in ("2026-02-28\n", "٢٠٢٦-02-28"):
        with pytest.raises(InvalidInput) as raised:
            TYPES.parse("payment_missed", json.dumps({**MISSED, "due_date": due}))
        assert {f for f, _ in violations(raised)} == {"data.$.due_date"}  # pattern, format


def test_a_date_time_is_checked_as_rfc_3339():
    follow_up = {"follow_up_id": "F1", "score": 3, "deadline": "2026-03-04T09:00:00Z"}
    assert TYPES.parse("follow_up_required", json.dumps(follow_up))["score"] == 3
    for bad in ("2026-02-30T09:00:00Z", "2026-03-04 09:00", "2026-03-04T25:00:00+01:00",
                "tomorrow"):
        with pytest.raises(InvalidInput) as raised:
            TYPES.parse("follow_up_required", json.dumps({**follow_up, "deadline": bad}))
        [(field, why)] = violations(raised)
        assert field == "data.$.deadline" and "is not a date-time (RFC 3339" in why, why


# --- attributes ---------------------------------------------------------------------------

@pytest.mark.parametrize("attributes, field, why", [
    ({"time_zone": "Mars/Olympus"}, "attributes.$.time_zone",
     '"Mars/Olympus" is not a time zone (an IANA tz database name, e.g. Europe/Oslo)'),
    ({"time_zone": "../../etc/passwd"}, "attributes.$.time_zone",
     '"../../etc/passwd" is not a time zone (an IANA tz database name, e.g. Europe/Oslo)'),
    ({"time_zone": 1}, "attributes.$.time_zone", '1 is not of type "string"'),
    ({"consents": "email"}, "attributes.$.consents", '"email" is not of type "array"'),
    ({"consents": ["marketing", 7]}, "attributes.$.consents[1]", '7 is not of type "string"'),
    ({"opt_outs": "survey"}, "attributes.$.opt_outs", '"survey" is not of type "array"'),
    ({"country": "Norway"}, "attributes.$.country",
     '"Norway" does not match "^[A-Z]{2}$"'),
    # was: accepted, and the journey's send failed when due (14 days later), in a job report
    ({"recipient": 5}, "attributes.$.recipient", '5 is not of type "object"'),
    ({"recipient": "Kari Nordmann"}, "attributes.$.recipient",
     '"Kari Nordmann" is not of type "object"'),
])
def test_attributes_the_contact_policy_reads_are_checked(attributes, field, why):
    # was: accepted; the policy then fell back to the country's zone, or read a string of
    # consents as no consent at all (marketing silently suppressed)
    with pytest.raises(InvalidInput) as raised:
        parse_attributes(json.dumps(attributes), "events[0].")
    assert violations(raised) == [(f"events[0].{field}", why)]


@pytest.mark.parametrize("text, field, message, why", [
    ('{"segment":', "attributes", "invalid events[1].attributes",
     "malformed JSON at line 1 column 12: Expecting value"),
    ('{"a": 1, "a": 2}', "attributes", "invalid events[1].attributes",
     'malformed JSON: duplicate key "a"'),
    ("\ufeff{}", "attributes", "invalid events[1].attributes",
     "the text starts with a byte-order mark (U+FEFF); send UTF-8 without a BOM "
     "(RFC 8259 section 8.1)"),
    ('["retail"]', "attributes.$", "events[1].attributes is not a JSON object",
     "must be a JSON object, not an array"),
    ('{"segment": "\u202e"}', "attributes.$.segment",
     "events[1].attributes is outside the limits of any layout",
     "text holds the invisible character U+202E RIGHT-TO-LEFT OVERRIDE at 0: it reorders "
     "the text around it (bidi control)"),
], ids=["malformed", "duplicate key", "BOM", "not an object", "limits"])
def test_attributes_that_are_no_json_object_are_refused_naming_attributes(text, field, message,
                                                                           why):
    # was: field `attributes`, but the message "invalid attributes: data: malformed JSON ...",
    # which sent the caller to data_json
    with pytest.raises(InvalidInput) as raised:
        parse_attributes(text, "events[1].")
    assert violations(raised) == [(f"events[1].{field}", why)]
    # the path once: "invalid events[1].attributes: why", else "<message>: <path>: why"
    named = message == f"invalid events[1].{field}"
    assert str(raised.value) == (f"{message}: {why}" if named
                                 else f"{message}: events[1].{field}: {why}")
    assert "data" not in str(raised.value)


def test_one_refusal_names_every_bad_value_and_nothing_is_stored(service):
    with pytest.raises(InvalidInput) as raised:
        service.publish([EventInput("t", "C1", "payment_missed",
                                    json.dumps({**MISSED, "due_date": "2026-02-30"}),
                                    attributes_json=json.dumps(
                                        {"time_zone": "Mars/Olympus", "consents": "email"}))],
                        indexed=True)
    assert [f for f, _ in violations(raised)] == ["events[0].data.$.due_date",
                                                  "events[0].attributes.$.consents",
                                                  "events[0].attributes.$.time_zone"]
    assert stored(service) == 0


def test_good_and_open_attributes_are_kept():
    attributes = {"time_zone": "Europe/Helsinki", "country": "FI", "segment": "retail",
                  "consents": ["marketing", "email"], "opt_outs": [],
                  "recipient": {"name": "Kari"}, "anything": 1}
    assert parse_attributes(json.dumps(attributes)) == attributes


def test_an_event_stored_before_the_checks_still_reads_and_replays(service):
    item = EventInput("t", "C1", "payment_missed", json.dumps(MISSED), idempotency_key="old",
                      attributes_json=json.dumps({"consents": ["marketing"]}))
    [first] = service.publish([item])
    with service.engine.begin() as conn:  # what an older server accepted
        conn.execute(update(events_table).where(events_table.c.event_id == first.event.event_id)
                     .values(data=json.dumps({**MISSED, "due_date": "2026-02-30"}),
                             attributes=json.dumps({"time_zone": "Mars/Olympus",
                                                    "consents": "email"})))
    [read] = service.for_customer("t", "C1")
    assert read.data["due_date"] == "2026-02-30" and read.attributes["consents"] == "email"
    assert service.replay(tenant="t") == (1, 0)
    [again] = service.publish([item])
    assert again.replayed and again.event.event_id == first.event.event_id


# --- one idempotency key, two events of one request (QA L5) --------------------------------


def pin(customer: str, key: str, card: str = "K") -> EventInput:
    return EventInput("t", customer, "pin_sent", json.dumps({"card_id": card, "via": "app"}),
                      occurred_at=T0, idempotency_key=key)


def test_one_key_for_two_events_of_a_request_names_both_and_stores_nothing(service):
    # was: Conflict "already used for event 01M8... with other content", an event id that
    # was never stored (the request was rolled back)
    with pytest.raises(InvalidInput) as raised:
        service.publish([pin("C0", "other"), pin("C1", "dupkey"), pin("C2", "dupkey")],
                        indexed=True)
    [(field, why)] = violations(raised)
    assert field == "events[2].idempotency_key"
    assert why.startswith('"dupkey" is also the key of events[1] in this request')
    assert stored(service) == 0


def test_the_same_event_twice_in_a_request_is_one_event(service):
    # the same key with the same content is the same event, as across requests
    first, again = service.publish([pin("C1", "k"), pin("C1", "k")], indexed=True)
    assert (first.replayed, again.replayed) == (False, True)
    assert first.event.event_id == again.event.event_id and stored(service) == 1


def test_a_stream_stores_what_came_before_the_event_that_reuses_a_key(service):
    published = service.publish_stream(iter([pin("C1", "a"), pin("C2", "b"),
                                             pin("C3", "a", card="X")]))
    assert [p.event.customer_id for p in next(published)] == ["C1", "C2"]
    with pytest.raises(InvalidInput) as raised:
        next(published)
    [(field, why)] = violations(raised)
    assert field == "events[2].idempotency_key" and "events[0]" in why
    assert stored(service) == 2


# --- occurred_at at or before the epoch (QA T5) --------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("at", [EPOCH, EPOCH - timedelta(microseconds=1),
                                datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=2))),
                                datetime(1, 1, 1, tzinfo=UTC)])
def test_a_time_at_or_before_the_epoch_is_refused_naming_occurred_at(service, at):
    # was: stored as having happened in 1970 (an explicit protobuf Timestamp of 0 seconds,
    # a caller's default, read as a fact)
    with pytest.raises(InvalidInput) as raised:
        service.publish([EventInput("t", "C1", "pin_sent", PIN, occurred_at=at)],
                        indexed=True)
    [(field, why)] = violations(raised)
    assert field == "events[0].occurred_at"
    assert why.startswith(f"{at.isoformat()} is not after 1970-01-01T00:00:00Z")
    assert stored(service) == 0


def test_just_after_the_epoch_is_a_time_and_no_time_is_now(service):
    after = EPOCH + timedelta(microseconds=1)
    first, unset = service.publish([EventInput("t", "C1", "pin_sent", PIN, occurred_at=after),
                                    EventInput("t", "C1", "pin_sent", PIN)])
    assert (first.event.occurred_at, unset.event.occurred_at) == (after, T0)


# --- the idempotency hash is of what the caller sent (QA T1) -------------------------------


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_retry_without_occurred_at_is_the_first_event_though_the_clock_moved(tmp_path):
    # was: Conflict "idempotency key 'k1' was already used ... with other content": the
    # server's now, filled in for the unset time, was hashed as if the caller had sent it
    clock = Clock(T0)
    service = EventService(create_engine(f"sqlite:///{tmp_path / 'index.db'}"), TYPES,
                           clock=clock)
    service.create_schema()
    item = EventInput("t", "C1", "pin_sent", PIN, idempotency_key="k1")
    [first] = service.publish([item])
    clock.now = T0 + timedelta(minutes=5)
    [again] = service.publish([item])
    assert again.replayed and again.event.event_id == first.event.event_id
    assert again.event.occurred_at == T0 and stored(service) == 1
    with pytest.raises(Conflict):  # what was sent differs: a time now, none before
        service.publish([EventInput("t", "C1", "pin_sent", PIN, idempotency_key="k1",
                                    occurred_at=T0)])


def test_an_event_with_neither_key_nor_time_is_never_deduplicated(service):
    # was: one event, the second `replayed`, whenever the clock read the same for both
    timeless = EventInput("t", "C1", "pin_sent", PIN)
    one, two = service.publish([timeless, timeless], indexed=True)
    [three] = service.publish([timeless])
    assert not (one.replayed or two.replayed or three.replayed)
    assert len({one.event.event_id, two.event.event_id, three.event.event_id}) == 3
    assert stored(service) == 3


def test_an_event_without_a_key_but_with_a_time_is_keyed_by_its_content(service):
    timed = EventInput("t", "C1", "pin_sent", PIN, occurred_at=T0)
    [first] = service.publish([timed])
    [again] = service.publish([timed])
    assert again.replayed and again.event.event_id == first.event.event_id
    assert stored(service) == 1


# --- a stream keeps what came before an event it cannot read ---------------------------------


def pin_request(customer: str, seconds: int | None = None) -> events_pb2.PublishEventRequest:
    request = events_pb2.PublishEventRequest(customer_id=customer, event_type="pin_sent",
                                             data_json=PIN, idempotency_key=customer)
    if seconds is not None:
        request.occurred_at.seconds = seconds
    return request


@pytest.fixture
def producer():
    set_caller(Caller("test", "t", "producer"))
    yield
    set_caller(None)


@pytest.mark.parametrize("seconds, why", [
    (0, "1970-01-01T00:00:00+00:00 is not after 1970-01-01T00:00:00Z"),  # T5
    (2**40, "not a time: "),  # beyond what a Timestamp can hold
])
def test_a_stream_stores_the_events_before_a_bad_time_and_names_its_index(
        service, producer, seconds, why):
    # was: the two events before it lost (the error came from the request iterator, not
    # from the check), and the field named `occurred_at`, not which event's
    with pytest.raises(InvalidInput) as raised:
        EventsServicer(service).PublishEventStream(
            iter([pin_request("C1"), pin_request("C2", int(T0.timestamp())),
                  pin_request("C3", seconds), pin_request("C4")]), None)
    [(field, description)] = violations(raised)
    assert field == "events[2].occurred_at" and description.startswith(why), description
    assert "(the 2 events before it are stored)" in raised.value.message
    assert [e.customer_id for e in service.for_customer("t", "C1")
            + service.for_customer("t", "C2")] == ["C1", "C2"]
    assert stored(service) == 2


def test_a_batch_names_the_index_of_a_time_it_cannot_read(service, producer):
    with pytest.raises(InvalidInput) as raised:
        EventsServicer(service).PublishEvents(events_pb2.PublishEventsRequest(
            events=[pin_request("C1"), pin_request("C2", -2**40)]), None)
    assert [f for f, _ in violations(raised)] == ["events[1].occurred_at"]
    assert stored(service) == 0  # all or nothing


def test_a_stream_keeps_what_came_before_a_request_it_could_not_read(service):
    def requests():
        yield pin("C1", "a")
        yield pin("C2", "b")
        raise PermissionDenied("this API key acts for tenant 't' only")

    published = service.publish_stream(requests())
    assert [p.event.customer_id for p in next(published)] == ["C1", "C2"]
    with pytest.raises(PermissionDenied):
        next(published)
    assert stored(service) == 2


def test_a_stream_stores_what_came_before_a_key_stored_with_other_content(service):
    # was: the whole open transaction (up to 500 events before it) rolled back with it
    service.publish([pin("C0", "taken")])
    published = service.publish_stream(iter([pin("C1", "a"), pin("C2", "b"),
                                             pin("C3", "taken", card="X"), pin("C4", "c")]))
    assert [p.event.customer_id for p in next(published)] == ["C1", "C2"]
    with pytest.raises(Conflict) as raised:
        next(published)
    assert str(raised.value).startswith("events[2].idempotency_key: idempotency key 'taken' "
                                        "was already used for event ")
    assert stored(service) == 3
