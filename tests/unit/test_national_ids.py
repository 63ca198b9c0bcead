"""The customer's national id is checked when the document is composed (QA): a number with a
wrong check digit, length or date is refused INVALID_ARGUMENT at `$.customer.national_id`
naming the scheme and why, instead of being composed and bouncing at Digipost, Kivra or
e-Boks later; a good one is kept in the compact form those mailboxes take.

The numbers here are synthetic: made up and given their check digits, from no register."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.compose.composer import ComposeRequest, compose
from server.compose.identifiers import IdentifierError, national_id
from server.delivery.routing import mailbox_addresses
from server.errors import InvalidInput
from tests.layouts import shipped

FNR = "01017012343"  # NO, born 1970-01-01 (the layouts' samples)


@pytest.mark.parametrize("value, country, compact", [
    (FNR, "NO", FNR),
    ("41017012337", "NO", "41017012337"),  # a D-number: the day + 40
    ("700101-1233", "SE", "197001011233"),  # Kivra's 12 digits, the century from the date
    ("7001011233", "SE", "197001011233"),
    ("19700101-1233", "SE", "197001011233"),
    ("700101+1233", "SE", "187001011233"),  # '+': 100 years or older
    ("850364-2384", "SE", "198503642384"),  # a samordningsnummer: the day + 60
    ("010170-1234", "DK", "0101701234"),
    ("010170-123F", "FI", "010170-123F"),
    ("70010112341", "PL", "70010112341"),
    ("12345678", "DE", "12345678"),  # no scheme Kanal checks: as given
    (" 1234 ", "GB", "1234"),
    ("1234", "AT", "1234"),
])
def test_a_good_national_id_is_kept_compact(value, country, compact):
    assert national_id(value, country, "NO") == compact


@pytest.mark.parametrize("value, country, why", [
    ("01017012345", "NO", "Norwegian fødselsnummer (the customer's country NO: a check digit "
                          "is wrong; 11 digits DDMMYYNNNCC)"),
    ("0101701234", "NO", "Norwegian fødselsnummer (the customer's country NO: wrong length"),
    ("32137012323", "NO", "(the customer's country NO: the date in it is not a possible "
                          "birth date;"),
    ("01013951213", "NO", "the birth date in it is in the future"),  # 2039-01-01
    ("700101-1234", "SE", "Swedish personnummer (the customer's country SE: a check digit is "
                          "wrong"),
    ("701301-1235", "SE", "the date in it is not a possible birth date"),
    ("850364-2385", "SE", "a check digit is wrong"),
    ("320170-1234", "DK", "Danish CPR number (the customer's country DK: the date in it is not "
                          "a possible birth date"),
    ("010170-12", "DK", "wrong length"),
    ("010170-123A", "FI", "Finnish henkilötunnus (the customer's country FI: a check digit is "
                          "wrong"),
    ("70010112342", "PL", "Polish PESEL (the customer's country PL: a check digit is wrong"),
])
def test_a_bad_national_id_is_refused_naming_the_scheme_and_why(value, country, why):
    with pytest.raises(IdentifierError) as refused:
        national_id(value, country, country)
    assert why in refused.value.reason
    assert refused.value.reason.startswith(f'"{value}" is not a ')


def test_a_customer_abroad_keeps_the_number_of_the_sender_s_country():
    # a Norwegian bank's customer living in Sweden is known by a fødselsnummer
    assert national_id(FNR, "SE", "NO") == FNR
    assert national_id("700101-1233", "SE", "NO") == "197001011233"  # the home scheme first
    with pytest.raises(IdentifierError) as refused:
        national_id("01017012345", "SE", "NO")
    assert refused.value.reason == (
        '"01017012345" is neither a Swedish personnummer (the customer\'s country SE: wrong '
        'format; YYYYMMDD-NNNN or YYMMDD-NNNN) nor a Norwegian fødselsnummer (the sender\'s '
        'country NO: a check digit is wrong; 11 digits DDMMYYNNNCC)')
    with pytest.raises(IdentifierError, match="the sender's country NO: a check digit"):
        national_id("01017012345", None, "NO")  # no address: the sender's country's scheme


LAYOUTS = shipped()
STOCKHOLM = {"lines": ["Drottninggatan 1"], "postal_code": "11151", "city": "Stockholm",
             "country": "SE"}


def composed(layout_id: str, **customer):
    layout = LAYOUTS.get(layout_id)
    data = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    data["customer"].update(customer)
    return compose(ComposeRequest(tenant="fjordbank", layout=layout, data=json.dumps(data),
                                  document_id="01JTEST", now=datetime(2026, 3, 2, tzinfo=UTC)))


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder", "welcome-letter"])
def test_compose_refuses_a_bad_national_id_at_its_path(layout_id):
    # was: composed, and the mailbox delivery bounced later (or reached nobody)
    with pytest.raises(InvalidInput) as refused:
        composed(layout_id, national_id="01017012345")
    [violation] = refused.value.violations
    assert violation.field == "$.customer.national_id"
    assert violation.description == (
        '"01017012345" is not a Norwegian fødselsnummer (the customer\'s country NO: a check '
        'digit is wrong; 11 digits DDMMYYNNNCC)')
    assert str(refused.value).startswith("invalid $.customer.national_id: \"01017012345\" is")


def test_compose_keeps_the_national_id_in_the_mailbox_s_form():
    composition = composed("card-invoice", national_id="700101-1233", address=STOCKHOLM,
                           mailbox_ids={})
    assert composition.recipient.national_id == "197001011233"
    assert mailbox_addresses(composition.recipient) == ["kivra:197001011233"]
    assert composed("card-invoice").recipient.national_id == FNR  # the sample's


# A Finnish henkilötunnus: century sign '-' (1900s), 'A' (2000s; since 2023 also B-F, and
# U-Y for the 1900s), a check character that may be a letter. The 2.0.0 layouts' schema
# pattern ^[0-9]{6,8}-?[0-9]{4,5}$ refused both: everyone born since 2000 and a third of all
# Finns got INVALID_ARGUMENT before python-stdnum, the real check, was asked.
HETU = ["131052-308T", "010100A123D", "010100B123D"]
HELSINKI = {"lines": ["Mannerheimintie 1"], "postal_code": "00100", "city": "HELSINKI",
            "country": "FI"}
WITH_NATIONAL_ID = [layout.id for layout in LAYOUTS.latest()
                    if "national_id" in json.dumps(layout.schema)]
# The default (newest) version of each: 2.1.0, the first to take every valid id, or a
# newer one with 2.1.0's schema (2.2.0: 2.1.0 with fixes in its templates: b2b-invoice's
# labels, payment-reminder's and welcome-letter's free text line breaks; b2b-invoice 2.3.0:
# 2.2.0 with the buyer's VAT id printed; 2.4.0: 2.3.0 with the VAT id labels by country and
# amounts of every size printed; card-invoice 2.2.0 and payment-reminder 2.3.0: PDF/UA tags
# and register labels by country, card-invoice's e-mail attaching the Factur-X and the
# Finvoice address; b2b-invoice 2.5.0 and welcome-letter 2.3.0: the tagged PDF's headings and
# logo, the letter's register label; b2b-invoice 2.6.0: a credit note asks for no payment and
# names the invoice it credits; b2b-invoice 2.7.0: no payment identifier breaks inside itself;
# b2b-invoice 2.8.0: the return line fits its box)
DEFAULT_VERSION = {"b2b-invoice": "2.8.0", "card-invoice": "2.2.0", "payment-reminder": "2.3.0",
                   "welcome-letter": "2.3.0"}


def composed_on(version: str | None, layout_id: str, **customer):
    layout = LAYOUTS.get(layout_id, version)
    data = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    data["customer"].update(customer)
    for norwegian in ("org_number", "vat_id"):  # the b2b sample's buyer: a company in Oslo
        data["customer"].pop(norwegian, None)
    return compose(ComposeRequest(tenant="fjordbank", layout=layout, data=json.dumps(data),
                                  document_id="01JTEST", now=datetime(2026, 3, 2, tzinfo=UTC)))


def test_every_layout_with_a_national_id_is_checked_here():
    assert WITH_NATIONAL_ID == ["b2b-invoice", "card-invoice", "payment-reminder",
                                "welcome-letter"]
    assert list(DEFAULT_VERSION) == WITH_NATIONAL_ID


@pytest.mark.parametrize("value", HETU)
@pytest.mark.parametrize("layout_id", WITH_NATIONAL_ID)
def test_a_finnish_customer_composes_on_the_default_version_of_every_layout(layout_id, value):
    composition = composed_on(None, layout_id, national_id=value, address=HELSINKI)
    assert composition.layout_version == DEFAULT_VERSION[layout_id]
    assert composition.recipient.national_id == value
    # 2.1.0 takes it too where a newer version is the default
    assert composed_on("2.1.0", layout_id, national_id=value,
                       address=HELSINKI).recipient.national_id == value
    # the scheme still decides: a wrong check character is refused, naming it
    with pytest.raises(InvalidInput) as refused:
        composed_on(None, layout_id, national_id=value[:-1] + "X", address=HELSINKI)
    assert refused.value.violations[0].field == "$.customer.national_id"
    assert "Finnish henkilötunnus (the customer's country FI: a check digit is wrong" in (
        refused.value.violations[0].description)


@pytest.mark.parametrize("layout_id", WITH_NATIONAL_ID)
def test_a_swedish_customer_of_100_or_older_composes_too(layout_id):
    # a personnummer's '+' (100 years or older) was refused by the same pattern
    composition = composed_on(None, layout_id, national_id="700101+1233", address=STOCKHOLM)
    assert composition.recipient.national_id == "187001011233"


@pytest.mark.parametrize("layout_id", WITH_NATIONAL_ID)
def test_the_2_0_0_layouts_are_unchanged_and_still_refuse_it(layout_id):
    # a version once used is immutable: 2.0.0 renders (and refuses) as before
    with pytest.raises(InvalidInput) as refused:
        composed_on("2.0.0", layout_id, national_id="010100A123D", address=HELSINKI)
    assert [v.field for v in refused.value.violations] == ["$.customer.national_id"]
    assert LAYOUTS.get(layout_id, "2.1.0").path == LAYOUTS.get(layout_id, "2.0.0").path
