"""The card issuer as the EN 16931 seller (BG-4) of the card invoice, and its electronic address.

Card-invoice data -> `Party`, read by the b2b-invoice's party reader
(`invoice_reader.InvoiceReader.party`, with `own_ids`), so both layouts check and normalise
an issuer's identifiers the same way:

    $.issuer.org_number   BT-30 legal registration id; the Nordic registers' ICD (NO 0192,
                          SE 0007, DK 0184, FI 0037) from the address country, checked
                          (PEPPOL-COMMON-R041/R042/R049, Y-tunnus); other countries' numbers
                          (Handelsregister, Firmenbuch, Companies House, KRS) as given
    $.issuer.vat_id       the issuer's VAT identifier (USt-IdNr., UID, GB VAT, NIP),
                          checked with python-stdnum (format and check digit)
    $.issuer.peppol_id    BT-34 electronic address "<EAS>:<id>", e.g. "9930:DE812345673"

BT-34 is the `peppol_id` when given, else the organisation number when its scheme is an EAS
code (the Nordic issuers, as before), else the VAT id with its country's VAT EAS code
(`identifiers.VAT_EAS`: DE 9930, AT 9914, GB 9932, PL 9945). With none of them the issuer
has no electronic address and a Peppol e-invoice is refused with PEPPOL-EN16931-R020,
named at `$.issuer.org_number` as before.

The VAT id is never written as BT-31: every line of the card invoice is VAT category O
(see `card_statement`), and EN 16931 BR-O-02 forbids the seller VAT identifier on such an
invoice. It serves as the issuer's electronic address.

Errors: `InvalidInput` (INVALID_ARGUMENT) with every bad identifier at its JSON path and the
rule it breaks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from server.compose import identifiers as ids
from server.compose.builders.base import postal_address
from server.compose.builders.invoice_reader import InvoiceReader, text
from server.compose.en16931 import Party
from server.errors import InvalidInput

__all__ = ["endpoint_source", "issuer_party"]

_IDENTITY = ("name", "org_number", "vat_id", "peppol_id", "address")


def issuer_party(issuer: Mapping[str, Any]) -> Party:
    """`$.issuer` -> the seller: name, postal address (BG-5), BT-30 with its scheme, BT-32
    (NO "Foretaksregisteret") and BT-34 with its EAS scheme; no BT-31 (BR-O-02)."""
    reader = InvoiceReader()
    party = reader.party({key: issuer.get(key) for key in _IDENTITY}, "$.issuer",
                         seller=True, own_ids=True)
    if reader.problems:
        raise InvalidInput("invalid issuer identifiers", reader.problems)
    return dataclasses.replace(party, name=issuer["name"].strip(),
                               address=postal_address(issuer["address"]), vat_id=None)


def endpoint_source(issuer: Mapping[str, Any]) -> str:
    """The JSON path the issuer's electronic address (BT-34) comes from, where a rule about
    it (PEPPOL-EN16931-R020, PEPPOL-COMMON-R04x) is named."""
    if text(issuer.get("peppol_id")):
        return "$.issuer.peppol_id"
    country = (issuer.get("address") or {}).get("country")
    if country in ids.ORG_NUMBER_SCHEME:
        return "$.issuer.org_number"
    vat = ids.compact(text(issuer.get("vat_id")) or "")
    if vat[:2] in ids.VAT_EAS or (vat and not vat[:2].isalpha() and country in ids.VAT_EAS):
        return "$.issuer.vat_id"
    return "$.issuer.org_number"
