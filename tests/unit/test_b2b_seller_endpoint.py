"""A b2b seller without `peppol_id` is addressed by its organisation number or VAT id (BT-34),
as a card issuer is (server/compose/builders/invoice_reader.py `party`).

QA 2026-12-02: every b2b-invoice sample with a buyer's Peppol id added was refused with
`$.seller.peppol_id: [PEPPOL-EN16931-R020]`, though the Swedish seller's 556036-0793 is its
Peppol address (ICD 0007), as the Peppol directory registers the Nordic companies; the
card invoice already derived its issuer's. A buyer's address is still never derived.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest

from server.channels.einvoice_channel import render_einvoice
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CBC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}"
CAC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2}"
BUYER = "0192:923609016"  # a Norwegian organisation number in the Peppol directory's form

# each sample's seller -> (EAS scheme, identifier) of its electronic address
SELLER_ENDPOINT = {
    "sv-SE": ("0007", "5560360793"),  # Bolagsverket organisationsnummer
    "da-DK": ("0184", "35120874"),  # CVR
    "fi-FI": ("0037", "28470514"),  # Y-tunnus (LY-tunnus form)
    "sv-FI": ("0037", "28470514"),
    "de-DE": ("9930", "DE812345673"),  # USt-IdNr.: HRB numbers are no EAS
    "de-AT": ("9914", "ATU13585627"),
    "pl-PL": ("9945", "PL5260250274"),
    "en-GB": ("9932", "GB980780684"),
}


def compose_peppol(locale: str, data: dict) -> ElementTree.Element:
    layout = LAYOUTS.get("b2b-invoice")
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JB2BSELLEREP",
        now=NOW, channels=(Channel.EINVOICE,)))
    rendered = render_einvoice(composition, layout, lambda: None)
    return ElementTree.fromstring(rendered.content)


def sample(locale: str) -> dict:
    data = json.loads(LAYOUTS.get("b2b-invoice").sample_data(locale))
    data["seller"].pop("peppol_id", None)
    data["customer"]["peppol_id"] = BUYER
    data["customer"]["preferences"] = ["einvoice"]
    return data


@pytest.mark.parametrize("locale", sorted(SELLER_ENDPOINT))
def test_a_seller_without_peppol_id_is_addressed_by_its_registered_id(locale):
    xml = compose_peppol(locale, sample(locale))
    [seller] = xml.iter(f"{CAC}AccountingSupplierParty")
    endpoint = seller.find(f"{CAC}Party/{CBC}EndpointID")
    assert endpoint is not None, ElementTree.tostring(seller)[:400]
    assert (endpoint.get("schemeID"), endpoint.text) == SELLER_ENDPOINT[locale]
    buyer = next(xml.iter(f"{CAC}AccountingCustomerParty")).find(f"{CAC}Party/{CBC}EndpointID")
    assert (buyer.get("schemeID"), buyer.text) == ("0192", "923609016")


def test_a_given_peppol_id_wins_over_the_registered_ids():
    data = sample("sv-SE")
    data["seller"]["peppol_id"] = "0088:7300010000001"  # a GLN
    [seller] = compose_peppol("sv-SE", data).iter(f"{CAC}AccountingSupplierParty")
    endpoint = seller.find(f"{CAC}Party/{CBC}EndpointID")
    assert (endpoint.get("schemeID"), endpoint.text) == ("0088", "7300010000001")
