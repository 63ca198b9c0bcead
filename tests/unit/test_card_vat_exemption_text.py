"""A card invoice's VAT exemption reason (BT-120) is in the document's language.

Found by customers: the reason was one English constant in every locale, so a Finnish card
holder's Finvoice (`VatFreeText`), a Norwegian EHF and a Swedish Peppol invoice (UBL
`cbc:TaxExemptionReason`) and every Factur-X (CII `ram:ExemptionReason`) said "Not subject to
VAT: card transactions are payments on the card holder's behalf; ..." in English. Now it is
the document's language for every locale of every card-invoice version
(server/compose/builders/card_vat.py), each text whole in Finvoice's three 70-character
elements, and each e-invoice passes a receiving access point's checks (`einvoice_validation`:
XSD, CEN schematron, Peppol rules).
"""

from __future__ import annotations

import json
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from server.channels import Renderers
from server.channels.einvoice import cii_bytes, cii_tree
from server.channels.einvoice.finvoice import VAT_FREE_CHARS, vat_free_texts
from server.compose.builders.card_vat import NOT_SUBJECT_TO_VAT, not_subject_to_vat
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

LAYOUTS = shipped()
LAYOUT = LAYOUTS.get("card-invoice")
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
RENDERERS = Renderers()
SAMPLES = tomllib.loads((LAYOUT.path / "manifest.toml").read_text())["samples"]
UBL = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
RAM = {"ram": "urn:un:unece:uncefact:data:standard:"
              "ReusableAggregateBusinessInformationEntity:100"}
PEPPOL_IDS = {"DK": "0184:13585628", "NO": "0192:987654325", "SE": "0007:5560360793",
              "FI": "0216:003728470514", "DE": "9930:DE136695976", "AT": "9914:ATU13585627",
              "GB": "9932:GB980780684", "PL": "9945:PL8567346215"}
# how each locale's banks open the sentence: the wording, not just "some translation"
OPENING = {"nb-NO": "Ikke mva-pliktig: ", "sv-SE": "Ej momspliktig: ",
           "sv-FI": "Ej momspliktig: ", "da-DK": "Ikke momspligtig: ",
           "fi-FI": "Ei arvonlisäveron alainen: ", "de-DE": "Nicht umsatzsteuerbar: ",
           "de-AT": "Nicht umsatzsteuerbar: ", "pl-PL": "Nie podlega VAT: ",
           "en-GB": "Not subject to VAT: "}
ENGLISH = NOT_SUBJECT_TO_VAT["en"]


def _composed(locale: str, peppol: bool, version: str | None = None):
    layout = LAYOUTS.get("card-invoice", version)
    data: dict[str, Any] = json.loads(layout.sample_data(locale))
    if peppol:
        data["customer"]["peppol_id"] = PEPPOL_IDS[data["customer"]["address"]["country"]]
    return layout, compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                          document_id="d", now=NOW, locale=locale,
                                          channels=(Channel.EINVOICE,)))


def test_every_card_invoice_locale_has_its_own_reason():
    locales = {loc for v in ("1.0.0", "2.0.0", "2.1.0", "2.2.0")
               for loc in LAYOUTS.get("card-invoice", v).locales}
    assert locales == set(OPENING)
    for locale in locales:
        assert not_subject_to_vat(locale).startswith(OPENING[locale]), locale
        assert (not_subject_to_vat(locale) == ENGLISH) == locale.startswith("en-"), locale


@pytest.mark.parametrize("reason", sorted(NOT_SUBJECT_TO_VAT.values()))
def test_each_reason_is_whole_in_finvoices_three_vat_free_texts(reason: str):
    texts = vat_free_texts(reason)
    assert " ".join(texts) == reason and all(len(t) <= VAT_FREE_CHARS for t in texts)


@pytest.mark.parametrize("locale", sorted(SAMPLES))
def test_the_peppol_ubl_and_the_cii_say_it_in_the_documents_language(locale: str):
    layout, composition = _composed(locale, peppol=True)
    expected = not_subject_to_vat(locale)
    assert expected.startswith(OPENING[locale])
    [output] = RENDERERS.render(composition, layout)
    assert output.facts["syntax"] == "peppol-bis-3-ubl"
    ubl = etree.fromstring(output.content)
    reasons = {el.text for el in ubl.iterfind(".//cac:TaxCategory/cbc:TaxExemptionReason", UBL)}
    assert reasons == {expected}
    report = ev.validate_ubl(output.content)
    assert report.errors == [] and report.warnings == [], report
    cii = cii_bytes(cii_tree(composition.invoice))
    assert {el.text for el in etree.fromstring(cii).iterfind(".//ram:ExemptionReason", RAM)} \
        == {expected}
    assert ev.validate_cii(cii).errors == []


@pytest.mark.parametrize(("locale", "lines"), [
    ("fi-FI", ["Ei arvonlisäveron alainen: korttitapahtumat ovat kortinhaltijan",
               "puolesta suoritettuja maksuja; korot ja palkkiot ovat",
               "arvonlisäverottomia rahoituspalveluja"]),
    ("sv-FI", ["Ej momspliktig: korttransaktioner är betalningar för kortinnehavarens",
               "räkning; ränta och avgifter är momsfria finansieringstjänster"]),
])
def test_a_finnish_card_holders_finvoice_says_it_in_finnish_or_swedish(locale, lines):
    layout, composition = _composed(locale, peppol=False)
    [output] = RENDERERS.render(composition, layout)
    assert output.facts["syntax"] == "finvoice-3.0"
    [vat] = etree.fromstring(output.content).iter("VatSpecificationDetails")
    assert [t.text for t in vat.findall("VatFreeText")] == lines
    assert ev.validate_finvoice(output.content).errors == []


@pytest.mark.parametrize("locale", ["nb-NO", "sv-SE"])
def test_a_card_invoice_pinned_to_1_0_0_says_it_in_its_language_too(locale: str):
    # the builder serves every version: released folders are unchanged, the text is server's
    _, composition = _composed(locale, peppol=True, version="1.0.0")
    [entry] = composition.invoice.vat_breakdown
    assert entry.exemption_reason == not_subject_to_vat(locale) != ENGLISH
