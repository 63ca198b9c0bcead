"""The card issuer's VAT id and electronic address (EN 16931 BT-34 with its EAS scheme).

Found by: the de-DE, de-AT, en-GB and pl-PL card-invoice samples to a Peppol receiver were
refused with PEPPOL-EN16931-R020 at `$.issuer.org_number`: their issuers' organisation
numbers (Handelsregister, Firmenbuch, Companies House, KRS) are no Peppol identifiers and
the card-invoice data had no other way to give the issuer an electronic address. Now the
issuer's VAT id (`$.issuer.vat_id`, checked with python-stdnum) gives it, with the
country's VAT EAS code from the Peppol code list (9930 DE, 9914 AT, 9932 GB, 9945 PL), or
an explicit `$.issuer.peppol_id` does; the rendered UBL is checked by `einvoice_validation`
(UBL XSD, CEN EN 16931 schematron, Peppol BIS 3 rules).
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
from stdnum import get_cc_module

from server.channels import Renderers
from server.compose import codelists
from server.compose import identifiers as ids
from server.compose.builders import card_statement
from server.compose.builders.base import BuildRequest
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

LAYOUT = shipped().get("card-invoice")
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
RENDERERS = Renderers()
UBL = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
SAMPLES = tomllib.loads((LAYOUT.path / "manifest.toml").read_text())["samples"]
# the card holders' own (business) Peppol ids, by country (valid VAT check digits)
HOLDER_IDS = {"DE": "9930:DE136695976", "AT": "9914:ATU13585627", "GB": "9932:GB980780684",
              "PL": "9945:PL8567346215", "NO": "0192:987654325"}
# issuer country -> the EAS code of its VAT identifier (Peppol BIS Billing 3.0 EAS list)
VAT_SCHEMES = {"de-DE": "9930", "de-AT": "9914", "en-GB": "9932", "pl-PL": "9945"}
SELLER = "cac:AccountingSupplierParty/cac:Party"


def _seller_vat_ids(seller) -> list[str]:
    """BT-31: the seller's PartyTaxScheme/CompanyID under the VAT tax scheme."""
    return [scheme.findtext("cbc:CompanyID", namespaces=UBL)
            for scheme in seller.findall("cac:PartyTaxScheme", UBL)
            if scheme.findtext("cac:TaxScheme/cbc:ID", namespaces=UBL) == "VAT"]


def _sample(locale: str) -> dict[str, Any]:
    data = json.loads((LAYOUT.path / SAMPLES[locale]).read_text())
    data["customer"]["peppol_id"] = HOLDER_IDS[data["customer"]["address"]["country"]]
    return data


def _ubl(data: dict[str, Any], locale: str) -> bytes:
    composition = compose(ComposeRequest(tenant="t", layout=LAYOUT, data=json.dumps(data),
                                         document_id="d", now=NOW, locale=locale,
                                         channels=(Channel.EINVOICE,)))
    [output] = RENDERERS.render(composition, LAYOUT)
    assert output.facts["syntax"] == "peppol-bis-3-ubl"
    return output.content


def _refused(data: dict[str, Any], locale: str) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        _ubl(data, locale)
    return {v.field: v.description for v in info.value.violations}


def _stdnum_valid(vat: str) -> bool:
    return get_cc_module(vat[:2].lower(), "vat").is_valid(vat)


@pytest.mark.parametrize("locale", sorted(VAT_SCHEMES))
def test_a_sample_issuer_is_addressed_by_its_vat_id_and_its_ubl_validates(locale: str) -> None:
    data = _sample(locale)
    vat = data["issuer"]["vat_id"]
    assert _stdnum_valid(vat), vat  # the sample's VAT id has a valid check digit
    content = _ubl(data, locale)
    report = ev.validate_ubl(content)
    assert report.errors == [] and report.warnings == [], report
    seller = etree.fromstring(content).find(SELLER, UBL)
    endpoint = seller.find("cbc:EndpointID", UBL)
    assert (endpoint.get("schemeID"), endpoint.text) == (VAT_SCHEMES[locale], vat)
    # every line is VAT category O: EN 16931 BR-O-02 forbids the seller VAT id (BT-31)
    assert _seller_vat_ids(seller) == []


@pytest.mark.parametrize("locale", sorted(VAT_SCHEMES))
def test_without_a_vat_id_the_issuer_still_has_no_electronic_address(locale: str) -> None:
    data = _sample(locale)
    del data["issuer"]["vat_id"]
    got = _refused(data, locale)
    assert list(got) == ["$.issuer.org_number"], got
    assert got["$.issuer.org_number"].startswith("[PEPPOL-EN16931-R020]")


@pytest.mark.parametrize("locale", sorted(VAT_SCHEMES))
def test_a_vat_id_with_a_wrong_check_digit_is_refused_at_its_path(locale: str) -> None:
    data = _sample(locale)
    vat = data["issuer"]["vat_id"]
    data["issuer"]["vat_id"] = vat[:-1] + str((int(vat[-1]) + 1) % 10)
    assert not _stdnum_valid(data["issuer"]["vat_id"])
    got = _refused(data, locale)
    assert list(got) == ["$.issuer.vat_id"], got
    assert "is not a valid" in got["$.issuer.vat_id"]
    assert "check digit" in got["$.issuer.vat_id"]  # stdnum's reason, said to the caller
    # the value as JSON writes it, not Python's repr ('NO...')
    assert f'"{data["issuer"]["vat_id"]}"' in got["$.issuer.vat_id"]


def test_a_vat_id_is_normalised_and_may_omit_the_prefix() -> None:
    data = _sample("de-DE")
    data["issuer"]["vat_id"] = "de 812 345 673"
    endpoint = etree.fromstring(_ubl(data, "de-DE")).find(f"{SELLER}/cbc:EndpointID", UBL)
    assert (endpoint.get("schemeID"), endpoint.text) == ("9930", "DE812345673")
    data["issuer"]["vat_id"] = "U13585627"  # Austrian UID without AT, from the address
    data["issuer"]["address"]["country"] = "AT"
    endpoint = etree.fromstring(_ubl(data, "de-DE")).find(f"{SELLER}/cbc:EndpointID", UBL)
    assert (endpoint.get("schemeID"), endpoint.text) == ("9914", "ATU13585627")


def test_an_explicit_electronic_address_wins_over_the_vat_id() -> None:
    data = _sample("de-DE")
    data["issuer"]["peppol_id"] = "0088:4000001000005"  # the issuer's GLN
    content = _ubl(data, "de-DE")
    assert ev.validate_ubl(content).errors == []
    endpoint = etree.fromstring(content).find(f"{SELLER}/cbc:EndpointID", UBL)
    assert (endpoint.get("schemeID"), endpoint.text) == ("0088", "4000001000005")


@pytest.mark.parametrize("peppol_id, rule", [("9999:DE812345673", "PEPPOL-EN16931-CL008"),
                                             ("0192:987654328", "PEPPOL-COMMON-R041"),
                                             ("0088:4000001000006", "PEPPOL-COMMON-R040")])
def test_a_bad_explicit_electronic_address_is_refused_at_its_path(peppol_id: str,
                                                                  rule: str) -> None:
    data = _sample("de-DE")
    data["issuer"]["peppol_id"] = peppol_id
    got = _refused(data, "de-DE")
    assert list(got) == ["$.issuer.peppol_id"], got
    assert got["$.issuer.peppol_id"].startswith(f"[{rule}]")


def test_the_schema_refuses_a_malformed_peppol_id_at_its_path() -> None:
    data = _sample("de-DE")
    data["issuer"]["peppol_id"] = "DE812345673"  # no EAS scheme
    got = _refused(data, "de-DE")
    assert list(got) == ["$.issuer.peppol_id"], got


def test_a_nordic_issuer_stays_addressed_by_its_organisation_number() -> None:
    data = _sample("nb-NO")
    data["issuer"]["vat_id"] = f"NO{ids.compact(data['issuer']['org_number'])}MVA"
    content = _ubl(data, "nb-NO")
    assert ev.validate_ubl(content).errors == []
    seller = etree.fromstring(content).find(SELLER, UBL)
    endpoint = seller.find("cbc:EndpointID", UBL)
    assert (endpoint.get("schemeID"), endpoint.text) == (
        "0192", ids.compact(data["issuer"]["org_number"]))
    assert _seller_vat_ids(seller) == []


@pytest.mark.parametrize("locale, edit, path", [
    ("de-DE", {}, "$.issuer.vat_id"),
    ("de-DE", {"peppol_id": "0088:4000001000005"}, "$.issuer.peppol_id"),
    ("nb-NO", {}, "$.issuer.org_number"),
    ("de-DE", {"vat_id": None}, "$.issuer.org_number"),
])
def test_a_rule_on_the_issuers_address_is_named_where_the_address_came_from(
        locale: str, edit: dict[str, Any], path: str) -> None:
    data = _sample(locale)
    data["issuer"].update(edit)
    data["issuer"] = {k: v for k, v in data["issuer"].items() if v is not None}
    content = card_statement.build(data, BuildRequest(layout=LAYOUT, locale=locale,
                                                      tenant="t", today=NOW.date()))
    assert content.invoice_paths("seller.endpoint_id") == path
    assert content.invoice_paths("seller.endpoint_scheme") == path


def test_the_vat_eas_codes_are_the_countries_vat_schemes_on_the_eas_list() -> None:
    names = {"DE": "Germany VAT", "AT": "Umsatzsteuer", "GB": "United Kingdom VAT",
             "PL": "Poland VAT"}
    for country, code in ids.VAT_EAS.items():
        assert code in codelists.EAS, code
        assert names[country] in codelists.EAS.codes[code], (country, code)


def test_only_a_partys_own_vat_id_is_refused_on_its_check_digit() -> None:
    # A buyer's foreign VAT id stays as given (EN 16931 and Peppol check only its prefix);
    # the issuer's own is checked with stdnum.
    assert ids.vat_id("DE812345674", "DE") == "DE812345674"
    with pytest.raises(ids.IdentifierError, match="check digit"):
        ids.vat_id("DE812345674", "DE", check_digits=True)
    assert ids.vat_id("pl 526-025-02-74", "PL", check_digits=True) == "PL5260250274"


@pytest.mark.parametrize("legal_id, scheme, vat, expected", [
    ("923609016", "0192", "NO923609016MVA", ("0192", "923609016")),  # org number first
    ("HRB 214578 B", None, "DE812345673", ("9930", "DE812345673")),
    ("FN 458712 x", None, "ATU13585627", ("9914", "ATU13585627")),
    ("09876543", None, "GB980780684", ("9932", "GB980780684")),
    ("0000712458", None, "PL5260250274", ("9945", "PL5260250274")),
    ("0000712458", None, None, None),
    ("B12345678", None, "ESB12345678", None),  # no VAT scheme listed for the country here
])
def test_derived_endpoint(legal_id: str, scheme: str | None, vat: str | None,
                          expected: tuple[str, str] | None) -> None:
    assert ids.derived_endpoint(legal_id, scheme, vat) == expected
