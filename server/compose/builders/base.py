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
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from server.compose import countries, formatting, references

# the customer object's readers (builders/customer.py), where the builders import them from
from server.compose.builders.customer import LINE_BREAK as LINE_BREAK
from server.compose.builders.customer import customer_id as customer_id
from server.compose.builders.customer import email_address as email_address
from server.compose.builders.customer import national_id as national_id
from server.compose.builders.customer import one_line as one_line
from server.compose.builders.customer import postal_address as postal_address
from server.compose.builders.customer import recipient as recipient
from server.compose.codelists import iso_minor_unit, minor_unit
from server.compose.layouts import Layout
from server.compose.model import (
    DocumentKind,
    Invoice,
    PaymentReference,
    PostalAddress,
    Recipient,
)
from server.compose.money import MAX_AMOUNT_DIGITS, round_money, round_places
from server.compose.payments.accounts import PaymentAccount
from server.compose.payments.accounts import payment_account as payment_account  # re-export
from server.errors import InvalidInput, quote

CENT = Decimal("0.01")


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
    # The kind of this document when the data decides it (a b2b-invoice credit note is a
    # credit_note); None: the layout's kind.
    kind: DocumentKind | None = None
    sender_country: str | None = None  # decides whether the window shows a country line
    currency: str | None = None
    invoice: Invoice | None = None
    # Where an `invoice` value came from: model path ("buyer.vat_id") -> JSON path of the
    # input ("$.customer.vat_id"), so e-invoice rules checked later name the caller's field.
    invoice_paths: Callable[[str], str] | None = None
    payment_reference: PaymentReference | None = None
    due_date: date | None = None
    amount_due: Decimal | None = None
    # Facts the channel-plan and campaign rules may test (customer segment, case stage...).
    facts: Mapping[str, Any] = field(default_factory=dict)
    # The payment's scheme, which the locale's region must fit (server/compose/locales.py)
    payment_scheme: PaymentScheme | None = None


Builder = Callable[[Mapping[str, Any], BuildRequest], Content]


# --- reading validated data -----------------------------------------------------------------
# The JSON Schema has already checked shapes; these helpers turn JSON values into domain
# values and report what a schema cannot express (a real calendar date, a sane amount).


def amount(value: Any, path: str, *, allow_negative: bool = False,
           currency: str | None = None) -> Decimal:
    """A decimal from a JSON number (parsed as Decimal) or a numeric string: an amount, a
    quantity, a price, a rate or a percentage, at most 6 decimals.

    With `currency` (ISO 4217) the value is a monetary amount in that currency: refused when
    it has more decimals than the currency's minor unit (`money_decimals`: NOK 2, JPY 0), and
    returned with exactly that many ("100" -> 100.00). A ledger's 0.005 printed as 0,01 line by
    line while the exact sum rounded otherwise: the document's total then differed from the
    ledger's, so Kanal refuses the amount rather than round it. Prices (EN 16931 BT-146/148
    may have more decimals), quantities, rates and percentages are read without `currency`.

    Raises `InvalidInput` at `path`: not a decimal, more than 15 digits before the point,
    negative unless `allow_negative`, more than 6 decimals, or more than the currency has."""
    if isinstance(value, bool):
        raise InvalidInput.field(path, "must be an amount, not a boolean")
    if type(value) is Decimal:  # the JSON reader's numbers: already the exact value
        result: Decimal | None = value
    else:
        try:
            result = (Decimal(str(value).strip()) if isinstance(value, (str, int, Decimal))
                      else None)
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
    return result if currency is None else money_decimals(result, path, currency)


# An interest rate a year, in percent, that any document of Kanal's may print or compute
# with: a sanity bound, not a law's. The statutory late-payment rates are the central
# bank's rate plus 5-9 points (forsinkelsesrenteloven § 3, räntelagen 6 §, renteloven § 5,
# korkolaki 4 §, BGB § 288) and a card's agreed rate some 15-30 %; no law caps every
# country's rates (Finland caps consumer credit, Sweden high-cost credit at the reference
# rate + 40 points, Norway neither), so 100 % is where a rate is a typing error (99999 for
# 9.99) rather than any creditor's terms.
MAX_ANNUAL_RATE = Decimal(100)


def annual_rate(value: Any, path: str) -> Decimal:
    """A yearly interest rate in percent, read as `amount` reads it, refused (`InvalidInput`
    at `path`) above `MAX_ANNUAL_RATE`."""
    rate = amount(value, path)
    if rate > MAX_ANNUAL_RATE:
        raise InvalidInput.field(
            path, f"{quote(rate)} % a year is not a plausible interest rate: at most "
            f"{MAX_ANNUAL_RATE} % (a sanity bound: late-payment and card rates are far "
            "below it)")
    return rate


def money_decimals(value: Decimal, path: str, currency: str, rule: str | None = None) -> Decimal:
    """`value` with exactly the decimals of `currency`'s minor unit, or `InvalidInput` at
    `path` when it has more ("NOK has 2 decimals; 0.005 has 3"). Trailing zeros are no
    decimals (0.010 NOK is 0.01). The minor unit is the ISO 4217 one that every amount is
    rounded to (`server.compose.money.quantum`, EN 16931 BR-DEC: at most 2), so what is
    accepted here is never rounded again. `rule`: the standard's rule the message starts
    with ("[BR-DEC-16] ...") where the document has one."""
    rounded = round_money(value, currency)
    if rounded == value:  # the usual answer: no digit beyond the minor unit (or only zeros)
        return rounded
    _check_decimals(value, path, currency, minor_unit(currency), rule)  # raises
    return rounded


def _check_decimals(value: Decimal, path: str, currency: str, places: int,
                    rule: str | None = None) -> None:
    exponent = value.normalize().as_tuple().exponent
    written = max(-exponent, 0) if isinstance(exponent, int) else 0
    if written > places:
        raise InvalidInput.field(
            path, (f"[{rule}] " if rule else "")
            + f"{currency} has {places} decimal{'s' if places != 1 else ''}; "
            f"{quote(value)} has {written}: send the amount the ledger books, rounded to the "
            "currency's minor unit")


def foreign_places(currency: str, path: str) -> int:
    """The decimals of an amount in `currency` that no e-invoice carries (a card
    transaction's original amount): ISO 4217's minor unit, not capped at EN 16931's 2
    (KWD 3, JPY 0, EUR 2; `codelists.iso_minor_unit`). `currency` is already a code
    `formatting.check_currency` accepts; `InvalidInput` at `path` when ISO 4217 no longer
    lists it (DEM, ANG): its minor unit, and so the amount, would be a guess."""
    places = iso_minor_unit(currency)
    if places is None:
        raise InvalidInput.field(
            path, f"{currency} is not a current ISO 4217 currency (withdrawn): send the code "
            "of the currency the transaction was made in")
    return places


def foreign_amount(value: Any, path: str, currency: str, places: int, *,
                   allow_negative: bool = False) -> Decimal:
    """An amount in another currency than the document's (see `foreign_places`), read as
    `amount` reads one and refused at `path` when it has more decimals than `places`
    ("KWD has 3 decimals; 12.3456 has 4"); returned with exactly `places` decimals."""
    result = amount(value, path, allow_negative=allow_negative)
    _check_decimals(result, path, currency, places)
    return round_places(result, places)


def iso_date(value: Any, path: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput.field(path, f"{quote(value)} is not a date (YYYY-MM-DD)") from exc


# A consumer document's payment term: a year at most. A due date further out is a typing
# error (2062 for 2026) that would be printed, carried by the slip's code and e-invoice.
MAX_PAYMENT_TERM = timedelta(days=366)


def check_payment_term(due_date: date, start: date, path: str, start_name: str) -> None:
    """Refuse (`InvalidInput` at `path`) a due date more than `MAX_PAYMENT_TERM` after
    `start` (the invoice or notice date, named `start_name` in the message)."""
    if due_date - start > MAX_PAYMENT_TERM:
        raise InvalidInput.field(
            path, f"{due_date.isoformat()} is more than a year after the {start_name} "
                  f"{start.isoformat()}; the latest due date is "
                  f"{(start + MAX_PAYMENT_TERM).isoformat()}")


# --- shared by the layouts' builders ----------------------------------------------------------
# Labels, window lines, payment accounts and references are the same questions for every
# payment document (card invoice, reminder) and every letter; answered once here.


def labels(layout: Layout, locale: str) -> Mapping[str, str]:
    """The layout's fixed text in `locale` (labels are layout text, never data)."""
    return layout.labels_for(locale)


def sender_lines(address: PostalAddress) -> list[str]:
    """The sender's address under its name (masthead, slip payee): street lines, then
    postcode and town as written, or in the UK the town and the postcode on its own line."""
    found = countries.country(address.country)
    if found is not None and found.postcode_own_line:
        return [*address.lines, address.city, address.postal_code]
    return [*address.lines, f"{address.postal_code} {address.city}".strip()]


def return_line(name: str, address: PostalAddress, destination: str | None = None) -> str:
    """The sender in one line above the window address (DIN 5008 Rücksendeangabe):
    'Fjordbank AG · Postfach 11 22 33 · 10115 Berlin', and the sender's country when the
    letter goes to another country (`destination`, the recipient's), since an undeliverable
    letter is returned from there: 'Fjordbank AG · Postfach 11 02 40 · 10832 Berlin ·
    DEUTSCHLAND' on a letter to Vienna (UPU Convention Regulations: the sender's address
    on international mail ends with the country of origin; DIN 5008). The country's name is
    in the language of the destination's post office (countries.toml `language`), which
    reads the line first, as the window's country line is in the sender's."""
    parts = [name, *sender_lines(address)]
    if destination and address.country and destination.upper() != address.country.upper():
        post = countries.country(destination)
        parts.append(countries.country_name(address.country, post.language if post else "en"))
    return " · ".join(parts)


def window_lines(who: Recipient, sender_country: str | None) -> list[str]:
    """The envelope-window address lines (name, street, postcode and city, and the country
    only when the letter crosses a border)."""
    if who.address is None:
        return [who.name]
    return list(who.address.window_lines(who.name, sender_country))


def payment_reference(
    data: Mapping[str, Any], currency: str, country: str | None, path: str = "$.payment"
) -> PaymentReference:
    """`payment.reference` (checked as given) or `payment.reference_base` (check digit
    appended), in `payment.reference_scheme` or the currency's default scheme."""
    scheme = data.get("reference_scheme") or references.default_scheme(currency, country)
    creditor = data.get("creditor_number")
    if scheme in ("fik", "fik73", "fik75") and not creditor:
        raise InvalidInput.field(f"{path}.creditor_number",
                                 "a FIK payment reference (Denmark) needs the creditor number")
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
class PaymentScheme:
    """Which clearing a document's payment fields belong to, and the data fields that chose
    them (named in the error when the locale's region cannot print them)."""

    reference_scheme: str  # references.SCHEMES
    reference_field: str  # "$.payment.reference_scheme", or "$.currency" when it chose
    account_kind: str  # PaymentAccount.kind
    account_field: str  # e.g. "$.issuer.payment_account.type"


def payment_scheme(payment: Mapping[str, Any], reference: PaymentReference,
                   account: PaymentAccount, account_path: str,
                   payment_path: str = "$.payment") -> PaymentScheme:
    """`payment` is the data's payment object, `account_path` the JSON path of the account."""
    chosen_by = (f"{payment_path}.reference_scheme" if payment.get("reference_scheme")
                 else "$.currency")
    return PaymentScheme(reference.scheme, chosen_by, account.kind, f"{account_path}.type")


# The labels.toml name of each reference scheme's label (server/compose/references.py)
REFERENCE_LABELS = {"kid_mod10": "kid", "kid_mod11": "kid", "ocr": "ocr", "ocr_luhn": "ocr",
                    "fik": "fik", "fik73": "fik", "fik75": "fik", "fi": "fi", "rf": "rf",
                    "gb": "gb", "text": "text"}


def payment_labels(text: Mapping[str, str], reference: PaymentReference,
                   account: PaymentAccount) -> dict[str, str]:
    """What the payment fields are called, in the document's language but after the payment's
    scheme, never after the language alone: the reference by its scheme (KID, OCR, FIK,
    Finnish reference, RF), the account by its type (kontonummer, bankgiro, plusgiro, IBAN).
    The same names go to every channel (slip, e-mail, SMS).

    labels.toml keys: `reference_<kid|ocr|fik|fi|rf|gb>` (the slip's field) and `..._short`
    (running text, SMS), `account_<type>` and `..._short`, `sort_code` and `sort_code_short`
    (a UK account's sort code: `sort_code_label`, `sort_code_name`; empty for other
    accounts), and `slip_note` with a `{reference}` placeholder (`slip_note_<scheme>` where a
    scheme needs other words, e.g. `slip_note_text`). Layout versions without
    them (1.0.0) keep their one `slip_reference` / `slip_account`.
    """
    ref = REFERENCE_LABELS[reference.scheme]
    reference_label = text.get(f"reference_{ref}", text.get("slip_reference", ""))
    reference_name = text.get(f"reference_{ref}_short", reference_label)
    account_label = text.get(f"account_{account.kind}", text.get("slip_account", ""))
    sort_code_label = text.get("sort_code", "") if account.sort_code else ""
    return {
        "reference_label": reference_label,
        "reference_name": reference_name,
        "account_label": account_label,
        "account_name": text.get(f"account_{account.kind}_short", account_label),
        "sort_code_label": sort_code_label,
        "sort_code_name": (text.get("sort_code_short", sort_code_label) if account.sort_code
                           else ""),
        # the note asks for the reference by its name; a remittance text has none of its
        # own ("Verwendungszweck", "tytuł przelewu"), so it gets a note of its own
        "note": text.get(f"slip_note_{ref}", text.get("slip_note", "")).format(
            reference=reference_name),
    }


@dataclass(frozen=True, slots=True)
class Formatter:
    """Locale formatting bound to one document's locale and currency.

    Every value is rounded with Kanal's one money rule (`server.compose.money`: half away
    from zero) before Babel formats it, so Babel's own half-even rounding never decides a
    printed amount and paper, e-mail, SMS and XML show the same number."""

    locale: str
    currency: str | None = None

    def money(self, value: Decimal, currency: str | None = None) -> str:
        """'12 345,67 kr'."""
        code = currency or self.currency
        assert code, "money() needs a currency"
        return formatting.money(round_money(value, code), code, self.locale)

    def money_code(self, value: Decimal, currency: str, places: int) -> str:
        """'27,99 EUR', '1,234 KWD', '1 500 JPY' (nb-NO): foreign amounts with the ISO code,
        unambiguous beside local ones, with `places` decimals (`foreign_places`: ISO 4217's
        minor unit of `currency`)."""
        return (f"{formatting.number(round_places(value, places), self.locale, places)}"
                f"\u00a0{currency}")

    def number(self, value: Decimal, places: int = 2) -> str:
        """'12 345,67' (for table columns whose header names the currency)."""
        return formatting.number(round_places(value, places), self.locale, places)

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
