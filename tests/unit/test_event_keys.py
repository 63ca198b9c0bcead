"""One request cannot give one idempotency key to two different events
(server.events.publish): INVALID_ARGUMENT on the second's `events[n].idempotency_key`,
naming the first, and nothing of the request is stored. It was ALREADY_EXISTS naming, as
the key's owner, an event id that was rolled back with the request. QA L5. SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, func, select

from server.errors import InvalidInput
from server.events.publish import EventInput, EventService
from server.events.tables import events as events_table
from server.events.types import EventTypes

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def service(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    service = EventService(engine, EventTypes(), clock=lambda: T0)
    service.create_schema()
    return service


def stored(service: EventService) -> int:
    with service.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(events_table)).scalar()


def violations(raised: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in raised.value.violations]


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
