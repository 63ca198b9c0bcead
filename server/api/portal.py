"""`kanal.v1.Portal` and `kanal.v1.ArchiveAdmin`: proto <-> `server.portal` only.

The caller's scope (tenant, and for a portal caller the one customer of its signed token) is
worked out by `PortalService.scope` from the authenticated caller and the call's metadata,
never from the request body.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import grpc

from archive.records import DocumentRecord
from kanal.v1 import common_pb2, portal_pb2, portal_pb2_grpc
from server.api.convert import channels_from_proto, output_to_proto, timestamp
from server.api.deliveries import delivery_to_proto
from server.auth import current_caller
from server.delivery.model import Delivery
from server.delivery.stage import DeliveryStage
from server.errors import InvalidInput
from server.portal import ArchiveAdminService, ListQuery, PortalService, Scope


def _datetime(message: portal_pb2.ListDocumentsRequest, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    try:
        return getattr(message, field).ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:  # seconds or nanos out of Timestamp's range
        raise InvalidInput.field(field, "is not a timestamp within 0001-01-01..9999-12-31"
                                 ) from exc


def _channel(value: int, field: str = "channel") -> str | None:
    if value == common_pb2.CHANNEL_UNSPECIFIED:
        return None
    return channels_from_proto([value], field)[0].value


def document_to_proto(record: DocumentRecord, corrected_by: list[str],
                      deliveries: Sequence[Delivery] = (), *,
                      for_customer: bool = False) -> portal_pb2.PortalDocument:
    """A document as the portal shows it, with its `deliveries` (each without its attempt
    log). `for_customer` (a caller acting for one customer, through a customer token):
    without `input_sha256`, the hash of the bank's input data, which is the bank's business
    (operators, `service` and `admin`, keep it)."""
    layout_id, _, version = record.layout_ref.partition("@")
    return portal_pb2.PortalDocument(
        document_id=record.document_id,
        customer_id=record.customer_id,
        kind=record.kind,
        layout_id=layout_id,
        layout_version=version,
        locale=record.locale,
        created_at=timestamp(record.created_at),
        retain_until=timestamp(record.retain_until),
        input_sha256="" if for_customer else record.input_sha256,
        outputs=[output_to_proto(o) for o in record.outputs],
        corrects_document_id=record.corrects_document_id or "",
        corrected_by_document_ids=corrected_by,
        deliveries=[delivery_to_proto(d, attempts=False) for d in deliveries],
    )


class PortalServicer(portal_pb2_grpc.PortalServicer):
    def __init__(self, service: PortalService, deliveries: DeliveryStage | None = None):
        self.service = service
        self.deliveries = deliveries

    def _scope(self, context: grpc.ServicerContext) -> Scope:
        return self.service.scope(current_caller(), tuple(context.invocation_metadata() or ()))

    def ListDocuments(self, request: portal_pb2.ListDocumentsRequest,
                      context: grpc.ServicerContext) -> portal_pb2.ListDocumentsResponse:
        scope = self._scope(context)
        page = self.service.list_documents(scope, ListQuery(
            customer_id=request.customer_id,
            kinds=tuple(request.kinds),
            channels=tuple(c.value for c in channels_from_proto(list(request.channels))),
            layout_id=request.layout_id,
            created_from=_datetime(request, "created_from"),
            created_before=_datetime(request, "created_before"),
            page_size=request.page_size,
            page_token=request.page_token,
        ))
        customer = scope.customer_id is not None
        # the page's deliveries in one read (their states; GetDocument adds their events)
        deliveries = self.deliveries.for_documents(
            scope.tenant, [r.document_id for r in page.documents]) if self.deliveries else {}
        return portal_pb2.ListDocumentsResponse(
            documents=[document_to_proto(r, page.corrected_by.get(r.document_id, []),
                                         deliveries.get(r.document_id, ()),
                                         for_customer=customer) for r in page.documents],
            next_page_token=page.next_page_token,
        )

    def GetDocument(self, request: portal_pb2.PortalGetDocumentRequest,
                    context: grpc.ServicerContext) -> portal_pb2.PortalDocument:
        scope = self._scope(context)
        record, corrected_by = self.service.get_document(scope, request.document_id)
        deliveries = self.deliveries.for_document(
            record.tenant, record.document_id) if self.deliveries else []
        return document_to_proto(record, corrected_by, deliveries,
                                 for_customer=scope.customer_id is not None)

    def FetchDocument(self, request: portal_pb2.FetchDocumentRequest,
                      context: grpc.ServicerContext) -> Iterator[portal_pb2.DocumentChunk]:
        output, chunks = self.service.fetch(self._scope(context), request.document_id,
                                            _channel(request.channel))
        first = True
        for data in chunks:
            if first:
                yield portal_pb2.DocumentChunk(data=data, media_type=output.media_type,
                                               size=output.size, sha256=output.sha256)
                first = False
            else:
                yield portal_pb2.DocumentChunk(data=data)

    def GetDownloadUrl(self, request: portal_pb2.GetDownloadUrlRequest,
                       context: grpc.ServicerContext) -> portal_pb2.DownloadUrl:
        output, url, expires = self.service.download_url(
            self._scope(context), request.document_id, _channel(request.channel),
            request.expires_seconds)
        return portal_pb2.DownloadUrl(url=url, expires_at=timestamp(expires), sha256=output.sha256)


class ArchiveAdminServicer(portal_pb2_grpc.ArchiveAdminServicer):
    def __init__(self, service: ArchiveAdminService):
        self.service = service

    def SetLegalHold(self, request: portal_pb2.SetLegalHoldRequest,
                     context: grpc.ServicerContext) -> portal_pb2.LegalHold:
        held = self.service.set_legal_hold(current_caller().tenant, request.document_id,
                                           request.on)
        return portal_pb2.LegalHold(document_id=request.document_id, on=bool(held),
                                    held_keys=held)

    def GetLegalHold(self, request: portal_pb2.GetLegalHoldRequest,
                     context: grpc.ServicerContext) -> portal_pb2.LegalHold:
        held = self.service.held_keys(current_caller().tenant, request.document_id)
        return portal_pb2.LegalHold(document_id=request.document_id, on=bool(held),
                                    held_keys=held)
