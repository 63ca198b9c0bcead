"""`kanal.v1.Events` (publish one, a stream, a batch) and `kanal.v1.Customers`
(ListCustomerActivity): proto <-> server.events / server.journeys, nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

import grpc

from kanal.v1 import events_pb2, events_pb2_grpc
from server.api.convert import timestamp
from server.auth import current_caller, tenant_for
from server.errors import Conflict, InvalidInput
from server.events.publish import EventInput, EventService
from server.journeys.activity import Activity
from server.journeys.stage import JourneyStage

MAX_BATCH = 1000


def event_input(request: events_pb2.PublishEventRequest, where: str = "") -> EventInput:
    """A request -> EventInput; `occurred_at` unset (HasField): None, i.e. now. A time the
    Timestamp cannot hold: InvalidInput on `<where>occurred_at` (`where`: "events[n]." in a
    stream or a batch)."""
    occurred = None
    if request.HasField("occurred_at"):
        try:
            occurred = request.occurred_at.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError) as exc:
            raise InvalidInput.field(f"{where}occurred_at", f"not a time: {exc}") from exc
    tenant = tenant_for(current_caller(), request.tenant)
    return EventInput(tenant=tenant, customer_id=request.customer_id,
                      event_type=request.event_type, data_json=request.data_json or "{}",
                      occurred_at=occurred, idempotency_key=request.idempotency_key,
                      attributes_json=request.attributes_json)


class EventsServicer(events_pb2_grpc.EventsServicer):
    def __init__(self, events: EventService):
        self.events = events

    def PublishEvent(self, request: events_pb2.PublishEventRequest,
                     context: grpc.ServicerContext) -> events_pb2.PublishEventResponse:
        [published] = self.events.publish([event_input(request)])
        return events_pb2.PublishEventResponse(
            event_id=published.event.event_id, replayed=published.replayed,
            journeys_started=published.started, journeys_exited=published.exited)

    def PublishEventStream(self, request_iterator: Iterator[events_pb2.PublishEventRequest],
                           context: grpc.ServicerContext) -> events_pb2.PublishEventsResponse:
        response = events_pb2.PublishEventsResponse()
        stored = 0
        try:
            for batch in self.events.publish_stream(
                    event_input(r, f"events[{n}].") for n, r in enumerate(request_iterator)):
                _count(response, batch)
                stored += len(batch)
        except InvalidInput as exc:
            raise InvalidInput(f"{exc} (the {stored} events before it are stored)",
                               exc.violations) from exc
        except Conflict as exc:
            raise Conflict(f"{exc} (the {stored} events before it are stored)") from exc
        return response

    def PublishEvents(self, request: events_pb2.PublishEventsRequest,
                      context: grpc.ServicerContext) -> events_pb2.PublishEventsResponse:
        if not request.events:
            raise InvalidInput.field("events", "at least one event")
        if len(request.events) > MAX_BATCH:
            raise InvalidInput.field("events", f"at most {MAX_BATCH} events per call; "
                                     "use PublishEventStream for more")
        response = events_pb2.PublishEventsResponse()
        _count(response, self.events.publish(
            [event_input(r, f"events[{n}].") for n, r in enumerate(request.events)],
            indexed=True))
        return response


def _count(response: events_pb2.PublishEventsResponse, batch: list) -> None:
    for published in batch:
        if published.replayed:
            response.replayed += 1
        else:
            response.accepted += 1
        response.event_ids.append(published.event.event_id)


def activity_to_proto(a: Activity) -> events_pb2.CustomerActivity:
    return events_pb2.CustomerActivity(
        at=timestamp(a.at), kind=a.kind, summary=a.summary, event_id=a.event_id,
        event_type=a.event_type, journey=a.journey, step=a.step, document_id=a.document_id,
        channel=a.channel, state=a.state, reason=a.reason, details_json=a.details_json)


class CustomersServicer(events_pb2_grpc.CustomersServicer):
    def __init__(self, journeys: JourneyStage):
        self.journeys = journeys

    def ListCustomerActivity(self, request: events_pb2.ListCustomerActivityRequest,
                             context: grpc.ServicerContext
                             ) -> events_pb2.ListCustomerActivityResponse:
        tenant = tenant_for(current_caller(), request.tenant)
        page, token = self.journeys.activity(tenant, request.customer_id, request.page_size,
                                             request.page_token)
        return events_pb2.ListCustomerActivityResponse(
            activities=[activity_to_proto(a) for a in page], next_page_token=token)
