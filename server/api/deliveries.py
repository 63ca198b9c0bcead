"""`kanal.v1.Deliveries`: proto <-> `server.delivery.stage.DeliveryStage` only."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc

from kanal.v1 import deliveries_pb2, deliveries_pb2_grpc
from server.api.convert import channel_to_proto, timestamp
from server.auth import current_caller
from server.delivery.model import DEFAULT_PAGE_SIZE, Delivery, DeliveryEvent, State
from server.delivery.stage import DeliveryStage
from server.errors import InvalidInput

WATCH_POLL_SECONDS = 0.25

_STATE_TO_PROTO = {s: deliveries_pb2.DeliveryState.Value(f"DELIVERY_STATE_{s.name}")
                   for s in State}
_STATE_FROM_PROTO = {v: k for k, v in _STATE_TO_PROTO.items()}


def event_to_proto(event: DeliveryEvent) -> deliveries_pb2.DeliveryEvent:
    return deliveries_pb2.DeliveryEvent(
        event_id=event.event_id, delivery_id=event.delivery_id,
        document_id=event.document_id, channel=channel_to_proto(event.channel),
        state=_STATE_TO_PROTO[event.state], at=timestamp(event.at), reason=event.reason)


def delivery_to_proto(d: Delivery, *, attempts: bool = True) -> deliveries_pb2.Delivery:
    return deliveries_pb2.Delivery(
        delivery_id=d.delivery_id, document_id=d.document_id,
        channel=channel_to_proto(d.channel), provider=d.provider,
        state=_STATE_TO_PROTO[d.state], state_at=timestamp(d.state_at), reason=d.reason,
        attempts=d.attempts, next_attempt_at=timestamp(d.next_attempt_at)
        if d.state == State.QUEUED else None,
        message_id=d.message_id, provider_message_id=d.provider_message_id,
        created_at=timestamp(d.created_at), fallback_of=d.fallback_of or "",
        fallbacks=[channel_to_proto(c) for c in d.fallbacks], dead_letter=d.dead_letter,
        events=[event_to_proto(e) for e in d.events],
        attempt_log=[deliveries_pb2.DeliveryAttempt(
            number=a.number, started_at=timestamp(a.started_at),
            finished_at=timestamp(a.finished_at), outcome=a.outcome, reason=a.reason,
            message_id=a.message_id) for a in d.attempt_log] if attempts else [],
        customer_id=d.customer_id,
    )


class DeliveriesServicer(deliveries_pb2_grpc.DeliveriesServicer):
    def __init__(self, stage: DeliveryStage):
        self.stage = stage
        self._stopping = threading.Event()

    def stop(self) -> None:
        """End the open WatchDeliveries streams (the server is stopping)."""
        self._stopping.set()

    def ListDeliveries(self, request: deliveries_pb2.ListDeliveriesRequest,
                       context: grpc.ServicerContext) -> deliveries_pb2.ListDeliveriesResponse:
        try:
            states = [_STATE_FROM_PROTO[s].value for s in request.states]
        except KeyError as exc:
            raise InvalidInput.field("states", f"unknown state {exc.args[0]}") from exc
        found, next_token = self.stage.list(current_caller().tenant, request.page_token,
                                            states=states, document_id=request.document_id,
                                            dead_letter=request.dead_letter,
                                            limit=request.page_size or DEFAULT_PAGE_SIZE)
        return deliveries_pb2.ListDeliveriesResponse(
            deliveries=[delivery_to_proto(d) for d in found], next_page_token=next_token)

    def GetDelivery(self, request: deliveries_pb2.GetDeliveryRequest,
                    context: grpc.ServicerContext) -> deliveries_pb2.Delivery:
        return delivery_to_proto(self.stage.get(current_caller().tenant,
                                                _required(request.delivery_id)))

    def RetryDelivery(self, request: deliveries_pb2.DeliveryActionRequest,
                      context: grpc.ServicerContext) -> deliveries_pb2.Delivery:
        caller = current_caller()
        return delivery_to_proto(self.stage.retry(caller.tenant, _required(request.delivery_id),
                                                  caller.key_id))

    def CancelDelivery(self, request: deliveries_pb2.DeliveryActionRequest,
                       context: grpc.ServicerContext) -> deliveries_pb2.Delivery:
        caller = current_caller()
        return delivery_to_proto(self.stage.cancel(caller.tenant,
                                                   _required(request.delivery_id),
                                                   caller.key_id))

    def WatchDeliveries(self, request: deliveries_pb2.WatchDeliveriesRequest,
                        context: grpc.ServicerContext) -> Iterator[deliveries_pb2.DeliveryEvent]:
        tenant = current_caller().tenant
        after = request.after_event_id
        if after < 0:
            raise InvalidInput.field("after_event_id", "must not be negative")
        if not after and not request.document_id:
            after = self.stage.store.last_event_id()
        while context.is_active() and not self._stopping.is_set():
            events = self.stage.events_after(tenant, after, request.document_id)
            for event in events:
                yield event_to_proto(event)
                after = event.event_id
            if not events:
                self._stopping.wait(WATCH_POLL_SECONDS)


def _required(delivery_id: str) -> str:
    if not delivery_id:
        raise InvalidInput.field("delivery_id", "is required")
    return delivery_id
