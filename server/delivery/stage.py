"""The delivery stage's one entry point: `DeliveryStage`.

The archive step (server/archiving.py) calls `outbox(...)` while archiving a document: it
returns the document's deliveries (and its sealed compose input), which `write(...)` puts
inside the index transaction, so a document is indexed with its outbox or not at all (a
bulk chunk's outboxes are written together, one statement per table). Everything after
that happens here, in the server process that runs `start()`:
dispatchers per provider, receipts (the bounce listener, providers' own), fallbacks,
webhooks, and the read and operator API (`for_document`, `list`, `retry`, `cancel`,
`events_after`).

Settings (``[delivery]``)::

    [delivery]
    dispatch = true            # run dispatchers in this process (job workers never do)
    lease_seconds = 60         # an attempt not finished by then is presumed dead
    poll_seconds = 1.0
    sent_grace_days = 7        # how long a `sent` e-mail may still bounce
    purge_after_days = 30      # sealed compose inputs are gone by then at the latest
    purge_seconds = 60         # how often ended documents' inputs are purged
    keys = []                  # Fernet keys for sealed inputs (server.delivery.sealed)
    verp_secret = ""           # default: made once in state_dir
    bounce_listen = "127.0.0.1:2525"   # the DSN listener; empty: none
    [delivery.channels]        # channel -> provider ("print" is built in); per recipient
    email = "relay"            # for the mailbox: server.delivery.routing
    mailbox = { kivra = "kivra-se", digipost = "digipost-no" }
    [delivery.providers.relay] # see server.delivery.providers.*
    type = "smtp"
    [delivery.tenants.nordkort]    # return path, DKIM, webhooks, channel overrides
    [delivery.rules]               # server.delivery.rules
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from ulid import ULID

from archive.index import DocumentIndex
from archive.records import OutputRecord
from archive.store import ArchiveStore
from server import logs
from server.compose.layouts import Layout
from server.compose.model import Composition, Output
from server.delivery import metrics as delivery_metrics
from server.delivery import routing
from server.delivery.model import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Delivery,
    DeliveryEvent,
    Receipt,
    State,
)
from server.delivery.outbox import OutboxWrite, document_rows
from server.delivery.policy import RETRIED_AFTER, Limits
from server.delivery.routing import Router
from server.delivery.rules import ContactRules, CurrentContacts
from server.delivery.sealed import SealedInputs, load_keys, secret_file
from server.delivery.store import DeliveryStore
from server.errors import FailedPrecondition, InvalidInput, NotFound

if TYPE_CHECKING:  # what runs only in a dispatching server is imported by `start`
    from server.delivery.bounces import BounceListener
    from server.delivery.dispatcher import Dispatcher
    from server.delivery.fallback import FallbackRenderer, Fallbacks
    from server.delivery.webhooks import WebhookSender

log = logs.get_logger(__name__)

BUILTIN_PROVIDERS = {"print": {"type": "print", "channel": "print"}}


@dataclass(frozen=True)
class DeliverySettings:
    dispatch: bool = True
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0
    sent_grace_days: float = 7.0
    purge_after_days: float = 30.0
    purge_seconds: float = 60.0
    keys: tuple[str, ...] = ()
    verp_secret: str = ""
    bounce_listen: str = ""
    channels: Mapping[str, str] = field(default_factory=lambda: {"print": "print"})
    providers: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: dict(BUILTIN_PROVIDERS))
    tenants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    rules: ContactRules = field(default_factory=lambda: ContactRules.from_dict({}))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeliverySettings:
        providers = {**BUILTIN_PROVIDERS, **data.get("providers", {})}
        for name, spec in providers.items():
            Limits.from_dict(spec, f"delivery.providers.{name}")  # fail at start, not later
        channels = {"print": "print", **data.get("channels", {})}
        tenants = dict(data.get("tenants", {}))
        for where, mapping in [("delivery.channels", channels)] + [
                (f"delivery.tenants.{t}.channels", spec.get("channels", {}))
                for t, spec in tenants.items()]:
            routing.check(mapping, providers, where)
        return cls(
            dispatch=bool(data.get("dispatch", True)),
            lease_seconds=float(data.get("lease_seconds", 60)),
            poll_seconds=float(data.get("poll_seconds", 1.0)),
            sent_grace_days=float(data.get("sent_grace_days", 7)),
            purge_after_days=float(data.get("purge_after_days", 30)),
            purge_seconds=float(data.get("purge_seconds", 60)),
            keys=tuple(data.get("keys", ())), verp_secret=str(data.get("verp_secret", "")),
            bounce_listen=str(data.get("bounce_listen", "")), channels=channels,
            providers=providers, tenants=tenants,
            rules=ContactRules.from_dict(data.get("rules", {})),
        )

    @property
    def router(self) -> Router:
        return Router(self.channels, self.tenants, self.providers)

    def provider_for(self, tenant: str, channel: str, address: str = "",
                     syntax: str = "") -> str | None:
        return self.router.provider_for(tenant, channel, address, syntax)

    def expires_for(self, provider: str | None) -> timedelta:
        spec = self.providers.get(provider or "", {})
        return timedelta(hours=Limits.from_dict(spec, "delivery").expire_hours)


def verp_secret(configured: str, state_dir: Path) -> bytes:
    if configured:
        return configured.encode()
    return secret_file(state_dir / "delivery-verp.key",
                       lambda: secrets.token_urlsafe(32).encode())


class DeliveryStage:
    def __init__(self, settings: DeliverySettings, index: DocumentIndex, state_dir: Path, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.settings = settings
        self.index = index
        self.state_dir = state_dir
        self.clock = clock
        self.store = DeliveryStore(index.engine, [
            t for t, spec in settings.tenants.items() if spec.get("webhook_url")])
        self.sealed = SealedInputs(load_keys(settings.keys, state_dir))
        self.router = settings.router
        self.dispatcher: Dispatcher | None = None
        self.fallbacks: Fallbacks | None = None
        self.webhooks: WebhookSender | None = None
        self.bounces: BounceListener | None = None
        # what a customer told the sender since a document was made (server.journeys sets
        # its profiles' reader): read by the contact rules at send time
        self.current_contacts: Callable[[str, str], CurrentContacts | None] = (
            lambda tenant, customer_id: None)

    def create_schema(self) -> None:
        self.store.create_schema()

    # --- the orchestrator's call -------------------------------------------------------------

    def outbox(self, composition: Composition, layout: Layout, records: Sequence[OutputRecord],
               outputs: Sequence[Output], compose_input: Mapping[str, Any]) -> OutboxWrite:
        """This document's deliveries and its sealed compose input, for `write` inside the
        index transaction (`DocumentIndex.add(also=...)`)."""
        now = self.clock()
        tenant = composition.tenant
        facts = {r.channel: r.facts for r in records}
        routes = {c.value: self.router.route(composition, c.value, facts.get(c.value))
                  for c in composition.channel_plan.channels}
        expires = {r.provider: self.settings.expires_for(r.provider)
                   for r in routes.values() if r.provider}
        rows = document_rows(composition, layout, records, outputs, routes, now, expires)
        sealed = None
        if composition.channel_plan.fallbacks and rows:
            sealed = (tenant, composition.document_id, self.sealed.seal(compose_input),
                      now + timedelta(days=self.settings.purge_after_days))
        return OutboxWrite(tuple(rows), now, sealed)

    def write(self, conn: Connection, outboxes: Sequence[OutboxWrite]) -> None:
        """Write `outboxes` (one document's, or a bulk chunk's all at once) on `conn`."""
        self.store.insert_many(conn, outboxes)

    def notify(self, fallbacks: bool = True) -> None:
        """New rows were committed: dispatch now rather than at the next poll. `fallbacks`:
        whether some may hand over to a fallback at once (`outbox.hands_over`)."""
        if self.dispatcher is not None:
            self.dispatcher.notify(fallbacks)

    # --- running -------------------------------------------------------------------------------

    def start(self, archive: ArchiveStore, render: FallbackRenderer,
              services: Mapping[str, Any]) -> None:
        from server.delivery.bounces import BounceListener
        from server.delivery.dispatcher import Dispatcher
        from server.delivery.fallback import Fallbacks
        from server.delivery.providers import (  # noqa: F401  (register types)
            digipost,
            eboks,
            finvoice,
            kivra,
            peppol_ap,
            printing,
            smpp,
            sms_gateway,
            smtp,
        )
        from server.delivery.providers.base import Provider, ProviderContext, build
        from server.delivery.webhooks import WebhookSender

        settings = self.settings
        secret = verp_secret(settings.verp_secret, self.state_dir)
        context = ProviderContext(self.state_dir, settings.tenants, secret, services)
        providers: dict[str, Provider] = {
            name: build(name, spec, context) for name, spec in settings.providers.items()}
        if settings.tenants and any(t.get("webhook_url") for t in settings.tenants.values()):
            self.webhooks = WebhookSender(self.store, settings.tenants, clock=self.clock,
                                          poll_seconds=settings.poll_seconds)
            self.webhooks.start()
        on_event = self.webhooks.notify if self.webhooks else (lambda: None)
        self.fallbacks = Fallbacks(
            self.store, self.sealed, self.index, render, self.router,
            settings.expires_for, self.clock, on_event=lambda: (on_event(), self.notify()))
        self.dispatcher = Dispatcher(
            self.store, providers, archive, settings.rules, clock=self.clock,
            lease=timedelta(seconds=settings.lease_seconds),
            poll_seconds=settings.poll_seconds,
            sent_grace=timedelta(days=settings.sent_grace_days),
            purge_seconds=settings.purge_seconds,
            fallbacks=self.fallbacks.submit, on_event=on_event,
            current_contacts=lambda tenant, customer_id: self.current_contacts(
                tenant, customer_id))
        # The bounce listener first: the dispatcher's first housekeeping reaps what a crash
        # left `sending` and starts their in-doubt wait, which only means something while
        # the relay's DSNs (deferred while this server was down) can come in.
        if settings.bounce_listen:
            host, _, port = settings.bounce_listen.rpartition(":")
            self.bounces = BounceListener(host, int(port), secret, self.receipt)
            self.bounces.start()
        self.dispatcher.start()

    def stop(self) -> None:
        if self.bounces is not None:
            self.bounces.stop()
            self.bounces = None
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None
        if self.fallbacks is not None:
            self.fallbacks.close()
            self.fallbacks = None
        if self.webhooks is not None:
            self.webhooks.stop()
            self.webhooks = None

    def receipt(self, receipt: Receipt) -> bool:
        if self.dispatcher is None:
            raise FailedPrecondition("this server does not dispatch deliveries")
        return self.dispatcher.receipt(receipt)

    def printed(self, conn: Connection, tenant: str, document_ids: list[str],
                batch_id: str, printshop: str) -> None:
        """A print batch acknowledged (`BatchService.on_printed`, on its transaction): these
        documents' print deliveries become `delivered`, the print trade's receipt."""
        self.store.printed(conn, tenant, document_ids,
                           f"printed in print batch {batch_id} and handed to the post by "
                           f"print shop {printshop}", self.clock())

    def supersede(self, conn: Connection, tenant: str, document_id: str, correction_id: str,
                  *, print_withdrawn: bool = False) -> list[str]:
        """A correction of the document commits (server.archiving, on its transaction): the
        document's deliveries not yet handed to a provider are cancelled, `failed` with the
        reason "superseded by correction <id>" (`DeliveryStore.supersede`). -> their ids"""
        return self.store.supersede(conn, tenant, document_id,
                                    f"superseded by correction {correction_id}", self.clock(),
                                    print_withdrawn=print_withdrawn)

    # --- reading and operating -----------------------------------------------------------------

    def for_document(self, tenant: str, document_id: str) -> list[Delivery]:
        return self.store.for_document(tenant, document_id)

    def for_documents(self, tenant: str, document_ids: Sequence[str]
                      ) -> dict[str, list[Delivery]]:
        """Each document's deliveries without events or attempts, in one read (a listing's
        page: `OutboxQueries.for_documents`)."""
        return self.store.for_documents(tenant, document_ids)

    def get(self, tenant: str, delivery_id: str) -> Delivery:
        delivery = self.store.get(tenant, delivery_id)
        if delivery is None:
            raise NotFound(f"no delivery {delivery_id!r}")
        return delivery

    def list(self, tenant: str, page_token: str = "", **filters: Any
             ) -> tuple[list[Delivery], str]:
        """One page of the tenant's deliveries, newest first, and the token of the next page
        ("" on the last): the last delivery id of this page and the listing it belongs to,
        so a page never repeats or skips a row however many are added meanwhile (keyset
        paging). `InvalidInput` for a page size outside 1..MAX_PAGE_SIZE (1000), an unknown
        state, or a token that is malformed or of another listing (other filters or tenant)."""
        limit = filters.get("limit", DEFAULT_PAGE_SIZE)
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidInput.field("page_size", f"must be within 1..{MAX_PAGE_SIZE}")
        bad = [s for s in filters.get("states", ()) if s not in State.__members__.values()]
        if bad:
            raise InvalidInput.field("states", f"unknown state(s) {bad}")
        # The token names where the page ended and which listing it belongs to (the tenant
        # and the filters), so changed filters are refused rather than silently mixed; the
        # query is the tenant's whatever a token says, so a made-up one shows nothing more.
        listing = hashlib.sha256(json.dumps(
            [tenant, sorted(filters.get("states", ())), filters.get("document_id", ""),
             bool(filters.get("dead_letter"))]).encode()).hexdigest()[:16]
        before = ""
        if page_token:
            before, _, belongs = page_token.partition(".")
            try:
                ULID.from_str(before)
            except ValueError as exc:
                raise InvalidInput.field("page_token", "malformed") from exc
            if belongs != listing:
                raise InvalidInput.field("page_token", "not a page token of this listing "
                                         "(filters changed or modified)")
        page = self.store.list(tenant, before=before, **{**filters, "limit": limit + 1})
        more = len(page) > limit
        page = page[:limit]
        return page, f"{page[-1].delivery_id}.{listing}" if more else ""


    def retry(self, tenant: str, delivery_id: str, who: str) -> Delivery:
        """An operator sends a failed, expired, bounced or suppressed delivery again now
        (with a fresh attempt budget, `policy.attempts_spent`; one that had no provider gets
        today's, and its plan's fallbacks back). Its attempts keep their numbers: the next
        one is numbered after the last. FailedPrecondition when the delivery's document was
        corrected: the correction replaced it (its waiting deliveries were superseded,
        `supersede`), so none of its deliveries goes out again. That check and the move
        are one transaction, holding the document's row as a correction's commit does
        (`DocumentIndex.first_correction`), so a correction committing meanwhile still
        supersedes the retried delivery."""
        delivery = self.get(tenant, delivery_id)
        retryable = (State.FAILED, State.EXPIRED, State.BOUNCED, State.SUPPRESSED)
        now = self.clock()
        row = self.store.row(delivery_id) or {}
        details = json.loads(row.get("details") or "{}")
        details[RETRIED_AFTER] = row.get("attempts", 0)
        extra: dict[str, Any] = {"details": json.dumps(details)}
        if not delivery.provider:
            provider = self.settings.provider_for(
                tenant, delivery.channel, delivery.recipient,
                str(details.get("facts", {}).get("syntax", "")))
            if provider is None:
                raise FailedPrecondition(f"no {delivery.channel} provider is configured")
            planned = details.get("plan_fallbacks", [])
            extra.update(provider=provider, fallbacks=",".join(planned))
        with self.store.engine.begin() as conn:
            corrected_by = DocumentIndex.first_correction(conn, tenant, delivery.document_id)
            if corrected_by is not None:
                raise FailedPrecondition(
                    f"document {delivery.document_id} was corrected by {corrected_by}: its "
                    f"deliveries are superseded (the correction is delivered instead)")
            moved = self.store.move(delivery_id, State.QUEUED, f"retried by {who}", now,
                                    only_from=retryable, next_attempt_at=now,
                                    dead_letter=False, expires_at=now + timedelta(days=1),
                                    conn=conn, **extra)
        if not moved:
            raise FailedPrecondition(
                f"delivery {delivery_id} cannot be retried in its state "
                f"(only {', '.join(s.value for s in retryable)})")
        self.notify()
        return self.get(tenant, delivery_id)

    def cancel(self, tenant: str, delivery_id: str, who: str) -> Delivery:
        """An operator stops a queued delivery: `failed`, no fallback."""
        self.get(tenant, delivery_id)
        if not self.store.move(delivery_id, State.FAILED, f"cancelled by {who}", self.clock(),
                               only_from=(State.QUEUED,), fallbacks=""):
            raise FailedPrecondition(f"delivery {delivery_id} is not queued; only a queued "
                                     "delivery can be cancelled")
        cancelled = self.get(tenant, delivery_id)
        delivery_metrics.failed(cancelled.provider, State.FAILED.value)
        return cancelled

    def events_after(self, tenant: str, after: int, document_id: str = ""
                     ) -> list[DeliveryEvent]:
        return self.store.events_after(tenant, after, document_id=document_id)
