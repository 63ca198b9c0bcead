"""The archive step: rendered documents -> S3 objects -> index rows, outbox rows and print
pieces, for one real-time document or a whole bulk chunk at once.

    Rendered (composition + outputs) x N
      -> every object put concurrently (`PUT_THREADS` requests in flight over the store's
         pooled connections: a document's 2-4 objects and a chunk's documents do not wait
         for each other's round trips)
      -> ONE index transaction: the documents' rows and output rows (one multi-row
         statement each), their delivery outbox rows and the print pieces of documents
         with no print delivery
      -> the dispatcher is woken once; a print delivery puts its piece in the print queue
         once the contact rules at send time let it go

Write order, as in server/documents.py: objects first, the transaction last. A crash between
the two leaves objects without rows, which a re-run re-puts (identical bytes: a no-op) and the
reconciler can find; never a row pointing at nothing, never a document without its
deliveries (its print delivery queues its print piece) or, with no print delivery, without
its print piece. One transaction per chunk instead of two or three per
document is what makes the index cheap in bulk (SQLite commits are fsyncs).

Everything about a document's print piece that does not need the stored object (profile,
insert -> feeder, sheets -> envelope: `PrintQueue.piece_row`) is decided before its objects
are put: a piece the print settings cannot make fails its document alone with
`UnprintablePiece` (FAILED_PRECONDITION) and leaves no object behind, locked for years with
no index row, nor an indexed document that is never printed.

Outcomes are per document: a document whose object exists with other bytes
(`ObjectConflict`), whose object the store refuses (`ValueError`) or whose print piece
cannot be made (`UnprintablePiece`) fails alone; an
unreachable S3 (`ArchiveUnavailable`) fails the whole call (the caller retries it). When the
chunk's transaction hits a row that exists already (another worker won a race on the same
chunk), the documents are committed one at a time, so each learns its own fate.

A correction (`corrects_document_id`) replaces the document it corrects, in the same index
transaction: server.corrections claims the corrected document (one correction each) and
takes back what of it is still waiting (its print piece, its undelivered deliveries).
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from archive.errors import (
    AlreadyCorrected,
    ArchiveUnavailable,
    DuplicateDocument,
    ObjectConflict,
)
from archive.index import DocumentIndex
from archive.keys import document_key
from archive.records import DocumentRecord, OutputRecord, SkippedRecord, skipped_to_json
from archive.retention import RetentionPolicy
from archive.store import ArchiveStore
from server import logs
from server.compose.layouts import Layout
from server.compose.model import Channel, ChannelPlan, Composition, Output
from server.corrections import CorrectionRefused, Superseded, log_superseded, supersede
from server.delivery.outbox import OutboxWrite, hands_over
from server.delivery.stage import DeliveryStage
from server.printing.queue import PrintQueue, QueuedPiece, UnprintablePiece
from server.printing.sheets import sheet_rules

log = logs.get_logger(__name__)

PUT_THREADS = 8  # object puts in flight per process (the store pools 32 connections)

EXTENSIONS = {
    "application/pdf": "pdf",
    "message/rfc822": "eml",
    "text/plain": "txt",
    "text/plain; charset=utf-8": "txt",  # SMS text
    "application/xml": "xml",
}


@dataclass(frozen=True, slots=True)
class Rendered:
    """A composed and rendered document on its way to the archive.

    `sealable`: what rebuilds this exact Composition later (the delivery stage seals it for
    fallbacks); None when nothing will be delivered from it."""

    composition: Composition
    layout: Layout
    outputs: tuple[Output, ...]
    corrects_document_id: str | None = None
    sealable: Mapping[str, Any] | None = None


def plan_text(plan: ChannelPlan) -> str:
    """'email,sms>print': the channels rendered, then the delivery fallbacks."""
    text = ",".join(c.value for c in plan.channels)
    return f"{text}>{','.join(c.value for c in plan.fallbacks)}" if plan.fallbacks else text


def skipped_records(plan: ChannelPlan) -> tuple[SkippedRecord, ...]:
    """The plan's skipped channels as the archive stores them."""
    return tuple(SkippedRecord(s.channel.value, s.reason, s.field) for s in plan.skipped)


def output_record(output: Output, key: str) -> OutputRecord:
    return OutputRecord(
        channel=output.channel.value, key=key, media_type=output.media_type,
        sha256=output.sha256, size=output.size, pages=output.facts.get("pages"),
        facts={k: v for k, v in output.facts.items() if k != "pages"},
    )


def decision_text(composition: Composition) -> str | None:
    """How the locale was decided, as the index and the objects' metadata keep it."""
    decision = composition.locale_decision
    return str(decision) if decision is not None else None


def _facts_json(output: Output) -> str:
    """The renderer's facts as stored in the index (without pages), for rebuilding it."""
    facts = {k: v for k, v in output.facts.items() if k != "pages"}
    return json.dumps(facts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def object_metadata(composition: Composition, corrects_document_id: str | None
                    ) -> dict[str, str]:
    """The metadata every object of a document carries: enough to rebuild its index row."""
    recipient = composition.recipient
    skipped = skipped_records(composition.channel_plan)
    return {
        "tenant": composition.tenant,
        "customer-id": recipient.customer_id,
        "document-id": composition.document_id,
        "kind": composition.kind.value,
        "layout": composition.layout_ref,
        "locale": composition.locale,
        "created-at": composition.created_at.isoformat(),
        "input-sha256": composition.input_sha256,
        "idempotency-key": composition.idempotency_key or "",
        "channel-plan": plan_text(composition.channel_plan),
        "plan-reason": composition.channel_plan.reason,
        "corrects-document-id": corrects_document_id or "",
        "locale-decision": decision_text(composition) or "",
        **({"skipped-channels": skipped_to_json(skipped)} if skipped else {}),
    }


def output_key(composition: Composition, output: Output) -> str:
    """The S3 key of one output of a document (archive.keys.document_key)."""
    return document_key(
        composition.tenant, composition.recipient.customer_id, composition.created_at,
        composition.document_id, output.channel.value,
        EXTENSIONS.get(output.media_type, "bin"),
    )


def _prints_by_delivery(outbox: OutboxWrite | None) -> bool:
    """Whether the document's print delivery puts its piece in the print queue: it does so
    after the contact rules at send time (server.delivery.rules), so a letter they suppress
    (an opt-out, a frequency cap) never reaches the print shop. A document with no routed
    print delivery has its piece queued with its index row."""
    return outbox is not None and any(
        row["channel"] == Channel.PRINT.value and row["provider"] for row in outbox.rows)


class ArchiveStep:
    """Stores and indexes rendered documents (see the module docstring)."""

    def __init__(self, store: ArchiveStore, index: DocumentIndex, retention: RetentionPolicy,
                 *, print_queue: PrintQueue | None = None,
                 delivery: DeliveryStage | None = None, put_threads: int = PUT_THREADS,
                 exposures: Callable[[Composition], Callable[[Connection], None] | None]
                 | None = None):
        self.store = store
        self.index = index
        self.retention = retention
        self.print_queue = print_queue
        self.delivery = delivery
        # the survey stage's A/B exposures: written with the document they appear in
        self.exposures = exposures
        self._puts = ThreadPoolExecutor(put_threads, thread_name_prefix="archive-put")
        self.before_index: Callable[[str], None] = lambda document_id: None  # a test hook

    def close(self) -> None:
        self._puts.shutdown(wait=False, cancel_futures=True)

    def retain_until(self, composition: Composition) -> datetime:
        """Locked for the bookkeeping law of the issuer's country (archive/retention.toml):
        the obligation to keep vouchers is the issuer's, wherever the customer lives; the
        customer's country only when the layout names no sender."""
        address = composition.recipient.address
        country = (composition.context.get("sender_country")
                   or (address.country if address else None))
        return self.retention.retain_until(
            composition.created_at, composition.kind.value, country, composition.tenant)

    # --- objects ----------------------------------------------------------------------------

    def put(self, composition: Composition, output: Output, common: Mapping[str, str],
            retain_until: datetime) -> OutputRecord:
        """One output as one immutable, retained object, under the renderer's sha256 (the
        store does not hash the bytes again; S3 verifies it). -> its index record"""
        key = output_key(composition, output)
        self.store.put(
            key, output.content, media_type=output.media_type,
            metadata={**common, "channel": output.channel.value,
                      "pages": str(output.facts.get("pages", "")),
                      "facts": _facts_json(output)},
            retain_until=retain_until,
            sha256=output.sha256,  # hashed by the renderer: S3 checks it, not hashed again
        )
        return output_record(output, key)

    def _put_all(self, documents: Sequence[Rendered]
                 ) -> list[tuple[list[Future[OutputRecord]], dict[str, Any] | None]]:
        """Every object of every document, submitted at once (each task in the caller's
        context, so a real-time call's deadline reaches the store), with each document's
        print piece row, made first: a document whose metadata, retention or print piece
        cannot be made fails alone, before anything of it is stored."""
        out: list[tuple[list[Future[OutputRecord]], dict[str, Any] | None]] = []
        for doc in documents:
            try:
                common = object_metadata(doc.composition, doc.corrects_document_id)
                retain = self.retain_until(doc.composition)
                row = self._planned_row(doc)
            except (ValueError, UnprintablePiece) as exc:
                if isinstance(exc, UnprintablePiece):  # the operator's to fix: say so loudly
                    log.error("print piece cannot be made; document not archived",
                              document_id=doc.composition.document_id, error=str(exc))
                failed: Future[OutputRecord] = Future()
                failed.set_exception(exc)
                out.append(([failed], None))
                continue
            out.append(([
                self._puts.submit(contextvars.copy_context().run, self.put, doc.composition,
                                  output, common, retain)
                for output in doc.outputs], row))
        return out

    def _planned_row(self, doc: Rendered) -> dict[str, Any] | None:
        """The print piece row of a document from its rendered print output (its key and
        sha256 are known before the put). Raises UnprintablePiece."""
        output = next((o for o in doc.outputs if o.channel == Channel.PRINT), None)
        if output is None or self.print_queue is None:
            return None
        piece = self._piece(doc.composition,
                            [output_record(output, output_key(doc.composition, output))])
        if piece is None:
            return None
        return self.print_queue.piece_row(piece, doc.composition.created_at)

    # --- the commit ---------------------------------------------------------------------------

    def commit(self, documents: Sequence[Rendered]
               ) -> list[tuple[OutputRecord, ...] | BaseException]:
        """Store and index `documents`. -> per document its records, or the exception that
        failed it alone (ObjectConflict, ValueError, DuplicateDocument, CorrectionRefused). Raises
        ArchiveUnavailable when S3 or the index is down: nothing was indexed then."""
        outcomes: list[tuple[OutputRecord, ...] | BaseException] = []
        rows: list[dict[str, Any] | None] = []
        unavailable: ArchiveUnavailable | None = None
        for futures, row in self._put_all(documents):
            records: list[OutputRecord] = []
            failed: BaseException | None = None
            for future in futures:  # wait for all, so none runs on after we return
                try:
                    records.append(future.result())
                except ArchiveUnavailable as exc:
                    unavailable = unavailable or exc
                except (ObjectConflict, ValueError, UnprintablePiece) as exc:
                    failed = failed or exc
            outcomes.append(failed if failed is not None else tuple(records))
            rows.append(row)
        if unavailable is not None:
            raise unavailable
        statements: list[tuple[int, tuple[OutputRecord, ...], DocumentRecord,
                               Callable[[Connection], None] | None]] = []
        outboxes: list[OutboxWrite] = []
        superseded: Superseded = {}
        for n, (doc, records) in enumerate(zip(documents, outcomes, strict=True)):
            if not isinstance(records, tuple):
                continue
            try:  # built before the transaction, so a document's bad outbox fails it alone
                outbox = self._outbox(doc, records)
                row = None if _prints_by_delivery(outbox) else rows[n]
                statements.append((n, records, self._row(doc, records),
                                   self._also(doc, outbox=None, row=row,
                                              superseded=superseded)))
            except ValueError as exc:
                outcomes[n] = exc
                continue
            if outbox is not None:
                outboxes.append(outbox)
        for n, *_ in statements:
            self.before_index(documents[n].composition.document_id)
        chunk = [(row, also) for _, _, row, also in statements]
        if outboxes:  # the chunk's outboxes: one statement per table, in the same transaction
            chunk[0] = (chunk[0][0], self._chained(self._write_outboxes(outboxes), chunk[0][1]))
        try:
            self.index.add_many(chunk)
        except (DuplicateDocument, AlreadyCorrected):  # a racing run indexed some, or a
            # correction was refused: one at a time, each its fate
            superseded.clear()
            for n, records, _, _ in statements:
                try:
                    self._commit_one(documents[n], records, superseded)
                except DuplicateDocument as exc:
                    outcomes[n] = exc
                except AlreadyCorrected as exc:
                    outcomes[n] = CorrectionRefused.of(exc)
        log_superseded(documents, superseded)
        if statements and self.delivery is not None:
            self.delivery.notify(fallbacks=hands_over(outboxes))
        return outcomes

    def _commit_one(self, doc: Rendered, records: tuple[OutputRecord, ...],
                    superseded: Superseded) -> None:
        """One document in its own transaction; its print piece queued after it (idempotent,
        so a piece queued by an earlier run is no error) unless its print delivery will."""
        outbox = self._outbox(doc, records)
        took: Superseded = {}
        self.index.add(self._row(doc, records),
                       also=self._also(doc, outbox, superseded=took))
        superseded.update(took)  # committed
        if _prints_by_delivery(outbox):
            return
        piece = self._piece(doc.composition, records)
        if piece is not None and self.print_queue is not None:
            self.print_queue.enqueue(piece, doc.composition.created_at)

    def _row(self, doc: Rendered, records: tuple[OutputRecord, ...]) -> DocumentRecord:
        composition = doc.composition
        return DocumentRecord(
            tenant=composition.tenant,
            document_id=composition.document_id,
            customer_id=composition.recipient.customer_id,
            kind=composition.kind.value,
            layout_ref=composition.layout_ref,
            locale=composition.locale,
            created_at=composition.created_at,
            input_sha256=composition.input_sha256,
            idempotency_key=composition.idempotency_key,
            channel_plan=plan_text(composition.channel_plan),
            corrects_document_id=doc.corrects_document_id,
            retain_until=self.retain_until(composition),
            outputs=records,
            locale_decision=decision_text(composition),
            skipped_channels=skipped_records(composition.channel_plan),
            plan_reason=composition.channel_plan.reason or None,
        )

    def _outbox(self, doc: Rendered, records: tuple[OutputRecord, ...]) -> OutboxWrite | None:
        """The document's outbox rows (None when nothing is delivered from it)."""
        if self.delivery is None or doc.sealable is None:
            return None
        return self.delivery.outbox(doc.composition, doc.layout, records, doc.outputs,
                                    doc.sealable)

    def _write_outboxes(self, outboxes: Sequence[OutboxWrite]) -> Callable[[Connection], None]:
        delivery = self.delivery
        assert delivery is not None  # outboxes exist only with a delivery stage
        return lambda conn: delivery.write(conn, outboxes)

    @staticmethod
    def _chained(first: Callable[[Connection], None],
                 then: Callable[[Connection], None] | None) -> Callable[[Connection], None]:
        if then is None:
            return first

        def both(conn: Connection) -> None:
            first(conn)
            then(conn)
        return both

    def _also(self, doc: Rendered, outbox: OutboxWrite | None,
              row: Mapping[str, Any] | None = None, *, superseded: Superseded
              ) -> Callable[[Connection], None] | None:
        """The statements that commit with the document: its outbox rows (when given; a
        chunk writes its documents' outboxes together), its exposures, its piece row
        (when given: made before the objects were put) and, for a correction, the claim on
        the corrected document and what it takes back of it (`_supersede`)."""
        exposures = self.exposures(doc.composition) if self.exposures is not None else None
        write = self._write_outboxes([outbox]) if outbox is not None else None
        corrects = doc.corrects_document_id
        if write is None and row is None and exposures is None and corrects is None:
            return None

        def also(conn: Connection) -> None:
            if corrects is not None:
                self._supersede(conn, doc.composition, corrects, superseded)
            if write is not None:
                write(conn)
            if exposures is not None:
                exposures(conn)
            if row is not None:
                PrintQueue.enqueue_on(conn, row)
        return also

    def _supersede(self, conn: Connection, correction: Composition, corrected_id: str,
                   superseded: Superseded) -> None:
        """In the correction's index transaction (server.corrections.supersede)."""
        superseded[correction.document_id] = supersede(
            conn, self.index, correction, corrected_id,
            print_queue=self.print_queue is not None, delivery=self.delivery)

    def _piece(self, composition: Composition, records: Sequence[OutputRecord]
               ) -> QueuedPiece | None:
        """The print piece of a printed document (None when it is not printed)."""
        if self.print_queue is None or Channel.PRINT not in composition.channel_plan.channels:
            return None
        record = next((r for r in records if r.channel == Channel.PRINT.value), None)
        if record is None:
            return None
        address = composition.recipient.address
        options = composition.print_options
        return QueuedPiece(
            document_id=composition.document_id, tenant=composition.tenant,
            archive_key=record.key, pdf_sha256=record.sha256, pages=record.pages or 1,
            envelope=options.envelope, inserts=composition.inserts,
            country=address.country if address else "",
            postal_code=address.postal_code if address else "",
            profile=options.profile,
            sheet_rules=sheet_rules(options),
            insert_rules=composition.insert_rules,
        )

    def queues_print(self, tenant: str) -> bool:
        """Whether this step queues the tenant's print pieces itself: not when a print
        delivery does (a delivery stage routes print for the tenant, as Kanal's built-in
        `print` provider does unless configured otherwise)."""
        return self.print_queue is not None and not (
            self.delivery is not None
            and self.delivery.router.provider_for(tenant, Channel.PRINT.value))

    def requeue_print(self, composition: Composition, records: Sequence[OutputRecord]) -> None:
        """A document indexed before its piece was queued (a crash between the two in
        `_commit_one`): queue it now; enqueue is idempotent per document. Only where this
        step queues pieces (`queues_print`): a print delivery's outbox row commits with the
        index row, and the send-time rules may yet suppress its letter."""
        if not self.queues_print(composition.tenant):
            return
        piece = self._piece(composition, records)
        if piece is not None and self.print_queue is not None:
            self.print_queue.enqueue(piece, composition.created_at)

