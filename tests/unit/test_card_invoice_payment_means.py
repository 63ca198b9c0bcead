"""The card invoice's payment means (BG-16) in every country's sample: coded from the issuer's
account and the payment reference the way the b2b-invoice codes them, so each e-invoice a
card holder can receive (Peppol BIS 3 / EHF, Finvoice, Factur-X) passes a receiving access
point's checks (`einvoice_validation`: XSD, CEN schematron, Peppol and national rules), and a
rule the data can still break is named at a path of the card-invoice data.

Found by: a Danish card invoice to a Peppol receiver was refused with
`$.payment[0].code: [DK-R-005]` - the means was always 30 (not allowed between Danish
parties), and `$.payment[0].code` is no path of the card-invoice data.
"""
from __future__ import annotations

import io
import json
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from lxml import etree

from server.channels import Renderers
from server.compose.builders import card_statement
from server.compose.builders.base import BuildRequest
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

LAYOUTS = shipped()
LAYOUT = LAYOUTS.get("card-invoice")
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
RENDERERS = Renderers()
UBL = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
# every locale's sample, as the layout's manifest lists them
SAMPLES = tomllib.loads((LAYOUT.path / "manifest.toml").read_text())["samples"]
# a routable Peppol participant id of a business in the card holder's country (valid check
# digits: an id that fails its scheme's is refused)
PEPPOL_IDS = {"DK": "0184:13585628", "NO": "0192:987654325", "SE": "0007:5560360793",
              "FI": "0216:003728470514", "DE": "9930:DE136695976", "AT": "9914:ATU13585627",
              "GB": "9932:GB980780684", "PL": "9945:PL8567346215"}


def _sample(locale: str) -> dict[str, Any]:
    return json.loads((LAYOUT.path / SAMPLES[locale]).read_text())


def _einvoice(data: dict[str, Any], locale: str):
    composition = compose(ComposeRequest(tenant="t", layout=LAYOUT, data=json.dumps(data),
                                         document_id="d", now=NOW, locale=locale,
                                         channels=(Channel.EINVOICE,)))
    [output] = RENDERERS.render(composition, LAYOUT)
    return output


def _to_peppol(locale: str) -> dict[str, Any]:
    data = _sample(locale)
    data["customer"]["peppol_id"] = PEPPOL_IDS[data["customer"]["address"]["country"]]
    return data


# Every issuer has an electronic address: the Nordic ones their organisation number, the
# de-DE, de-AT, en-GB and pl-PL ones their VAT id (test_card_issuer_ids.py).
@pytest.mark.parametrize("locale", sorted(SAMPLES))
def test_each_card_invoice_sample_to_a_peppol_receiver_validates(locale: str) -> None:
    output = _einvoice(_to_peppol(locale), locale)
    assert output.facts["syntax"] == "peppol-bis-3-ubl"
    report = ev.validate_ubl(output.content)
    assert report.errors == [] and report.warnings == [], report


@pytest.mark.parametrize("locale", sorted(SAMPLES))
def test_each_card_invoice_sample_without_a_peppol_id_validates(locale: str) -> None:
    """No Peppol id: a Finnish consumer gets Finvoice, every other holder Factur-X."""
    output = _einvoice(_sample(locale), locale)
    if output.facts["syntax"] == "finvoice-3.0":
        assert locale.endswith("-FI")
        report = ev.validate_finvoice(output.content)
    else:
        assert output.facts["syntax"] == "factur-x-en16931"
        with pikepdf.open(io.BytesIO(output.content)) as pdf:
            report = ev.validate_cii(pdf.attachments["factur-x.xml"].get_file().read_bytes())
    assert report.errors == [], report.errors


def _means(output) -> list[tuple[str, str | None]]:
    doc = etree.fromstring(output.content)
    return [(m.findtext("cbc:PaymentMeansCode", namespaces=UBL),
             m.findtext("cac:PayeeFinancialAccount/cbc:ID", namespaces=UBL))
            for m in doc.findall("cac:PaymentMeans", UBL)]


def test_a_danish_fik_card_invoice_is_paid_by_fik_93_to_the_creditor_number() -> None:
    data = _to_peppol("da-DK")
    assert _means(_einvoice(data, "da-DK")) == [("93", data["payment"]["creditor_number"])]


def test_an_iban_card_invoice_is_a_sepa_credit_transfer_58() -> None:
    data = _to_peppol("da-DK")
    data["payment"] = {"reference_scheme": "rf", "reference_base": "31077245120"}
    output = _einvoice(data, "da-DK")
    assert _means(output) == [("58", "DK5000400440116243")]
    assert ev.validate_ubl(output.content).errors == []


def test_a_swedish_bankgiro_card_invoice_names_the_giro() -> None:
    data = _to_peppol("sv-SE")
    doc = etree.fromstring(_einvoice(data, "sv-SE").content)
    [means] = doc.findall("cac:PaymentMeans", UBL)
    assert means.findtext("cbc:PaymentMeansCode", namespaces=UBL) == "30"
    assert means.findtext("cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID",
                          namespaces=UBL) == "SE:BANKGIRO"


def _resolves(data: dict[str, Any], path: str) -> bool:
    """Whether the JSON path `$.a.b[0].c` names a value in `data`."""
    node: Any = data
    for part in path.removeprefix("$.").replace("[", ".").replace("]", "").split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


@pytest.mark.parametrize("locale", ["da-DK", "nb-NO", "sv-SE", "de-DE"])
def test_a_payment_means_rule_is_named_at_a_path_of_the_card_invoice_data(locale: str) -> None:
    # The validated card data leaves no payment-means rule to break today (the schema and the
    # account/reference pairing refuse first); should a rule fire, its model path (what
    # check_en16931 / check_peppol report) becomes one the caller's data has.
    data = _to_peppol(locale)
    content = card_statement.build(data, BuildRequest(layout=LAYOUT, locale=locale,
                                                      tenant="t", today=NOW.date()))
    for field in ("code", "account", "bic", "reference"):
        path = content.invoice_paths(f"payment_means[0].{field}")
        assert _resolves(data, path), (field, path)
