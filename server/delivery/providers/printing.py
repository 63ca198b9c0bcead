"""Print: a delivery of the print channel -> a piece in its print shop's queue.

The print queue (server.printing.queue) batches pieces for the print shop; this adapter
is what puts a printed document's piece there, once the contact rules at send time let the
letter go (an opt-out or a frequency cap suppresses it before it can be printed;
server.archiving queues pieces itself only for documents without a print delivery). It is
idempotent per document (a resend finds it queued). `sent`
means queued for the print shop (the reason names it); the print shop's acknowledgement of
the batch is the print trade's receipt: the delivery becomes `delivered`, or stays `sent` for
a spoiled piece until its reprint is acknowledged (server.printing.batches).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from server.delivery.model import Accepted, Failed, Outgoing, Result
from server.delivery.providers.base import Provider, ProviderContext, register
from server.printing.queue import PrintQueue, QueuedPiece, UnprintablePiece
from server.printing.sheets import SheetRules


class PrintQueueProvider(Provider):
    channel = "print"
    needs_content = False  # the print shop fetches the PDF with its batch

    def __init__(self, name: str, settings: Mapping[str, Any], context: ProviderContext):
        super().__init__(name, settings, context)
        self.queue: PrintQueue = context.services["print_queue"]

    def send(self, message: Outgoing) -> Result:
        piece = message.details.get("print") or {}
        try:
            piece_id = self.queue.enqueue(QueuedPiece(
                document_id=message.document_id, tenant=message.tenant,
                archive_key=str(message.details["archive_key"]),
                pdf_sha256=str(message.details["sha256"]), pages=int(piece.get("pages") or 1),
                envelope=str(piece.get("envelope", "C5")),
                inserts=tuple(piece.get("inserts", ())), country=str(piece.get("country", "")),
                postal_code=str(piece.get("postal_code", "")),
                profile=str(piece.get("profile", "")),
                sheet_rules=SheetRules.from_text(str(piece.get("sides", ""))),
                insert_rules=tuple((str(insert), str(rule))
                                   for insert, rule in piece.get("insert_rules", ())),
            ), datetime.now(UTC))
        except (ValueError, UnprintablePiece) as exc:  # an insert no feeder holds, a piece
            # too thick for every envelope: no print shop can do it, however often retried
            return Failed(f"print queue refused the piece: {exc}")
        printshop, profile = self.queue.settings.destination(message.tenant)
        profile = str(piece.get("profile") or profile)
        return Accepted(f"queued for print shop {printshop} (profile {profile})",
                        provider_message_id=piece_id)


register("print", PrintQueueProvider)
