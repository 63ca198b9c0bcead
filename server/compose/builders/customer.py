"""The shared `customer` object every layout's schema uses -> a checked `Recipient`.

Every builder reads its document's recipient here (`recipient`), so what is refused about a
customer is refused the same way for every layout and version: a name or address line
holding a line break (`one_line`), a blank or padded customer id (`customer_id`), an email
address email-validator refuses (`email_address`), a national id its scheme refuses
(`national_id`), a Peppol participant id that addresses no one (`peppol_id`). Errors are
`InvalidInput` at the field's JSON path ("$.customer.email").
`builders.base` re-exports these names for the builders that import them from there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from email_validator import EmailNotValidError, validate_email

from server.compose import countries, identifiers
from server.compose.model import PostalAddress, Recipient
from server.errors import InvalidInput, quote


def postal_address(data: Mapping[str, Any]) -> PostalAddress:
    return PostalAddress(
        lines=tuple(data.get("lines", ())),
        postal_code=data.get("postal_code", ""),
        city=data.get("city", ""),
        country=data.get("country", ""),
    )


def email_address(value: str, path: str) -> str:
    """An email address checked by email-validator (RFC 5321/5322 syntax, IDNA 2008 domain,
    `strict`: the RFC 5321 limit of 64 octets before the @ that MTAs enforce; no DNS lookup:
    composing stays pure), in its normalised form: the domain lower-cased in
    Unicode (`kari@bø.no`; the email channel sends it as IDNA `xn--b-5ga.no`), the local
    part NFC. A non-ASCII local part is accepted: the email channel writes that message for
    SMTPUTF8 (RFC 6531). Raises `InvalidInput` naming `path`."""
    try:
        return validate_email(value, check_deliverability=False, strict=True).normalized
    except EmailNotValidError as exc:
        raise InvalidInput.field(
            path, f"{quote(value)} is not a valid email address: {exc}") from exc


# Line breaks as Unicode counts them (UAX #14 mandatory breaks and CR/LF): what a PDF engine,
# an SMS and an e-mail header each treat as a new line.
LINE_BREAK = re.compile(r"[\n\r\x0b\x0c\x85\u2028\u2029]")


def one_line(value: Any, path: str) -> Any:
    """`value`, refused with `InvalidInput` naming `path` when it is text with a line break:
    a name or an address line is one line (a break printed a line of its own in the envelope
    window, which the post reads as address, and went into the SMS and e-mail as it was)."""
    found = LINE_BREAK.search(value) if isinstance(value, str) else None
    if found is not None:
        raise InvalidInput.field(path, f"holds a line break (U+{ord(found.group()):04X}) at "
                                 f"{found.start()}: it is one line")
    return value


def recipient(data: Mapping[str, Any], path: str = "$.customer",
              sender_country: str | None = None) -> Recipient:
    """The shared `customer` object every layout's schema uses. Its postal code is written in
    the operator's form (`countries`: "11826" -> "118 26"); one that cannot be a postal code
    of the country is refused by the composer when the document goes by post. The name and
    every address field are one line each (`one_line`). The national id is checked and
    made compact by the scheme of the customer's country, else of the `sender_country`
    (`national_id`). A Peppol participant id that addresses no one is refused
    (`peppol_id`): a mistyped one must not quietly turn an e-invoice into paper."""
    one_line(data.get("name"), f"{path}.name")
    if not str(data["name"]).strip():  # the schemas take "   ": "Hei   ," and a blank window line
        raise InvalidInput.field(f"{path}.name", f"{quote(data['name'])} is blank: the name "
                                 "heads the envelope window and greets the customer")
    address = data.get("address")
    if address:
        for index, line in enumerate(address.get("lines", ())):
            one_line(line, f"{path}.address.lines[{index}]")
        for key in ("postal_code", "city"):
            one_line(address.get(key), f"{path}.address.{key}")
        address = {**address, "postal_code": countries.normal_postal_code(
            address.get("postal_code", ""), address.get("country", ""))}
    email = data.get("email") or None
    finvoice = data.get("finvoice") or {}  # card-invoice 2.2.0 on: the e-lasku address
    number, scheme = national_id(data.get("national_id"), (address or {}).get("country"),
                                 sender_country, f"{path}.national_id")
    return Recipient(
        customer_id=customer_id(data["customer_id"], f"{path}.customer_id"),
        name=data["name"],
        address=postal_address(address) if address else None,
        email=email_address(email, f"{path}.email") if email else None,
        mobile=data.get("mobile") or None,
        national_id=number,
        national_id_country=scheme,
        org_number=data.get("org_number") or None,
        peppol_id=peppol_id(data.get("peppol_id"), f"{path}.peppol_id"),
        mailbox_ids=dict(data.get("mailbox_ids", {})),
        preferences=tuple(data.get("preferences", ())),
        consents=tuple(data.get("consents", ())),
        finvoice_address=finvoice.get("address") or None,
        finvoice_intermediator=finvoice.get("intermediator") or None,
    )


def customer_id(value: str, path: str) -> str:
    """The customer's id as the sender's records hold it, refused (`InvalidInput` at `path`)
    when blank or padded with whitespace, or holding a line break: the id names the
    customer's archive prefix (`archive.keys`: "  " was archived under `demo/%20%20/`), its
    portal listing and its A/B variant, so "20184455 " would be another customer than
    "20184455". Every layout's schema asks only for 1..64 characters (and layout versions
    are immutable), so the check is here, for every builder."""
    one_line(value, path)
    if not value.strip():
        raise InvalidInput.field(path, f"{quote(value)} is blank: a customer id names the "
                                 "customer's archive folder and portal listing")
    if value != value.strip():
        raise InvalidInput.field(path, f"{quote(value)} starts or ends with whitespace: send "
                                 "the id as the customer's records hold it, unpadded")
    return value


def national_id(value: str | None, country: str | None, sender_country: str | None,
                path: str) -> tuple[str | None, str | None]:
    """The customer's national id in the compact form of its scheme (the digital mailboxes'
    form: Digipost, Kivra, e-Boks find the recipient by it), checked by python-stdnum
    against the scheme of the customer's `country`, else of the `sender_country`
    (`identifiers.national_id_of_scheme`: NO fødselsnummer, SE personnummer, DK CPR, FI
    henkilötunnus, PL PESEL; a customer in another country: as given), with the country of
    the scheme that took it (None: as given). A malformed one is refused here,
    `InvalidInput` at `path` naming the scheme and why, not by the mailbox after the
    document was made. (None, None) when there is none."""
    if not value:
        return None, None
    try:
        return identifiers.national_id_of_scheme(value, country, sender_country)
    except identifiers.IdentifierError as exc:
        raise InvalidInput.field(path, exc.reason) from exc


def peppol_id(value: str | None, path: str) -> str | None:
    """The customer's Peppol participant id as given ('0192:923609016'), or None when there
    is none. One whose scheme is not on the EAS list, or whose identifier breaks its scheme's
    Peppol rule or check digit (`identifiers.peppol_id`: 0192 MOD11, 0007 Luhn, 0184 CVR,
    0037 Y-tunnus, 0088 GLN, 0208 MOD97, 99xx VAT numbers, ...), is refused, `InvalidInput`
    at `path` naming the rule, the scheme and why: such an id routes to no one, and the
    e-invoice the buyer is owed would silently become paper (an id is the caller's to fix,
    as a wrong email address is)."""
    if not value:
        return None
    try:
        identifiers.peppol_id(value)
    except identifiers.IdentifierError as exc:
        raise InvalidInput.field(path, str(exc)) from exc
    return value
