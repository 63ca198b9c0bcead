"""Finvoice names and free texts end between words, never inside one (customers' complaint).

A Finnish company's e-invoice named its seller "Kiinteistö Osakeyhtiö Tampereen Hämeenkadun
Liike- ja Toimistotalo Tam" and its payee "Kiinteistö Osakeyhtiö Tampereen Häm": the Finvoice
writer cut names and texts at the XSD's lengths (`[:70]`, `[:35]`, `[:512]`). Against the
Finvoice 3.0 XSD (tests/schemas/finvoice/Finvoice3.0.xsd) each is now fitted by its type:

- repeating elements take the rest at spaces: `SellerOrganisationName` and
  `BuyerOrganisationName` (2..70, unbounded), `InvoiceFreeText` and `RowFreeText` (512,
  unbounded), `PaymentTermsFreeText` (70, at most 2: a longer text ends with "…");
- single ones end at the last space before their limit: the contact names (70),
  `EpiNameAddressDetails` (35), `TownName` (35), `ArticleName` (100), `ArticleDescription`
  (512), the allowance and charge reasons (70, a row discount's 35), `CardHolderName` (70).

Identifiers (order, contract and accounting references, row identifiers) are cut as before:
they are codes, not words. Every document passes the Finvoice XSD.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from server.channels import Renderers
from server.channels.einvoice.finvoice import organisation_names
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.compose.text_limits import cut_at_space, wrap_at_spaces
from tests.layouts import shipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
RENDERERS = Renderers()

COMPANY = "Kiinteistö Osakeyhtiö Tampereen Hämeenkadun Liike- ja Toimistotalo Tammela"  # 74
CONTACT = "Isännöinti ja laskutus: Anna-Liisa Virtanen-Korhonen, Kiinteistöpalvelut Tampere"
TOWN = "Seinäjoen kaupungin keskustan yhteispalvelupiste"  # 48: Finvoice takes 35
LINE_NAME = ("Vuokra, liikehuoneisto A 12, Hämeenkatu 10, ajalta 1.3.–31.3.2026, sisältää "
             "ylläpitovastikkeen, vesimaksun ja autopaikan")
SENTENCE = ("Vuokrasopimuksen 2024-117 mukainen kuukausivuokra ja sopimuksen liitteen 2 "
            "mukaiset kiinteistön ylläpitokulut, jotka tarkistetaan vuosittain. ")
NOTE = (SENTENCE * 4).strip() + "\n" + (SENTENCE * 3).strip()
TERMS = ("Maksuehto 14 päivää netto. Viivästyskorko korkolain mukaan. Huomautukset laskusta "
         "8 päivän kuluessa laskun päiväyksestä; myöhemmin tehtyjä huomautuksia ei voida "
         "ottaa huomioon.")
DISCOUNT = "Vuokranalennus kesäkuun julkisivuremontin aiheuttamasta haitasta, 10 prosenttia"
ROW_DISCOUNT = "Kanta-asiakasalennus vuokrasopimuksesta"


def finvoice(data: dict[str, Any]) -> etree._Element:
    layout = LAYOUTS.get("b2b-invoice")
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW, locale="fi-FI",
                                         channels=(Channel.EINVOICE,)))
    [output] = RENDERERS.render(composition, layout)
    assert output.facts["syntax"] == "finvoice-3.0"
    report = ev.validate_finvoice(output.content)
    assert report.errors == [], report.errors
    return etree.fromstring(output.content)


def long_texts() -> dict[str, Any]:
    """The b2b-invoice's Finnish sample to a Finnish consumer (Finvoice), with a long name
    or text in every field the Finvoice writer must fit."""
    data = json.loads(LAYOUTS.get("b2b-invoice").sample_data("fi-FI"))
    for key in ("org_number", "vat_id", "peppol_id"):
        data["customer"].pop(key, None)
    data["seller"]["name"] = COMPANY
    data["seller"]["contact"]["name"] = CONTACT
    data["customer"]["address"]["city"] = TOWN
    line = data["lines"][0]
    line.update(name=LINE_NAME, description=(SENTENCE * 6).strip(), note=NOTE,
                allowances_charges=[{"is_charge": False, "amount": "10.00",
                                     "reason": ROW_DISCOUNT}])
    data.update(note=NOTE, payment_terms=TERMS)
    data["allowances_charges"] = [{"is_charge": False, "amount": "50.00", "reason": DISCOUNT,
                                   "vat_category": "S", "vat_rate": "25.5"}]
    return data


def flat(text: str) -> str:
    return " ".join(text.split())


def ends_at_a_space(piece: str, source: str, limit: int) -> bool:
    """`piece` is `source` (whitespace made single spaces) up to a word's end, in `limit`."""
    whole = flat(source)
    return (len(piece) <= limit and whole.startswith(piece) and piece == piece.strip()
            and (len(piece) == len(whole) or whole[len(piece)] == " "))


@pytest.fixture(scope="module")
def doc() -> etree._Element:
    return finvoice(long_texts())


def texts(doc: etree._Element, path: str) -> list[str]:
    return [el.text for el in doc.iterfind(path)]


def test_a_long_finnish_company_name_is_wrapped_onto_two_organisation_names(doc):
    assert texts(doc, "SellerPartyDetails/SellerOrganisationName") == [
        "Kiinteistö Osakeyhtiö Tampereen Hämeenkadun Liike- ja Toimistotalo", "Tammela"]


@pytest.mark.parametrize(("path", "source", "limit"), [
    ("EpiDetails/EpiPartyDetails/EpiBeneficiaryPartyDetails/EpiNameAddressDetails",
     COMPANY, 35),
    ("SellerContactPersonName", CONTACT, 70),
    ("BuyerPartyDetails/BuyerPostalAddressDetails/BuyerTownName", TOWN, 35),
    ("InvoiceRow[1]/ArticleName", LINE_NAME, 100),
    ("InvoiceRow[1]/ArticleDescription", SENTENCE * 6, 512),
    ("InvoiceDetails/DiscountDetails/FreeText", DISCOUNT, 70),
    ("InvoiceRow[1]/RowDiscountTypeText", ROW_DISCOUNT, 35),
])
def test_a_single_element_ends_at_the_last_space_before_its_limit(doc, path, source, limit):
    [text] = texts(doc, path)
    assert len(flat(source)) > limit and ends_at_a_space(text, source, limit), text


@pytest.mark.parametrize("path", ["InvoiceDetails/InvoiceFreeText",
                                  "InvoiceRow[1]/RowFreeText"])
def test_a_long_free_text_goes_on_in_further_elements_keeping_its_line_break(doc, path):
    pieces = texts(doc, path)
    assert len(pieces) == 2 and all(len(p) <= 512 for p in pieces)
    assert flat(" ".join(pieces)) == flat(NOTE) and "\n" in "".join(pieces)


def test_payment_terms_fill_their_two_elements_and_end_at_a_word(doc):
    pieces = texts(doc, "InvoiceDetails/PaymentTermsDetails/PaymentTermsFreeText")
    assert len(pieces) == 2 and all(len(p) <= 70 for p in pieces)
    assert pieces[-1].endswith(" …")
    assert ends_at_a_space(" ".join(pieces).removesuffix(" …"), TERMS, 140)


def test_a_buyer_name_is_wrapped_and_never_leaves_a_piece_under_two_characters():
    # the b2b and card data cap a buyer name at 70 (one element); the writer wraps longer
    assert organisation_names(COMPANY + "vaara Oy") == [
        "Kiinteistö Osakeyhtiö Tampereen Hämeenkadun Liike- ja Toimistotalo",
        "Tammelavaara Oy"]
    # broken at a space, not after "Itä-" (which would fit the first element)
    assert organisation_names("Osuuskunta " * 6 + "Itä-Suomen Metsänomistajat A") == [
        "Osuuskunta " * 5 + "Osuuskunta", "Itä-Suomen Metsänomistajat A"]
    name = "x" * 68 + " A"  # 70: fits, as given
    assert organisation_names(name) == [name]
    assert organisation_names("x" * 60 + " " + "y" * 9 + " A") == ["x" * 60, "y" * 9 + " A"]
    assert organisation_names("Oy " + "x" * 66 + " B " + "y" * 69) == [
        "Oy", "x" * 66 + " B", "y" * 69]


@pytest.mark.parametrize(("text", "size", "expected"), [
    (None, 35, None),
    ("Fjordbank Suomi Oy", 35, "Fjordbank Suomi Oy"),
    ("Fjordbank  Suomi Oy ", 35, "Fjordbank  Suomi Oy "),  # fits: as given
    ("Fjordbank Kortservice Oy", 20, "Fjordbank"),
    ("Fjordbank Kortservice Oy", 21, "Fjordbank Kortservice"),  # a space right after
    ("Fjordbank   Kortservice\nOy Ab", 23, "Fjordbank Kortservice"),
    ("Pohjois-Karjalan-Osuuspankkikortti Oy", 20, "Pohjois-Karjalan-Osu"),  # one word
    ("A Pohjois-Karjalan-Osuuspankki", 20, "A"),
])
def test_cut_at_space(text, size, expected):
    assert cut_at_space(text, size) == expected


def test_cut_at_space_keeps_the_types_minimum_length():
    assert cut_at_space("A Pohjois-Karjalan-Osuuspankki", 35, minimum=2) == \
        "A Pohjois-Karjalan-Osuuspankki"
    assert cut_at_space("A Pohjois-Karjalan-Osuuspankkikortti", 35, minimum=2) == \
        "A Pohjois-Karjalan-Osuuspankkikortt"


@pytest.mark.parametrize(("text", "size", "options", "expected"), [
    (None, 70, {}, []),
    ("  \n", 70, {}, []),
    ("Ikke mva-pliktig: renter", 70, {}, ["Ikke mva-pliktig: renter"]),
    ("Ikke mva-pliktig: renter", 12, {}, ["Ikke", "mva-pliktig:", "renter"]),  # not "mva-"
    ("eins zwei drei vier fünf", 9, {"parts": 2}, ["eins zwei", "drei …"]),
    ("eins\nzwei drei", 9, {}, ["eins zwei", "drei"]),
    ("eins\nzwei drei", 9, {"keep_breaks": True}, ["eins\nzwei", "drei"]),
])
def test_wrap_at_spaces(text, size, options, expected):
    assert wrap_at_spaces(text, size, **options) == expected
