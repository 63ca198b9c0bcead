"""A correction replaces the document it corrects: what that takes back, in the correction's
own index transaction, and the error when the document was corrected already.

A document composed with `corrects_document_id` (the corrected document's layout, any
version: server.documents) is its replacement, so at most one correction names a document
(`archive.index.DocumentIndex.claim_correction`, the corrected row locked: of two corrections
committing at once the second is refused, `CorrectionRefused`, FAILED_PRECONDITION naming the
newest document of the chain to correct instead). In the same transaction the corrected
document's print piece that no batch has taken yet is withdrawn (`PrintQueue.withdraw_on`)
and its deliveries not handed to a provider yet are cancelled ("superseded by correction
<id>", `DeliveryStage.supersede`). What a closed batch holds or a provider took stays: the
correction is sent on its own. A credit note (`preceding_invoices`) is no correction and
takes nothing back (a partial credit is legitimate).

Called by server.archiving's ArchiveStep, which owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from archive.errors import AlreadyCorrected
from archive.index import DocumentIndex
from server import logs
from server.compose.model import Composition
from server.errors import FailedPrecondition, FieldViolation
from server.printing.queue import PrintQueue

if TYPE_CHECKING:
    from server.archiving import Rendered
    from server.delivery.stage import DeliveryStage

log = logs.get_logger(__name__)

# What a committed correction took back from the document it corrects, per correction id:
# (print piece ids withdrawn, delivery ids cancelled); logged once the transaction commits.
Superseded = dict[str, tuple[list[str], list[str]]]


class CorrectionRefused(FailedPrecondition):
    """The document a correction names was corrected already (FAILED_PRECONDITION): a
    correction chain stays linear, so the caller corrects the newest document of the chain,
    which the message names ("correct <id> instead"), and so does its violation of
    `corrects_document_id`."""

    kind = "ALREADY_CORRECTED"

    @classmethod
    def of(cls, error: AlreadyCorrected) -> CorrectionRefused:
        refused = cls(str(error), [  # "... correct <id> instead"
            FieldViolation("corrects_document_id", str(error))])
        refused.__cause__ = error
        return refused


def supersede(conn: Connection, index: DocumentIndex, correction: Composition,
              corrected_id: str, *, print_queue: bool, delivery: DeliveryStage | None
              ) -> tuple[list[str], list[str]]:
    """In the correction's index transaction (`conn`): claim the corrected document (raises
    AlreadyCorrected when another correction has it), withdraw its print pieces still
    waiting (when the server queues print: `print_queue`) and cancel its deliveries not
    handed to a provider yet. -> (print piece ids withdrawn, delivery ids cancelled)."""
    tenant, correction_id = correction.tenant, correction.document_id
    index.claim_correction(conn, tenant, corrected_id, correction_id)
    pieces = PrintQueue.withdraw_on(conn, tenant, corrected_id) if print_queue else []
    cancelled = (delivery.supersede(conn, tenant, corrected_id, correction_id,
                                    print_withdrawn=bool(pieces))
                 if delivery is not None else [])
    return pieces, cancelled


def log_superseded(documents: Sequence[Rendered], superseded: Superseded) -> None:
    """One line per committed correction: what it took back from the document it corrects,
    at info when it took something, at debug when nothing of it was still waiting (a batch
    and the providers had it all)."""
    for doc in documents:
        took = superseded.get(doc.composition.document_id)
        if took is None:
            continue
        pieces, cancelled = took
        if pieces or cancelled:
            say, event = log.info, ("correction committed; of the corrected document, "
                                    f"{len(pieces)} print piece(s) withdrawn and "
                                    f"{len(cancelled)} delivery(ies) cancelled")
        else:
            say, event = log.debug, ("correction committed; nothing of the corrected "
                                     "document was waiting: nothing withdrawn or cancelled")
        say(event, document_id=doc.composition.document_id,
            corrected_document_id=doc.corrects_document_id,
            print_pieces_withdrawn=pieces, deliveries_cancelled=cancelled)
