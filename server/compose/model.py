"""The intermediate model: a frozen, channel-neutral Composition built once per document.

Every channel renderer reads a Composition and nothing else; whatever a channel needs
(totals, VAT breakdown, payment reference, formatted amounts, the channel plan, the print
options, campaign areas and inserts) is decided while the Composition is built, exactly once.

The business content of invoices and credit notes follows the EN 16931 semantic model
(the BT-/BG- numbers in the comments name its business terms) so that the e-invoice
renderers (Peppol BIS 3 UBL, CII, Finvoice) can map it one to one.

Money is always `Decimal`. Amounts in the model are already rounded to the currency's
minor unit where EN 16931 requires it (line net amounts, totals, VAT amounts).
"""

from __future__ import annotations

import copyreg
import enum
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from server.compose.en16931 import Invoice


def _read_only(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


# Compositions cross process boundaries (real-time render pool, job workers); their
# read-only mappings travel as the dicts they wrap.
copyreg.pickle(MappingProxyType, lambda proxy: (_read_only, (dict(proxy),)))

_Frozen = TypeVar("_Frozen", bound=type)


def pickled_by_fields(cls: _Frozen) -> _Frozen:
    """Pickle a frozen, slotted dataclass as its own `__getstate__` / `__setstate__` do (a
    tuple of its field values in field order, set back with `object.__setattr__`), with the
    field names looked up once per class: the dataclass's own look them up per object with
    `dataclasses.fields`, which was most of the CPU the server spent sending a Composition
    (some 60 objects for a card invoice's lines) to a render process, and the render
    process reading it. Apply above `@dataclass(frozen=True, slots=True)`."""
    names = tuple(f.name for f in fields(cls))
    values = operator.attrgetter(*names)

    def __getstate__(self: Any) -> tuple[Any, ...]:
        return values(self) if len(names) > 1 else (values(self),)

    def __setstate__(self: Any, state: tuple[Any, ...]) -> None:
        for name, value in zip(names, state, strict=False):  # as dataclasses does
            object.__setattr__(self, name, value)

    cls.__getstate__ = __getstate__  # type: ignore[attr-defined]
    cls.__setstate__ = __setstate__  # type: ignore[attr-defined]
    return cls


class DocumentKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    REMINDER = "reminder"  # payment reminder / collection notice
    STATEMENT = "statement"
    LETTER = "letter"

    @property
    def has_invoice(self) -> bool:
        """Kinds whose business content is an EN 16931 invoice."""
        return self in (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE)


class Channel(enum.StrEnum):
    PRINT = "print"  # print PDF (and its archived PDF/A copy)
    EMAIL = "email"
    SMS = "sms"
    EINVOICE = "einvoice"
    # The print PDF, delivered to the recipient's digital mailbox (Digipost, Kivra, e-Boks)
    # with its payment fields: a channel of its own in the plan, rendered as the print PDF.
    MAILBOX = "mailbox"


# --- parties and addresses -------------------------------------------------------------


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PostalAddress:
    """A structured postal address (EN 16931 BG-5 / BG-8)."""

    lines: tuple[str, ...]  # street lines, c/o, PO box
    postal_code: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    subdivision: str | None = None  # EN 16931 BT-39 / BT-54 country subdivision (region)

    def window_lines(self, name: str, sender_country: str | None = None) -> tuple[str, ...]:
        """The lines printed in the envelope window, by the destination's postal rules
        (server/compose/countries.py): name, street lines, postcode and town in the
        operator's order (the UK postcode on its own line, the town in capitals where the
        operator asks), and the country's name only when the letter crosses a border."""
        from server.compose.countries import address_lines  # countries imports no model

        return address_lines(name, self.lines, self.postal_code, self.city, self.country,
                             sender_country)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Recipient:
    """Who the document goes to, and how they can be reached."""

    customer_id: str
    name: str
    address: PostalAddress | None = None
    email: str | None = None
    mobile: str | None = None  # E.164, e.g. "+4791234567"
    national_id: str | None = None  # personal id (fødselsnummer / personnummer)
    # the country of the scheme that checked `national_id` ("NO": a fødselsnummer, also of
    # a customer living in Sweden); None: taken as given (server/compose/identifiers.py)
    national_id_country: str | None = None
    org_number: str | None = None
    peppol_id: str | None = None  # "0192:923609016"
    mailbox_ids: Mapping[str, str] = field(default_factory=dict)  # {"digipost": "...", ...}
    preferences: tuple[str, ...] = ()  # e.g. ("paper_invoice",), ("digital_only",)
    consents: tuple[str, ...] = ()  # e.g. ("email", "sms", "marketing")
    # what the customer opted out of, as the sender knows it (a journey's customer profile:
    # a channel, "marketing", "survey"); the delivery stage's contact rules honour it with
    # the opt-outs it records itself (server.delivery.rules)
    opt_outs: tuple[str, ...] = ()
    # a Finnish consumer's e-invoice address and its intermediator's BIC, from their
    # e-invoice receiving proposal (Finvoice InvoiceRecipientAddress,
    # InvoiceRecipientIntermediatorAddress): where the Finvoice operator network takes a
    # Finvoice (server.delivery.providers.finvoice); None: a Finvoice reaches nobody
    finvoice_address: str | None = None
    finvoice_intermediator: str | None = None


# --- payment reference ----------------------------------------------------------------


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PaymentReference:
    """A structured payment reference with its check digit already verified.

    scheme: "kid_mod10" | "kid_mod11" (NO), "ocr" | "ocr_luhn" (SE), "fik" | "fik73" |
    "fik75" (DK), "fi" (FI national), "rf" (ISO 11649), "gb" (UK payer reference), "text"
    (unstructured remittance: DE/AT Verwendungszweck, PL tytuł przelewu); see
    server/compose/references.py. `value` is what the payer types; `display` is grouped
    for reading.
    """

    scheme: str
    value: str
    display: str


# --- plans ------------------------------------------------------------------------------


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SkippedChannel:
    """A channel the plan would have used that cannot carry this document, and why: an SMS
    that fits its segments in no variant, an email HTML over the clipping limit, an
    e-invoice the recipient's Peppol id or the invoice's data cannot make (server/compose/plan.py),
    a fallback carrying the print PDF whose page cannot hold the text
    (server/channels/fallback_check.py).
    """

    channel: Channel
    reason: str
    field: str = ""  # the data's JSON path or the layout setting behind it, when known


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """Which channels a document goes to, decided once.

    `channels` are all rendered now. `fallbacks` is the ordered list a delivery step moves
    through when the primary delivery channel fails (e.g. email bounce -> print).
    `skipped` are the channels left out because they cannot carry this document.
    """

    channels: tuple[Channel, ...]
    fallbacks: tuple[Channel, ...] = ()
    reason: str = ""  # which rule decided, for the index and for support
    skipped: tuple[SkippedChannel, ...] = ()


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PrintOptions:
    """How the document asks to be printed, decided once from the layout's `[print]`
    section and the data; the print queue carries all of it to the imposer
    (server/printing/sheets.py plans the sheets from it).

    Pages are 1-based, negative from the end (-1 = the last page): the page count is
    known only after rendering.
    """

    profile: str = ""  # print-shop production profile (a job's); empty: the tenant's
    envelope: str = "C5"
    duplex: bool = False  # False: simplex sheets (blank backs) even on a duplex line
    color: bool = False
    front_pages: tuple[int, ...] = ()  # pages that must start on a sheet front
    blank_back_pages: tuple[int, ...] = ()  # pages whose back must stay blank


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class LocaleDecision:
    """Which locale a document was composed in, and what decided it (server/compose/locales.py).

    source: "request" (the request's `locale`), "data" (the data's own `locale` field),
    "rule" (a `[[locale.rules]]` entry of the layout manifest) or "default" (the layout's
    `default_locale`). `field` is where the deciding value sits ("locale", "$.locale",
    "$.currency", ...), for error messages; `reason` says it in words for support.
    """

    locale: str  # BCP 47, e.g. "sv-SE"
    source: str
    field: str
    reason: str

    def __str__(self) -> str:
        """'rule: $.currency = SEK -> region SE', as the index and GetDocument show it."""
        return f"{self.source}: {self.reason}"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class CampaignArea:
    """A message printed or shown in a layout's campaign slot, chosen by rules."""

    area: str  # slot name in the layout, e.g. "main"
    campaign_id: str
    title: str
    body: str
    # A/B: the experiment this area's text was chosen in and this customer's variant
    # (server/compose/variants.py); empty for a campaign without variants.
    experiment_id: str = ""
    variant: str = ""


# --- the composition --------------------------------------------------------------------


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Composition:
    """One document, composed once, ready for every channel renderer."""

    document_id: str  # ULID
    tenant: str
    layout_id: str
    layout_version: str
    kind: DocumentKind
    locale: str  # BCP 47, e.g. "nb-NO"
    currency: str | None
    created_at: datetime  # timezone-aware UTC
    input_sha256: str  # hash of the canonical input data
    recipient: Recipient
    invoice: Invoice | None
    payment_reference: PaymentReference | None
    due_date: date | None
    amount_due: Decimal | None
    # The rendering context every channel template reads. Values are already formatted
    # for the locale; templates never compute or format.
    context: Mapping[str, Any]
    channel_plan: ChannelPlan
    print_options: PrintOptions = PrintOptions()
    campaigns: tuple[CampaignArea, ...] = ()
    inserts: tuple[str, ...] = ()  # physical insert ids for the inserting machine
    insert_rules: tuple[tuple[str, str], ...] = ()  # (insert id, id of the rule that chose it)
    idempotency_key: str | None = None
    locale_decision: LocaleDecision | None = None  # how `locale` was decided
    # Every string of the input data with its JSON path (`$.customer.name`, ...): how the
    # print checks name the field behind a character no font draws or a line that leaves
    # its box (server/channels/glyphs.py, preflight.py).
    source_text: tuple[tuple[str, str], ...] = ()
    # Every JSON number of the input data with its JSON path (`$.lines[0].quantity`): how
    # the print preflight names an outsized amount written as a number (preflight.py).
    source_numbers: tuple[tuple[str, Decimal], ...] = ()
    # The customer's IANA time zone (server/compose/countries.py, from the address's
    # country): the day the document is dated and its due dates are the customer's days.
    time_zone: str = "UTC"

    @property
    def layout_ref(self) -> str:
        return f"{self.layout_id}@{self.layout_version}"


# --- outputs ----------------------------------------------------------------------------


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Output:
    """What a channel renderer returns: bytes plus the facts about them."""

    channel: Channel
    media_type: str
    content: bytes
    sha256: str
    facts: Mapping[str, Any] = field(default_factory=dict)  # pages, sms segments, syntax...

    @property
    def size(self) -> int:
        return len(self.content)


# The EN 16931 invoice (seller, buyer, lines, totals, payment means ...) has its own module,
# `server.compose.en16931`; its names are importable from here too, as they were before it
# grew (looked up lazily: that module imports PostalAddress and PaymentReference from here).
_EN16931_NAMES = frozenset({"AllowanceCharge", "Invoice", "InvoiceLine", "Party", "PaymentMeans",
                            "Totals", "VatBreakdown"})


def __getattr__(name: str) -> Any:
    if name in _EN16931_NAMES:
        from server.compose import en16931

        return getattr(en16931, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
