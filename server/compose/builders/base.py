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

from server.compose.layouts import Layout
from server.compose.model import Invoice, PaymentReference, PostalAddress, Recipient
from server.errors import InvalidInput

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
        raise InvalidInput.field(path, f"{value!r} is not a decimal amount")
    if result < 0 and not allow_negative:
        raise InvalidInput.field(path, f"must not be negative, got {result}")
    if result.as_tuple().exponent < -6:  # type: ignore[operator]
        raise InvalidInput.field(path, f"{value!r} has more than 6 decimals")
    return result


def iso_date(value: Any, path: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput.field(path, f"{value!r} is not a date (YYYY-MM-DD)") from exc


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
