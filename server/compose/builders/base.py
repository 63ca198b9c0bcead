"""The contract between the composer and a document builder, and helpers builders share.

A builder turns a layout's validated input data into the document's content: the
recipient, the business content (for invoice kinds an EN 16931 `Invoice`), the payment
reference, and the rendering context with every value already computed and formatted for
the locale. The composer adds what is the same for every kind (identity, channel plan,
print options, campaigns, inserts) and freezes the result into a `Composition`.

Builders are pure functions: no I/O, no clock (today's date comes in the request).
Errors in the data are raised as `InvalidInput` naming the JSON path of the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from stdnum import iban, luhn
from stdnum.no import kontonr as no_kontonr

from server.compose import formatting, references
from server.compose.layouts import Layout
from server.compose.model import Invoice, PaymentReference, PostalAddress, Recipient
from server.errors import InvalidInput, quote

CENT = Decimal("0.01")
MAX_AMOUNT_DIGITS = 15  # digits before the decimal point of any amount (a quadrillion)


@dataclass(frozen=True, slots=True)
class BuildRequest:
    layout: Layout
    locale: str  # BCP 47, already checked against the layout's locales
    tenant: str
    today: date  # the composition date, passed in so builders stay pure


@dataclass(frozen=True, slots=True)
class Content:
    """What a builder decides about one document."""

    recipient: Recipient
    context: dict[str, Any]  # template context, values formatted for the locale
    sender_country: str | None = None  # decides whether the window shows a country line
    currency: str | None = None
    invoice: Invoice | None = None
    payment_reference: PaymentReference | None = None
    due_date: date | None = None
    amount_due: Decimal | None = None
    # Facts the channel-plan and campaign rules may test (customer segment, case stage...).
    facts: Mapping[str, Any] = field(default_factory=dict)


Builder = Callable[[Mapping[str, Any], BuildRequest], Content]


# --- reading validated data -----------------------------------------------------------------
# The JSON Schema has already checked shapes; these helpers turn JSON values into domain
# values and report what a schema cannot express (a real calendar date, a sane amount).


def amount(value: Any, path: str, *, allow_negative: bool = False) -> Decimal:
    """A money amount from a JSON number (parsed as Decimal) or a numeric string."""
    if isinstance(value, bool):
        raise InvalidInput.field(path, "must be an amount, not a boolean")
    try:
        result = Decimal(str(value).strip()) if isinstance(value, (str, int, Decimal)) else None
    except InvalidOperation:
        result = None
    if result is None or not result.is_finite():
        raise InvalidInput.field(path, f"{quote(value)} is not a decimal amount")
    if result.adjusted() >= MAX_AMOUNT_DIGITS:  # keeps every sum within Decimal precision
        raise InvalidInput.field(
            path, f"{quote(value)} has more than {MAX_AMOUNT_DIGITS} digits before the "
            "decimal point")
    if result < 0 and not allow_negative:
        raise InvalidInput.field(path, f"must not be negative, got {quote(result)}")
    if result.as_tuple().exponent < -6:  # type: ignore[operator]
        raise InvalidInput.field(path, f"{quote(value)} has more than 6 decimals")
    return result


def iso_date(value: Any, path: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput.field(path, f"{quote(value)} is not a date (YYYY-MM-DD)") from exc


def postal_address(data: Mapping[str, Any]) -> PostalAddress:
    return PostalAddress(
        lines=tuple(data.get("lines", ())),
        postal_code=data.get("postal_code", ""),
        city=data.get("city", ""),
        country=data.get("country", ""),
    )


def recipient(data: Mapping[str, Any]) -> Recipient:
    """The shared `customer` object every layout's schema uses."""
    address = data.get("address")
    return Recipient(
        customer_id=data["customer_id"],
        name=data["name"],
        address=postal_address(address) if address else None,
        email=data.get("email") or None,
        mobile=data.get("mobile") or None,
        national_id=data.get("national_id") or None,
        org_number=data.get("org_number") or None,
        peppol_id=data.get("peppol_id") or None,
        mailbox_ids=dict(data.get("mailbox_ids", {})),
        preferences=tuple(data.get("preferences", ())),
        consents=tuple(data.get("consents", ())),
    )


# --- shared by the layouts' builders ----------------------------------------------------------
# Labels, window lines, payment accounts and references are the same questions for every
# payment document (card invoice, reminder) and every letter; answered once here.


def labels(layout: Layout, locale: str) -> Mapping[str, str]:
    """The layout's fixed text in `locale` (labels are layout text, never data)."""
    return layout.labels_for(locale)


def window_lines(who: Recipient, sender_country: str | None) -> list[str]:
    """The envelope-window address lines (name, street, postcode and city, and the country
    only when the letter crosses a border)."""
    if who.address is None:
        return [who.name]
    return list(who.address.window_lines(who.name, sender_country))


@dataclass(frozen=True, slots=True)
class PaymentAccount:
    """Where the payer sends money. kind: "no_account" (Norwegian 11-digit account),
    "bankgiro" / "plusgiro" (Sweden), "iban". `display` is how it is printed on a slip."""

    kind: str
    number: str
    display: str


def payment_account(data: Mapping[str, Any], path: str) -> PaymentAccount:
    """`{"type": ..., "number": ...}` -> a checked `PaymentAccount` (check digits verified,
    because a wrong account on a giro sends a customer's money astray)."""
    kind = data["type"]
    raw = "".join(str(data["number"]).split())
    number = raw.replace(".", "").replace("-", "")

    def bad(why: str) -> InvalidInput:
        return InvalidInput.field(f"{path}.number", f"{data['number']!r} {why}")

    if kind == "no_account":
        if not no_kontonr.is_valid(number) or len(number) != 11:
            raise bad("is not a valid Norwegian account number (11 digits, MOD11)")
        return PaymentAccount(kind, number, f"{number[:4]}.{number[4:6]}.{number[6:]}")
    if kind == "bankgiro":
        if not (number.isdigit() and len(number) in (7, 8) and luhn.is_valid(number)):
            raise bad("is not a valid bankgiro number (7-8 digits, Luhn)")
        return PaymentAccount(kind, number, f"{number[:-4]}-{number[-4:]}")
    if kind == "plusgiro":
        if not (number.isdigit() and 2 <= len(number) <= 8 and luhn.is_valid(number)):
            raise bad("is not a valid plusgiro number (2-8 digits, Luhn)")
        return PaymentAccount(kind, number, f"{number[:-1]}-{number[-1]}")
    if kind == "iban":
        if not iban.is_valid(raw):
            raise bad("is not a valid IBAN")
        return PaymentAccount(kind, iban.compact(raw), iban.format(raw))
    raise InvalidInput.field(f"{path}.type", f"unknown account type {kind!r}")


def payment_reference(
    data: Mapping[str, Any], currency: str, country: str | None, path: str = "$.payment"
) -> PaymentReference:
    """`payment.reference` (checked as given) or `payment.reference_base` (check digit
    appended), in `payment.reference_scheme` or the currency's default scheme."""
    scheme = data.get("reference_scheme") or references.default_scheme(currency, country)
    creditor = data.get("creditor_number")
    if "reference" in data:
        try:
            return references.parse_reference(scheme, data["reference"], creditor=creditor)
        except references.ReferenceError as exc:
            raise InvalidInput.field(f"{path}.reference", str(exc)) from exc
    if "reference_base" not in data:
        raise InvalidInput.field(path, "needs reference or reference_base")
    try:
        return references.make_reference(scheme, data["reference_base"], creditor=creditor)
    except references.ReferenceError as exc:
        raise InvalidInput.field(f"{path}.reference_base", str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Formatter:
    """Locale formatting bound to one document's locale and currency."""

    locale: str
    currency: str | None = None

    def money(self, value: Decimal, currency: str | None = None) -> str:
        """'12 345,67 kr'."""
        code = currency or self.currency
        assert code, "money() needs a currency"
        return formatting.money(value, code, self.locale)

    def money_code(self, value: Decimal, currency: str) -> str:
        """'27,99 EUR': foreign amounts with the ISO code, unambiguous beside local ones."""
        return f"{formatting.number(value, self.locale)}\u00a0{currency}"

    def number(self, value: Decimal, places: int = 2) -> str:
        """'12 345,67' (for table columns whose header names the currency)."""
        return formatting.number(value, self.locale, places)

    def giro_amount(self, value: Decimal) -> tuple[str, str]:
        """12345.67 -> ('12 345', '67'): the separate kroner and øre fields of a giro slip."""
        units = int(value)
        cents = int((abs(value) - abs(units)) * 100)
        return formatting.number(Decimal(units), self.locale, 0), f"{cents:02d}"

    def day(self, value: date, style: str = "short") -> str:
        return formatting.day(value, self.locale, style)

    def percent(self, value: Decimal) -> str:
        """'21,9 %' with as many decimals as the value has (at most 4)."""
        value = value.normalize()
        places = min(max(-value.as_tuple().exponent, 0), 4)  # type: ignore[operator]
        return f"{formatting.number(value, self.locale, places)}\u00a0%"
