"""`kanal.v1.Documents`: real-time Compose and GetDocument."""

from __future__ import annotations

import grpc

from kanal.v1 import documents_pb2, documents_pb2_grpc
from server.api.convert import (
    channels_from_proto,
    locale_decision_to_proto,
    output_to_proto,
    plan_to_proto,
    timestamp,
)
from server.api.deliveries import delivery_to_proto
from server.auth import current_caller, tenant_for
from server.documents import ComposeInput, DocumentService, plan_from_text
from server.errors import InvalidInput, NotFound, quote


class DocumentsServicer(documents_pb2_grpc.DocumentsServicer):
    def __init__(self, service: DocumentService):
        self.service = service

    def Compose(self, request: documents_pb2.ComposeRequest, context: grpc.ServicerContext
                ) -> documents_pb2.ComposeResponse:
        result = self.service.compose(ComposeInput(
            tenant=tenant_for(current_caller(), request.tenant),
            layout_id=request.layout_id,
            layout_version=request.layout_version or None,
            data=request.data_json,
            locale=request.locale or None,
            channels=channels_from_proto(list(request.channels)),
            idempotency_key=request.idempotency_key or None,
            preview=request.preview,
            corrects_document_id=request.corrects_document_id or None,
        ))
        locale_source, locale_reason = locale_decision_to_proto(result.locale_decision)
        return documents_pb2.ComposeResponse(
            document_id=result.document_id,
            layout_version=result.layout_version,
            outputs=[
                output_to_proto(o, result.contents.get(o.channel, b"")) for o in result.outputs
            ],
            plan=plan_to_proto(result.plan),
            created_at=timestamp(result.created_at),
            replayed=result.replayed,
            locale=result.locale,
            locale_source=locale_source,
            locale_reason=locale_reason,
        )

    def GetDocument(self, request: documents_pb2.GetDocumentRequest,
                    context: grpc.ServicerContext) -> documents_pb2.Document:
        if not request.document_id:
            raise InvalidInput.field("document_id", "is required")
        caller = current_caller()
        if request.tenant and request.tenant != caller.tenant:
            raise NotFound(f"no document {quote(request.document_id)}")  # never say it exists
        record = self.service.get(caller.tenant, request.document_id)
        layout_id, _, version = record.layout_ref.partition("@")
        locale_source, locale_reason = locale_decision_to_proto(record.locale_decision)
        return documents_pb2.Document(
            document_id=record.document_id,
            tenant=record.tenant,
            customer_id=record.customer_id,
            kind=record.kind,
            layout_id=layout_id,
            layout_version=version,
            locale=record.locale,
            created_at=timestamp(record.created_at),
            retain_until=timestamp(record.retain_until),
            input_sha256=record.input_sha256,
            idempotency_key=record.idempotency_key or "",
            outputs=[output_to_proto(o) for o in record.outputs],
            plan=plan_to_proto(plan_from_text(record.channel_plan, record.plan_reason or "",
                                              record.skipped_channels)),
            locale_source=locale_source,
            locale_reason=locale_reason,
            deliveries=[delivery_to_proto(d) for d in self.service.delivery.for_document(
                record.tenant, record.document_id)] if self.service.delivery else [],
        )
