"""b2b-invoice 2.4.0, with both engines: the two faults QA found in 2.3.0.

- The VAT identifiers' labels followed the document's locale, not the company's country: a
  German seller (BT-31 "DE812345673") on a de-AT invoice read "UID-Nr. DE812345673" (UID is
  Austria's name). 2.4.0's labels name the VAT id of each country in the document's language
  (labels.toml `vat_<country>`, `buyer_vat_<country>`; builders/invoice.py `vat_label`), as
  2.3.0's do for the company register; the buyer's VAT id (BT-48) likewise.
- An amount the schema takes (15 digits before the decimal point) could not be printed: the
  lines table's amount column holds about 9 digits, and the preflight refused the page
  ("text is drawn over text"). In 2.4.0 every amount prints whole (never broken across
  lines) inside its column: the number columns grow, the VAT breakdown and the totals
  stack, a long total goes under its label in the facts box. Normal invoices look as in
  2.3.0 (the samples' text stands where it stood).

2.3.0 is released and behaves as before. Read back from the rendered PDF (tests/pdf_inspect.py).
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from functools import cache

import pytest

from server.channels.pdf import render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped
from tests.pdf_inspect import chars_outside, find_text, normalise, pages_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
VERSION, OLD = "2.4.0", "2.3.0"
FITS_RETURN_LINE = "2.8.0"  # the first version whose return line never runs out of its box
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ENGINES = ("typst", "weasyprint")
COUNTRIES = ("NO", "SE", "DK", "FI", "DE", "AT", "PL", "GB")
PAGE_LEFT, PAGE_RIGHT = 18.0, 192.0  # mm: the page area (A4, 18 mm margins)


def test_the_default_is_made_from_2_4_0():
    # 2.8.0, the default: 2.7.0 (2.6.0, 2.5.0, 2.4.0 with the tagged PDF's fixes, tests/unit/
    # test_tag_tree.py, with the credit note's, tests/unit/test_b2b_credit_note.py, whose
    # payment identifiers never break, tests/unit/test_b2b_identifiers.py) whose return line
    # fits its box (tests/unit/test_b2b_return_line.py); its labels and data contract are
    # 2.4.0's
    default = LAYOUTS.get("b2b-invoice")
    assert default.version == "2.8.0"
    for name in ("labels.toml", "schema.json"):
        assert (default.path / name).read_bytes() == \
            (LAYOUTS.get("b2b-invoice", VERSION).path / name).read_bytes()


def sample(locale: str, version: str = VERSION) -> dict:
    return json.loads(LAYOUTS.get("b2b-invoice", version).sample_data(locale))


@cache
def printed(data_json: str, engine: str, version: str = VERSION) -> tuple[dict, bytes]:
    """The context and the print PDF, through the print channel (glyphs and preflight)."""
    layout = LAYOUTS.get("b2b-invoice", version)
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=data_json, document_id="01JB2B24", now=NOW,
        channels=(Channel.PRINT,)))
    pdf = render_print(composition, layout, print_engines(engine, layout)).content
    return composition.context, pdf


# --- 1. the VAT identifiers' labels by the company's country --------------------------------

# a valid VAT id and an address of each country (the sellers' and buyers' of the tests)
VAT_IDS = {"NO": "NO923609016MVA", "SE": "SE556677889901", "DK": "DK13585628",
           "FI": "FI20774740", "DE": "DE812345673", "AT": "ATU13585627",
           "PL": "PL7251801126", "GB": "GB434031494"}
ADDRESSES = {
    "NO": {"lines": ["Bryggen 1"], "postal_code": "5003", "city": "Bergen", "country": "NO"},
    "SE": {"lines": ["Drottninggatan 1"], "postal_code": "111 51", "city": "Stockholm",
           "country": "SE"},
    "DK": {"lines": ["Vesterbrogade 1"], "postal_code": "1620", "city": "København V",
           "country": "DK"},
    "FI": {"lines": ["Mannerheimintie 1"], "postal_code": "00100", "city": "Helsinki",
           "country": "FI"},
    "DE": {"lines": ["Postfach 11 02 40"], "postal_code": "10832", "city": "Berlin",
           "country": "DE"},
    "AT": {"lines": ["Kärntner Straße 12"], "postal_code": "1010", "city": "Wien",
           "country": "AT"},
    "PL": {"lines": ["ul. Zachodnia 45"], "postal_code": "90-402", "city": "Łódź",
           "country": "PL"},
    "GB": {"lines": ["1 King Street"], "postal_code": "EC2V 8AU", "city": "London",
           "country": "GB"},
}
# the org numbers of those the composer checks (the sellers of the VAT ids above)
ORG_NUMBERS = {"NO": "923609016", "SE": "5566778899", "DK": "13585628", "FI": "2077474-0"}
# the seller's VAT id label of each country on a de-AT invoice: Germany's and Austria's in
# their own German names, the others after Austria's word with their own name
DE_AT = {"NO": "UID-Nr. (MVA-nr.)", "SE": "UID-Nr. (Momsreg.nr)",
         "DK": "UID-Nr. (CVR/SE-nr.)", "FI": "UID-Nr. (ALV-tunniste)", "DE": "USt-IdNr.",
         "AT": "UID-Nr.", "PL": "UID-Nr. (NIP)", "GB": "UID-Nr. (VAT reg. no.)"}


def austrian_invoice(seller_country: str = "DE") -> dict:
    """QA's case: the de-DE sample's German seller (EUR) sells to an Austrian company,
    reverse charge, in de-AT; `seller_country` moves the seller (address and VAT id)."""
    data = sample("de-DE")
    data["locale"] = "de-AT"
    data["customer"]["vat_id"] = VAT_IDS["AT"]
    data["customer"]["address"] = ADDRESSES["AT"]
    for line in data["lines"]:
        line.update(vat_category="AE", vat_rate="0")
    data["exemption_reasons"] = {"AE": "Steuerschuldnerschaft des Leistungsempfängers"}
    if seller_country != "DE":
        data["seller"]["address"] = ADDRESSES[seller_country]
        data["seller"]["vat_id"] = VAT_IDS[seller_country]
        data["seller"]["org_number"] = ORG_NUMBERS.get(seller_country, "HRB 214578 B")
    return data


def footer(pdf: bytes) -> str:
    return normalise(pages_text(pdf)[0])[-200:]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_german_sellers_vat_id_on_an_austrian_invoice_is_the_ust_idnr(engine):
    context, pdf = printed(json.dumps(austrian_invoice()), engine)
    assert context["labels"]["vat_id"] == "UID-Nr."  # the document is de-AT
    assert context["seller"]["vat_label"] == "USt-IdNr."
    assert "Fjordbank AG · Handelsregister HRB 214578 B · USt-IdNr. DE812345673" in footer(pdf)
    assert "UID-Nr. DE812345673" not in normalise(pages_text(pdf)[0])
    # the Austrian buyer's id keeps Austria's name, in the facts box
    assert "Ihre UID-Nr. ATU13585627" in normalise(pages_text(pdf)[0])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_german_buyers_vat_id_on_an_austrian_invoice_is_the_ust_idnr(engine):
    data = austrian_invoice()
    data["customer"]["vat_id"] = "DE136695976"  # a German buyer, the invoice still de-AT
    context, pdf = printed(json.dumps(data), engine)
    assert context["customer"]["vat_label"] == "Ihre USt-IdNr."
    text = normalise(pages_text(pdf)[0])
    assert "Ihre USt-IdNr. DE136695976" in text and "UID-Nr. DE136695976" not in text


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("country", COUNTRIES)
def test_every_sellers_vat_id_is_named_for_its_country(country, engine):
    # A British seller's return line to Vienna ("Fjordbank AG · 1 King Street · London ·
    # EC2V 8AU · VEREINIGTES KÖNIGREICH") is too long for its box up to 2.7.0, which cut it
    # off, and the print preflight refuses that (tests/unit/test_preflight_clipped.py);
    # 2.8.0 fits it (tests/unit/test_b2b_return_line.py) and has 2.4.0's labels.
    version = FITS_RETURN_LINE if country == "GB" else VERSION
    context, pdf = printed(json.dumps(austrian_invoice(country)), engine, version)
    assert context["seller"]["vat_label"] == DE_AT[country]
    assert f" · {DE_AT[country]} {VAT_IDS[country]}" in footer(pdf), footer(pdf)


# the locales of each country's own language (their label is native, never "X (Y)")
LANGUAGE_COUNTRIES = {"nb": {"NO"}, "sv": {"SE", "FI"}, "da": {"DK"}, "fi": {"FI"},
                      "de": {"DE", "AT"}, "pl": {"PL"}, "en": {"GB"}}


@pytest.mark.parametrize("locale", LAYOUTS.get("b2b-invoice", VERSION).locales)
def test_every_locale_names_each_countrys_vat_id(locale):
    from server.compose.builders.invoice import vat_label

    words = LAYOUTS.get("b2b-invoice", VERSION).labels_for(locale)
    old = LAYOUTS.get("b2b-invoice", OLD).labels_for(locale)
    own = locale[3:]
    for key in ("vat", "buyer_vat"):
        labels = {c: vat_label(words, VAT_IDS[c], c, key) for c in COUNTRIES}
        # the locale's own country keeps 2.3.0's label (domestic invoices read as before)
        assert labels[own] == old[f"{key}_id"] == words[f"{key}_id"], (locale, key)
        for country, label in labels.items():
            native = country in LANGUAGE_COUNTRIES[locale[:2]]
            # another language's country: this language's word, its own name in brackets
            assert native != label.endswith(")"), (locale, key, country, label)
        # the id's prefix decides, whatever the address; unknown countries: the locale's
        assert vat_label(words, "DE812345673", "AT", key) == labels["DE"]
        assert vat_label(words, None, "AT", key) == labels["AT"]
        assert vat_label(words, "CHE123456789", "CH", key) == words[f"{key}_id"]
    # Germany's and Austria's names in German, whichever German the document is in
    if locale.startswith("de"):
        assert (vat_label(words, VAT_IDS["DE"], "DE", "vat"),
                vat_label(words, VAT_IDS["AT"], "AT", "vat")) == ("USt-IdNr.", "UID-Nr.")


@pytest.mark.parametrize("engine", ENGINES)
def test_2_3_0_prints_its_vat_labels_as_before(engine):
    data = austrian_invoice()
    _, pdf = printed(json.dumps(data), engine, OLD)
    assert "· UID-Nr. DE812345673" in footer(pdf)  # the fault, kept in the released version


# --- 2. amounts of every size -----------------------------------------------------------

MAX = "999999999999999.99"  # the schema's largest amount: below 10^15


def outsized(locale: str, case: str) -> dict:
    """The locale's sample with amounts at the schema's limits: `max` one line of MAX at
    0 % (line, unit price, breakdown and totals all 15 digits); `negative` the same
    credited (a negative line and total: "to good"); `vat` 25 % VAT, the total at the
    limit; `quantity` 15-digit quantity; `price` a 15-digit unit price with 6 decimals (the
    most the composer takes) per 100; `allowance` a line and a document allowance of 14
    digits."""
    data = sample(locale)
    line = copy.deepcopy(data["lines"][0])
    for key in ("description", "note", "period", "allowances_charges"):
        line.pop(key, None)
    line.update(id="1", quantity="1", unit_price=MAX, vat_category="Z", vat_rate="0")
    lines = [line]
    if case == "negative":
        line["quantity"] = "-1"
        lines.append(dict(line, id="2", quantity="1", unit_price="1"))
    elif case == "vat":
        line.update(unit_price="799999999999999.99", vat_category="S", vat_rate="25")
    elif case == "quantity":
        line.update(quantity="999999999999999", unit_price="0.99")
    elif case == "price":
        line.update(quantity="0.000001", unit_price="999999999999999.999999",
                    base_quantity="100")
    elif case == "allowance":
        line.update(unit_price="99999999999999.99", allowances_charges=[
            {"is_charge": False, "amount": "90000000000000.00", "reason": "Rabatt"}])
        data["allowances_charges"] = [{"is_charge": False, "amount": "9000000000000.00",
                                       "reason": "Rabatt", "vat_category": "Z",
                                       "vat_rate": "0"}]
    data["lines"] = lines
    if case != "allowance":
        data.pop("allowances_charges", None)
    for key in ("exemption_reasons", "prepaid_amount", "rounding_amount", "rounding_increment"):
        data.pop(key, None)
    return data


def shown_amounts(context: dict) -> list[str]:
    """Every amount the page prints, as composed."""
    totals = [v for v in context["totals"].values() if v]
    return [*(ln[k] for ln in context["lines"] for k in ("net", "unit_price", "quantity")),
            *(ac["amount"] for ln in context["lines"] for ac in ln["allowances_charges"]),
            *(ac["amount"] for ac in context["allowances_charges"]),
            *(b[k] for b in context["vat_breakdown"] for k in ("taxable", "tax")),
            *(t for t in totals if t != context["totals"]["tax_inclusive"])]


def assert_whole_and_inside(pdf: bytes, context: dict) -> None:
    outside = chars_outside(pdf, PAGE_LEFT, PAGE_RIGHT, top=5, bottom=292)
    assert not outside, outside[:5]
    text = pages_text(pdf)[0]
    for value in shown_amounts(context):
        for piece in value.split(" / "):  # a price per base quantity may wrap at its " / "
            assert normalise(piece) in text, (piece, text[:1500])
            boxes = find_text(pdf, piece.replace("\u00a0", " ")) or find_text(pdf, piece)
            assert boxes, piece
            # on one line: never broken across two
            assert all(box.bottom - box.top < 5.0 for box in boxes), (piece, boxes)
    # the facts box's total (2.3.0's WeasyPrint broke it: "999 999 999 999" / "999,99 kr"),
    # whole on one line right of the window, in the first page's top 100 mm (the facts box
    # grows with a transfer title broken over two lines: pl-PL's reaches 97.7 mm)
    grand = context["payment"]["credit_amount"] or context["totals"]["payable"]
    facts = [box for box in find_text(pdf, grand.replace("\u00a0", " ")) + find_text(pdf, grand)
             if box.top < 100 and box.left > 117]
    assert facts and all(box.bottom - box.top < 5.0 for box in facts), (grand, facts)
    # the VAT breakdown's categories on one line each (2.3.0 squeezed "S 25 %" into a column)
    for b in context["vat_breakdown"]:
        category = f"{b['category']} {b['rate']}"
        boxes = find_text(pdf, category.replace("\u00a0", " ")) + find_text(pdf, category)
        assert boxes and all(box.bottom - box.top < 5.0 for box in boxes), (category, boxes)


CASES = ("max", "negative", "vat", "quantity", "price", "allowance")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("locale", LAYOUTS.get("b2b-invoice", VERSION).locales)
def test_the_largest_amounts_print_whole_in_every_locale(locale, engine):
    context, pdf = printed(json.dumps(outsized(locale, "max")), engine)
    assert re.sub(r"\D", "", context["lines"][0]["net"]) == "9" * 17
    assert_whole_and_inside(pdf, context)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("locale", ["nb-NO", "de-DE", "en-GB", "pl-PL"])
@pytest.mark.parametrize("case", CASES[1:])
def test_every_kind_of_outsized_amount_prints_whole(case, locale, engine):
    context, pdf = printed(json.dumps(outsized(locale, case)), engine)
    assert_whole_and_inside(pdf, context)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_amount_column_holds_the_largest_line_amount(engine):
    # the line amount stands right of the VAT rate, with room between: in its own column
    context, pdf = printed(json.dumps(outsized("nb-NO", "max")), engine)
    net, rate = context["lines"][0]["net"], context["lines"][0]["vat"]
    # the line's row, below the first page's top 94 mm: the price and the amount
    found = [b for b in find_text(pdf, net.replace("\u00a0", " ")) or find_text(pdf, net)
             if b.top > 94]
    top = min(b.top for b in found)
    price, amount = sorted((b for b in found if abs(b.top - top) < 1.0), key=lambda b: b.left)
    [vat] = [b for b in find_text(pdf, rate.replace("\u00a0", " ")) or find_text(pdf, rate)
             if abs(b.top - amount.top) < 1.0]
    assert price.right + 2.0 < vat.left, (price, vat)
    assert vat.right + 2.0 < amount.left and amount.right <= PAGE_RIGHT, (vat, amount)


@pytest.mark.parametrize("engine", ENGINES)
def test_2_3_0_refuses_the_largest_line_amount_as_before(engine):
    # 2.3.0 is released: Typst's amount runs into the price ("text is drawn over text");
    # WeasyPrint's facts box breaks the total over two lines
    data = json.dumps(outsized("nb-NO", "max"))
    if engine == "typst":
        with pytest.raises(InvalidInput) as refused:
            printed(data, engine, OLD)
        assert "text is drawn over text" in str(refused.value.violations)
    else:
        context, pdf = printed(data, engine, OLD)
        total = context["totals"]["payable"].replace("\u00a0", " ")
        # the facts box's (in the first 100 mm) on two lines: "999 999 999 999" / "999,99 kr"
        [facts] = [box for box in find_text(pdf, total) if box.top < 100]
        assert facts.bottom - facts.top > 5.0, facts


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("locale", LAYOUTS.get("b2b-invoice", VERSION).locales)
def test_a_normal_invoice_looks_as_in_2_3_0(locale, engine):
    # the samples: every word where 2.3.0 puts it (their VAT ids are their own countries')
    data = json.dumps(sample(locale, OLD))
    (_, new), (_, old) = printed(data, engine), printed(data, engine, OLD)
    assert pages_text(new) == pages_text(old)
    for word in normalise(pages_text(old)[0]).split(" ")[::7]:
        assert find_text(new, word) == find_text(old, word), word


@pytest.mark.parametrize("case", ["max", "allowance"])
def test_typst_without_advance_bounds_measures_the_columns(case):
    # a caller without the bounds (TypstEngine(advance_bounds=False)): the template measures
    # the number columns instead, and the page passes the same preflight
    from server.channels.typst_engine import TypstEngine

    layout = LAYOUTS.get("b2b-invoice", VERSION)
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(outsized("de-DE", case)),
        document_id="01JB2B24", now=NOW, channels=(Channel.PRINT,)))
    pdf = render_print(composition, layout, TypstEngine(advance_bounds=False)).content
    assert_whole_and_inside(pdf, composition.context)
