"""The path of one real-time document: compose -> render -> archive -> index (+ outbox).

`DocumentService` is the domain behind the `Documents` API. It knows the order of the
steps and what makes them safe to retry; it knows nothing of gRPC.

Write order (server.archiving, the archive step): every object is stored in S3 first, the
index row last, in one transaction. An outage between the two leaves objects without an
index row (which the archive's reconciler can find and repair), never an index row pointing
at nothing. The delivery stage's outbox rows and the print piece are written in that same
transaction (server.delivery, server.printing), so every indexed document has its deliveries
and its piece, and neither exists without its document.

Bulk chunks use the same path in two halves: `render_as` per record (compose + render), then
`commit` for the whole chunk (objects put concurrently, one index transaction for all).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from archive.errors import (
    AlreadyCorrected,
    ArchiveDeadline,
    ArchiveUnavailable,
    DuplicateDocument,
)
from archive.index import DocumentIndex
from archive.records import DocumentRecord, OutputRecord, SkippedRecord
from archive.retention import RetentionPolicy
from archive.store import ArchiveStore
from server import logs, metrics
from server.abandoning import Abandonments
from server.archiving import ArchiveStep, Rendered, object_metadata, output_record
from server.archiving import decision_text as _decision_text
from server.channels import DocumentRenderer
from server.compose.composer import ComposeRequest, compose, input_hash, parse_data, resolve_locale
from server.compose.layouts import Layout, LayoutRegistry
from server.compose.model import Channel, ChannelPlan, Composition, Output, SkippedChannel
from server.compose.rules import Rule, tenant_rules
from server.corrections import CorrectionRefused
from server.delivery.stage import DeliveryStage
from server.errors import (
    Conflict,
    DeadlineExceeded,
    InvalidInput,
    NotFound,
    TooLarge,
    Unavailable,
)
from server.printing.queue import PrintQueue

log = logs.get_logger(__name__)

@dataclass(frozen=True, slots=True)
class ComposeInput:
    tenant: str
    layout_id: str
    data: str
    layout_version: str | None = None
    locale: str | None = None
    channels: Sequence[Channel] = ()
    idempotency_key: str | None = None
    preview: bool = False
    corrects_document_id: str | None = None  # the archived document this one corrects
    print_profile: str = ""  # print-shop profile id (a job's); empty: the tenant's
    # the sender's knowledge of the recipient beyond the data, and whether the plan keeps
    # its fallbacks (a journey's send: server.compose.composer.ComposeRequest says why)
    consents: tuple[str, ...] = ()
    opt_outs: tuple[str, ...] = ()
    fallbacks: bool = True


@dataclass(frozen=True, slots=True)
class ComposeResult:
    document_id: str
    layout_version: str
    created_at: datetime
    plan: ChannelPlan
    outputs: tuple[OutputRecord, ...]  # as stored (key is empty in a preview)
    contents: dict[Channel, bytes]  # the bytes themselves, in a preview only
    replayed: bool = False
    locale: str = ""  # the locale the document was composed in
    locale_decision: str | None = None  # how, e.g. "rule: $.currency = SEK -> SE"


def plan_from_text(text: str, reason: str = "",
                   skipped: Sequence[SkippedRecord] = ()) -> ChannelPlan:
    channels, _, fallbacks = text.partition(">")
    return ChannelPlan(
        channels=tuple(Channel(c) for c in channels.split(",") if c),
        fallbacks=tuple(Channel(c) for c in fallbacks.split(",") if c),
        reason=reason,
        skipped=tuple(SkippedChannel(Channel(s.channel), s.reason, s.field) for s in skipped),
    )


class _KeyedLocks:
    """One lock per idempotency key, so two retries racing in this process run one after
    the other and the second finds the first's result."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, tenant: str, key: str) -> threading.Lock:
        with self._guard:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault((tenant, key), threading.Lock())


class DocumentService:
    def __init__(
        self,
        layouts: LayoutRegistry,
        renderers: DocumentRenderer,
        store: ArchiveStore,
        index: DocumentIndex,
        retention: RetentionPolicy,
        *,
        max_data_bytes: int = 4 * 1024 * 1024,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: str(ULID()),
        print_queue: PrintQueue | None = None,  # server.printing.queue: print pieces go here
        rules: Sequence[Rule] = (),  # settings insert/campaign rules (server.compose.rules)
        plan_rules: Mapping[str, Any] | None = None,
        delivery: DeliveryStage | None = None,  # server.delivery: the outbox goes here
        # server.surveys.experiments: the A/B variants a document shows, written with it
        exposures: Callable[[Composition], Callable[[Any], None] | None] | None = None,
    ):
        self.layouts = layouts
        self.renderers = renderers
        self.store = store
        self.index = index
        self.retention = retention
        self.max_data_bytes = max_data_bytes
        self.clock = clock
        self.new_id = new_id
        self.print_queue = print_queue
        self.rules = tuple(rules)
        self.plan_rules = plan_rules or {}
        self.delivery = delivery
        self.archiving = ArchiveStep(store, index, retention, print_queue=print_queue,
                                     delivery=delivery, exposures=exposures)
        self._idempotency_locks = _KeyedLocks()
        self.abandonments = Abandonments(self.archiving)  # refused calls' objects (see there)

    @property
    def before_index(self) -> Callable[[str], None]:
        """A test hook called with each document id after its objects are stored and before
        its index transaction (raise in it to simulate a crash there)."""
        return self.archiving.before_index

    @before_index.setter
    def before_index(self, hook: Callable[[str], None]) -> None:
        self.archiving.before_index = hook

    # --- compose ---------------------------------------------------------------------------

    def compose(self, request: ComposeInput) -> ComposeResult:
        self._check_request(request)
        if request.idempotency_key and not request.preview:
            with self._idempotency_locks.get(request.tenant, request.idempotency_key):
                replay = self._replay(request)
                return replay if replay is not None else self._compose_new(request)
        return self._compose_new(request)

    def _check_request(self, request: ComposeInput) -> None:
        if not request.tenant:
            raise InvalidInput.field("tenant", "is required")
        if not request.layout_id:
            raise InvalidInput.field("layout_id", "is required")
        size = len(request.data.encode("utf-8"))
        if size > self.max_data_bytes:
            raise TooLarge(f"data_json is {size} bytes; the limit is {self.max_data_bytes}")
        if request.idempotency_key is not None and len(request.idempotency_key) > 200:
            raise InvalidInput.field("idempotency_key", "must be at most 200 characters")

    def compose_as(self, request: ComposeInput, document_id: str, now: datetime
                   ) -> ComposeResult:
        """Compose with an id and a time the caller decided (bulk jobs derive both from the
        job and the record), so a re-run makes the same document with the same bytes. The
        index row is the commit point: if it exists, its record is returned (replayed);
        objects stored without a row are re-put, which is a no-op for identical bytes."""
        with logs.bound(tenant=request.tenant, document_id=document_id):
            rendered = self.render_as(request, document_id, now)
            if isinstance(rendered, ComposeResult):
                return rendered
            [outcome] = self.commit([rendered])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def render_as(self, request: ComposeInput, document_id: str, now: datetime, *,
                  indexed: bool | None = None) -> ComposeResult | Rendered:
        """The first half of `compose_as`: the replayed result when the document is indexed
        already, else the document composed and rendered, for `commit` (a bulk chunk
        commits all its documents at once). `indexed=False`: the caller knows it is not
        (one query for a whole chunk, `indexed_ids`), so no lookup is made."""
        self._check_request(request)
        if indexed is not False:
            try:
                existing = self.index.get(request.tenant, document_id)
            except ArchiveUnavailable as exc:
                raise Unavailable(f"document index unavailable: {exc}") from exc
            if existing is not None:
                self._requeue_print(request, existing)
                return self._result_from_record(existing, replayed=True)
        layout = self.layouts.get(request.layout_id, request.layout_version)
        with _document_logs(request, layout, document_id):
            rendered = self._render(request, layout, document_id, now)
        assert isinstance(rendered, Rendered)
        return rendered

    def indexed_ids(self, tenant: str, document_ids: Sequence[str]) -> set[str]:
        """Which of these documents are indexed already (one query)."""
        try:
            return self.index.known_ids(tenant, document_ids)
        except ArchiveUnavailable as exc:
            raise Unavailable(f"document index unavailable: {exc}") from exc

    def commit(self, rendered: Sequence[Rendered]) -> list[ComposeResult | BaseException]:
        """Store and index rendered documents, all in one index transaction (server.archiving).
        -> per document its result, or what failed it alone (ObjectConflict, ValueError,
        Conflict). Raises Unavailable when S3 or the index is down, DeadlineExceeded when
        the call's deadline left S3 no time (archive.bounded_calls): nothing was indexed."""
        try:
            outcomes = self.archiving.commit(rendered)
        except ArchiveDeadline as exc:
            log.warning("archive cut by the call's deadline", error=str(exc))
            raise DeadlineExceeded(
                "the call's deadline passed while the document was archived, nothing was "
                f"indexed: retry with a longer deadline ({exc})") from exc
        except ArchiveUnavailable as exc:
            log.warning("archive unavailable", error=str(exc))
            raise Unavailable(f"e-archive unavailable, nothing was indexed: {exc}") from exc
        results: list[ComposeResult | BaseException] = []
        for doc, outcome in zip(rendered, outcomes, strict=True):
            composition = doc.composition
            if isinstance(outcome, DuplicateDocument):
                results.append(self._raced(composition, doc.corrects_document_id, outcome))
                continue
            if isinstance(outcome, CorrectionRefused):  # lost to a correction committed
                # meanwhile: its stored objects must never be indexed (server.abandoning)
                self.abandonments.mark(doc, str(outcome))
            if isinstance(outcome, BaseException):
                results.append(outcome)
                continue
            log.info("composed", document_id=composition.document_id,
                     channels=[o.channel.value for o in doc.outputs],
                     pages=sum(o.facts.get("pages", 0) for o in doc.outputs),
                     locale=composition.locale)
            results.append(ComposeResult(
                composition.document_id, doc.layout.version, composition.created_at,
                composition.channel_plan, outcome, {}, locale=composition.locale,
                locale_decision=_decision_text(composition)))
        return results

    def _raced(self, composition: Composition, corrects: str | None, error: DuplicateDocument
               ) -> ComposeResult | BaseException:
        """Another run indexed this document (same id: the same bulk record) or took its
        idempotency key first; the first one stands (replayed when it is the same request:
        same input hash and the same corrected document, else Conflict)."""
        try:
            record = self.index.get(composition.tenant, composition.document_id)
        except ArchiveUnavailable as exc:
            raise Unavailable(f"document index unavailable: {exc}") from exc
        if (record is not None and record.input_sha256 == composition.input_sha256
                and _same_correction(record, corrects)):
            return self._result_from_record(record, replayed=True)
        # Another server won a race on the same idempotency key; its document stands.
        conflict = Conflict(f"idempotency key {composition.idempotency_key!r} is in use")
        conflict.__cause__ = error
        return conflict

    def _composition(self, request: ComposeInput, layout: Layout, document_id: str,
                     now: datetime) -> Composition:
        return compose(ComposeRequest(
            tenant=request.tenant, layout=layout, data=request.data, document_id=document_id,
            now=now, locale=request.locale, channels=tuple(request.channels),
            idempotency_key=request.idempotency_key,
            rules=tenant_rules(self.rules, request.tenant), plan_rules=self.plan_rules,
            print_profile=request.print_profile, consents=request.consents,
            opt_outs=request.opt_outs, fallbacks=request.fallbacks,
        ))

    def _requeue_print(self, request: ComposeInput, record: DocumentRecord) -> None:
        """A crash or an outage between the index row and the print queue: a retry (job
        chunk re-run or idempotent Compose) queues the piece now; enqueue is idempotent per
        document. Composing again is cheap: nothing is rendered."""
        if not self.archiving.queues_print(request.tenant) or not any(
                o.channel == Channel.PRINT.value for o in record.outputs):
            return
        layout = self.layouts.get(request.layout_id, request.layout_version)
        composition = self._composition(request, layout, record.document_id, record.created_at)
        self.archiving.requeue_print(composition, record.outputs)

    def _compose_new(self, request: ComposeInput) -> ComposeResult:
        layout = self.layouts.get(request.layout_id, request.layout_version)
        document_id = self.new_id()
        with _document_logs(request, layout, document_id):
            rendered = self._render(request, layout, document_id, self.clock())
            if isinstance(rendered, ComposeResult):  # a preview
                return rendered
            try:
                [outcome] = self.commit([rendered])
            except (Unavailable, DeadlineExceeded) as exc:  # its puts may land: never index
                self.abandonments.mark(rendered, str(exc))
                raise
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _render(self, request: ComposeInput, layout: Layout, document_id: str, now: datetime
                ) -> Rendered | ComposeResult:
        """Compose and render; a preview's result (bytes, nothing stored) comes back at once."""
        composition = self._composition(request, layout, document_id, now)
        # the plan's fallbacks that carry the print PDF are asked its pages too: one that
        # cannot carry the document moves to the plan's `skipped` (fallback_check)
        rendering = self.renderers.render_planned(composition, layout)
        composition, outputs = rendering.applied_to(composition), rendering.outputs
        metrics.documents_rendered(layout.id, outputs)
        if request.preview:
            log.info("composed preview", channels=[o.channel.value for o in outputs])
            return ComposeResult(
                document_id, layout.version, composition.created_at, composition.channel_plan,
                tuple(output_record(o, "") for o in outputs),
                {o.channel: o.content for o in outputs},
                locale=composition.locale, locale_decision=_decision_text(composition),
            )
        corrects = self._corrects(request, composition)
        return Rendered(composition, layout, tuple(outputs), corrects,
                        _sealable(request, composition, corrects))

    def _replay(self, request: ComposeInput) -> ComposeResult | None:
        """The first result for this idempotency key, if the data is the same."""
        try:
            record = self.index.find_by_idempotency_key(request.tenant, request.idempotency_key)
        except ArchiveUnavailable as exc:
            raise Unavailable(f"document index unavailable: {exc}") from exc
        if record is None:
            return None
        layout = self.layouts.get(request.layout_id, request.layout_version)
        locale = resolve_locale(layout, request.locale)
        fingerprint = input_hash(layout.id, locale, request.channels, parse_data(request.data))
        first_id, _, first_version = record.layout_ref.partition("@")
        # a version the caller names must be the one the first call composed; no version
        # replays whatever the first call got (a retry after a new version was published)
        asked_other_version = bool(request.layout_version) and first_version != layout.version
        if (fingerprint != record.input_sha256 or first_id != layout.id or asked_other_version
                or not _same_correction(record, request.corrects_document_id)):
            raise Conflict(
                f"idempotency key {request.idempotency_key!r} was already used for document "
                f"{record.document_id} ({record.layout_ref}) with a different layout, layout "
                f"version, locale, channels or data, or another corrects_document_id; use a "
                f"new key for a new document"
            )
        self._requeue_print(request, record)
        return self._result_from_record(record, replayed=True)

    # --- archive -----------------------------------------------------------------------------

    def _corrects(self, request: ComposeInput, composition: Composition) -> str | None:
        """The corrected document's id, if it is an archived document of the same tenant and
        customer (anything else reads as unknown, so ids do not leak), composed with the same
        layout (any version): a correction replaces that document, so a reminder or a credit
        note never stands in for a card invoice (QA). InvalidInput on corrects_document_id;
        CorrectionRefused when the document was corrected already (a chain stays linear:
        correct its correction instead). The index checks that again in the transaction
        that commits the correction (server.archiving), where two racing corrections meet."""
        if not request.corrects_document_id:
            return None
        corrected = self.index.get(request.tenant, request.corrects_document_id)
        if corrected is None or corrected.customer_id != composition.recipient.customer_id:
            raise InvalidInput.field(
                "corrects_document_id", "no archived document with this id for this customer")
        corrected_layout = corrected.layout_ref.partition("@")[0]
        if corrected_layout != request.layout_id:
            raise InvalidInput.field(
                "corrects_document_id",
                f"document {corrected.document_id} is a {corrected_layout} document; its "
                f"correction replaces it, so it must be a {corrected_layout} too, not a "
                f"{request.layout_id}")
        try:
            corrected_by = self.index.corrected_by(request.tenant, [corrected.document_id])
        except ArchiveUnavailable as exc:
            raise Unavailable(f"document index unavailable: {exc}") from exc
        if corrected_by[corrected.document_id]:
            raise CorrectionRefused.of(AlreadyCorrected(
                corrected.document_id, corrected_by[corrected.document_id][0]))
        return corrected.document_id

    # --- a channel rendered later (the delivery stage's fallbacks) ----------------------------

    def render_fallback(self, compose_input: Mapping[str, Any], channel: str
                        ) -> tuple[Composition, Layout, Output, OutputRecord]:
        """Compose a document again from its sealed input (same id, same time: the same
        Composition), render one more channel and store its object. The caller indexes it.
        -> (composition, layout, output, its record)"""
        request = ComposeInput(
            tenant=compose_input["tenant"], layout_id=compose_input["layout_id"],
            layout_version=compose_input["layout_version"], data=compose_input["data"],
            # as requested (None: decided again): the locale decision comes back too
            locale=compose_input.get("request_locale", compose_input["locale"]),
            channels=tuple(Channel(c) for c in compose_input["channels"]),
            idempotency_key=compose_input.get("idempotency_key"),
            print_profile=compose_input.get("print_profile", ""),
            consents=tuple(compose_input.get("consents", ())),
            opt_outs=tuple(compose_input.get("opt_outs", ())))
        layout = self.layouts.get(request.layout_id, request.layout_version)
        with _document_logs(request, layout, compose_input["document_id"]):
            composition = self._composition(request, layout, compose_input["document_id"],
                                            datetime.fromisoformat(compose_input["created_at"]))
            common = object_metadata(composition, compose_input.get("corrects_document_id"))
            only = replace(composition, channel_plan=ChannelPlan((Channel(channel),),
                                                                 reason="delivery fallback"))
            [output] = [o for o in self.renderers.render(only, layout)
                        if o.channel == Channel(channel)]
            try:
                record = self.archiving.put(composition, output, common,
                                            self.archiving.retain_until(composition))
            except ArchiveUnavailable as exc:
                raise Unavailable(f"e-archive unavailable: {exc}") from exc
        return composition, layout, output, record

    # --- read ---------------------------------------------------------------------------------

    def get(self, tenant: str, document_id: str) -> DocumentRecord:
        try:
            record = self.index.get(tenant, document_id)
        except ArchiveUnavailable as exc:
            raise Unavailable(f"document index unavailable: {exc}") from exc
        if record is None:
            raise NotFound(f"no document {document_id!r}")
        return record

    def _result_from_record(self, record: DocumentRecord, replayed: bool) -> ComposeResult:
        return ComposeResult(
            document_id=record.document_id,
            layout_version=record.layout_ref.split("@", 1)[1],
            created_at=record.created_at,
            plan=plan_from_text(record.channel_plan, record.plan_reason or "",
                                record.skipped_channels),
            outputs=record.outputs,
            contents={},
            replayed=replayed,
            locale=record.locale,
            locale_decision=record.locale_decision,
        )


def _document_logs(request: ComposeInput, layout: Layout, document_id: str
                   ) -> AbstractContextManager[None]:
    """The log fields of one document (tenant, layout, document id) on every line logged
    while it is made, and put back as they were after it (server.logs `bound`): a bulk
    chunk's "chunk done" names no document, a server thread's next call not this one's."""
    return logs.bound(tenant=request.tenant, layout=layout.ref, document_id=document_id)


def _sealable(request: ComposeInput, composition: Composition,
              corrects_document_id: str | None) -> dict[str, Any]:
    """What rebuilds this exact Composition later (server.delivery.sealed keeps it)."""
    return {
        "tenant": composition.tenant, "layout_id": composition.layout_id,
        "layout_version": composition.layout_version, "locale": composition.locale,
        "request_locale": request.locale, "data": request.data,
        "channels": [c.value for c in request.channels],
        "idempotency_key": request.idempotency_key, "document_id": composition.document_id,
        "created_at": composition.created_at.isoformat(),
        "corrects_document_id": corrects_document_id,
        "print_profile": request.print_profile,
        "consents": list(request.consents), "opt_outs": list(request.opt_outs),
    }


def _same_correction(record: DocumentRecord, corrects_document_id: str | None) -> bool:
    """Whether a request replaying `record` (same idempotency key, or the same bulk record)
    corrects the document the first one corrected ("" and None: none). Compared beside the
    input hash, not hashed into it, so the stored hashes of documents indexed before stay
    valid and a request without a correction fingerprints as it always has."""
    return (record.corrects_document_id or None) == (corrects_document_id or None)
