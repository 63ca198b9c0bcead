"""How the b2b-invoice input's values are read, and its parties.

Every part of the input (`invoice_input`, `invoice_lines`, `invoice_payment`) reads its
values the same way: blank text is absent (`text`), optional amounts, rates and dates are
`None` when not given and `InvalidInput` at their JSON path when malformed, and
`InvoiceReader` reads addresses, identifiers and the parties (BG-4 seller, BG-7 buyer, BG-11
tax representative), normalising their identifiers per country (`server.compose.identifiers`)
and collecting the errors so all are reported at once.

Separate from `invoice_input` because the parties are the identifier-heavy part of the input
(organisation numbers, VAT ids, Peppol ids, each checked for its scheme) and these readers
are what the lines and the payment means share with the header.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from server.compose import identifiers as ids
from server.compose.builders.base import amount, iso_date, money_decimals
from server.compose.en16931 import Identifier, Party, TaxRepresentative
from server.compose.model import PostalAddress
from server.errors import FieldViolation

__all__ = ["InvoiceReader", "optional_amount", "optional_date", "optional_rate",
           "required_text", "text"]


def text(value: Any) -> str | None:
    """Blank text is absent: EN 16931 has no empty values and Peppol no empty elements."""
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def required_text(value: Any) -> str:
    return text(value) or ""


def optional_rate(value: Any, path: str) -> Decimal | None:
    """A VAT rate in percent; absent (None or "") -> None."""
    return None if value is None or value == "" else amount(value, path)


def optional_amount(value: Any, path: str, *, allow_negative: bool = False,
                    currency: str | None = None, rule: str | None = None) -> Decimal | None:
    """An amount, price or quantity (see `base.amount`); absent -> None. With `currency` a
    monetary amount with at most that currency's decimals (`base.money_decimals`), refused
    under the EN 16931 decimal `rule` (BR-DEC-*) otherwise."""
    if value is None:
        return None
    found = amount(value, path, allow_negative=allow_negative)
    return found if currency is None else money_decimals(found, path, currency, rule)


def optional_date(value: Any, path: str) -> date | None:
    """An ISO 8601 date; absent or empty -> None."""
    return iso_date(value, path) if value else None


class InvoiceReader:
    """Reads the input, collecting identifier errors so all are reported at once."""

    def __init__(self) -> None:
        self.problems: list[FieldViolation] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(FieldViolation(path, message))

    def address(self, data: Mapping[str, Any] | None) -> PostalAddress | None:
        if not data:
            return None
        return PostalAddress(
            lines=tuple(line for line in (text(x) for x in data.get("lines", ())) if line),
            postal_code=text(data.get("postal_code")) or "",
            city=text(data.get("city")) or "",
            country=text(data.get("country")) or "",
            subdivision=text(data.get("subdivision")),
        )

    def identifier(self, data: Mapping[str, Any] | None, path: str, *,
                   party: bool = False) -> Identifier | None:
        """An identifier with its scheme; a party's (BT-29/46/60/61) is normalised for its
        scheme as Peppol checks those (PEPPOL-COMMON-R040..R050), items and locations are
        taken as given."""
        if not data or not text(data.get("id")):
            return None
        scheme = text(data.get("scheme"))
        value = required_text(data.get("id"))
        if party:
            try:
                value = ids.normalise_id(scheme, value)
            except ids.IdentifierError as exc:
                self.fail(f"{path}.id", str(exc))
        return Identifier(value, scheme, text(data.get("version")))

    def party(self, data: Mapping[str, Any], path: str, *, seller: bool,
              own_ids: bool = False) -> Party:
        """BG-4 / BG-7 from `{name, org_number (+_scheme), vat_id, peppol_id, address, ...}`
        at `path`; identifier errors are collected at their JSON path (`problems`).

        `own_ids`: the party is the one sending (a card issuer): its VAT id's check digit
        is checked too (`ids.vat_id(check_digits=True)`: a bank knows its own id exactly).
        A seller (and a card issuer) with no `peppol_id` is addressed by its organisation
        number or VAT id (`ids.derived_endpoint`, BT-34), as the Peppol directory
        registers the Nordic companies (NO 0192, SE 0007, DK 0184, FI 0037) and VAT ids
        (DE 9930, AT 9914, GB 9932, PL 9945); BT-34 is required (PEPPOL-EN16931-R020).
        A buyer's address is never guessed: a wrong one routes the invoice elsewhere."""
        address = self.address(data.get("address"))
        country = address.country if address else None
        org, org_scheme = text(data.get("org_number")), text(data.get("org_number_scheme"))
        if org:
            try:
                org, org_scheme = ids.organisation_number(org, country, org_scheme)
            except ids.IdentifierError as exc:
                self.fail(f"{path}.org_number", str(exc))
        vat = text(data.get("vat_id"))
        if vat:
            try:
                vat = ids.vat_id(vat, country, check_digits=own_ids)
            except ids.IdentifierError as exc:
                self.fail(f"{path}.vat_id", str(exc))
                vat = None
        endpoint_id = endpoint_scheme = None
        if text(data.get("peppol_id")):
            try:
                endpoint_scheme, endpoint_id = ids.peppol_id(data["peppol_id"])
            except ids.IdentifierError as exc:
                # The seller's and the buyer's alike: an id that addresses no one is the
                # caller's error (builders/customer.py `peppol_id`), never a silent fallback.
                self.fail(f"{path}.peppol_id", str(exc))
        elif (seller or own_ids) and (derived := ids.derived_endpoint(org, org_scheme, vat)):
            endpoint_scheme, endpoint_id = derived
        contact = data.get("contact") or {}
        tax_registration = text(data.get("tax_registration"))
        if seller and tax_registration is None and org:
            tax_registration = ids.default_tax_registration(country, org_scheme)
        return Party(
            name=required_text(data.get("name")),
            address=address,
            vat_id=vat,
            legal_id=org,
            legal_id_scheme=org_scheme if org else None,
            endpoint_id=endpoint_id,
            endpoint_scheme=endpoint_scheme,
            contact_name=text(contact.get("name")),
            contact_phone=text(contact.get("phone")),
            contact_email=text(contact.get("email")),
            trading_name=text(data.get("trading_name")),
            identifiers=tuple(
                ident for i, item in enumerate(data.get("identifiers", ()))
                if (ident := self.identifier(item, f"{path}.identifiers[{i}]", party=True))
            ),
            tax_registration_id=tax_registration if seller else None,
            legal_info=text(data.get("legal_info")) if seller else None,
        )

    def tax_representative(self, rep: Mapping[str, Any]) -> TaxRepresentative:
        """BG-11, its VAT id (BT-63) normalised for its address's country."""
        address = self.address(rep.get("address"))
        vat = required_text(rep.get("vat_id"))
        try:
            vat = ids.vat_id(vat, address.country if address else None)
        except ids.IdentifierError as exc:
            self.fail("$.tax_representative.vat_id", str(exc))
        return TaxRepresentative(required_text(rep.get("name")), vat,
                                 address or PostalAddress((), "", "", ""))
