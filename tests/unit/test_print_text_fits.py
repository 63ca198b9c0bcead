"""Data text stays in its box and prints with real glyphs (issue 11 items 1 and 2).

Item 1: a card-invoice transaction `description` of 61 characters without a space or hyphen
(a merchant descriptor) widened its column and pushed the amounts past the paper's edge,
and Compose archived it. Its siblings: every field of every 2.0.0 layout whose text the data
controls (names, address lines, descriptions, campaign text, references), both engines and
both locales. Each page is read back character by character with pdfium
(tests/pdf_inspect.py), independently of the preflight: everything stands within the page
area (18 mm margins), the long value is all there (broken, never cut), and the amounts are
there. Then the safety net: a layout that still lets text out (the frozen 1.0.0 card invoice,
a Typst template without its word breaking, an address too long for the window) is refused
by the print channel with INVALID_ARGUMENT naming the field.

Item 2: names in Greek, Cyrillic and Latin Extended print with the layout's own fonts (Noto
Sans after Inter for the letters Inter lacks), and a character no font of the chain has is
refused before rendering, naming the field and the character.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from server.channels.glyphs import missing_glyphs
from server.channels.pdf import engine_of, render_print
from server.channels.sms import normalise_for_gsm, plan_sms
from server.channels.sms_channel import render_sms
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, Layout, load_layout
from server.compose.model import Channel, Composition
from server.errors import InvalidInput
from tests.layouts import shipped
from tests.pdf_inspect import chars_outside, font_names, normalise, pages_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
PAGE_LEFT, PAGE_RIGHT = 18.0, 192.0  # the page area of every Fjordbank layout (A4, 18 mm)
DESCRIPTOR = ("WWWEXAMPLESHOPNOORDER" + "7" * 60)[:61]  # the issue's: 61, no space or hyphen


def unbroken(length: int) -> str:
    """A merchant-descriptor-like string without a break point: capitals and digits."""
    return ("WWWEXAMPLESHOPNOORDER" + "0123456789KLMNOPQRSTUVWXYZ" * 60)[:length]


def engines_for(layout: Layout) -> list[str]:
    names = ["weasyprint"]
    if layout.section("print").get("typst_template"):
        names.append("typst")
    return names


def composed(layout: Layout, data: dict[str, Any], locale: str | None = None,
             channels=()) -> Composition:
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="01JTEST", now=NOW, locale=locale,
                                  channels=channels))


def sample(layout: Layout, name: str = "sample.json") -> dict[str, Any]:
    return json.loads((layout.path / name).read_text(encoding="utf-8"))


def put(data: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at a dotted path with list indexes: `transactions.0.description`."""
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:  # an optional object the sample leaves out is made
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[int(last) if last.isdigit() else last] = value


def amounts(composition: Composition) -> list[str]:
    """Amounts the page must show, as composed."""
    c = composition.context
    if "transactions" in c:  # card invoice
        return [c["summary"]["new_balance"], *(tx["amount"] for tx in c["transactions"])]
    if "totals" in c:  # b2b invoice
        return [c["totals"]["payable"], *(line["net"] for line in c["lines"])]
    if "payment" in c:  # payment reminder
        return [c["payment"]["amount"]]
    return []


def render(engine: str, layout: Layout, composition: Composition) -> bytes:
    """Through the print channel: the glyph check and the preflight run as in production."""
    return render_print(composition, layout, print_engines(engine, layout)).content


def assert_fits(pdf: bytes, composition: Composition, value: str) -> None:
    outside = chars_outside(pdf, PAGE_LEFT, PAGE_RIGHT, top=5, bottom=292)
    assert not outside, f"text outside the page area: {outside[:5]}"
    text = " ".join(pages_text(pdf))
    flat = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", value) in flat, "the long value is cut"
    assert "…" not in text
    for amount in amounts(composition):
        assert normalise(amount) in text, f"{amount} is not on the page"


# --- item 1: the example, and its siblings -------------------------------------------


@pytest.mark.parametrize("engine", ["weasyprint", "typst"])
@pytest.mark.parametrize("sample_name", ["sample.json", "sample-sv-SE.json"])
def test_card_invoice_61_character_descriptor_keeps_the_amounts_on_the_page(engine, sample_name):
    layout = LAYOUTS.get("card-invoice")
    data = sample(layout, sample_name)
    data["transactions"][0]["description"] = DESCRIPTOR
    composition = composed(layout, data)
    assert_fits(render(engine, layout, composition), composition, DESCRIPTOR)


# (layout, path in the sample, length[, sample]): every field whose text the data controls
# and a page shows, at the schema's longest (capped where a paragraph would only fill pages)
SIBLINGS = [
    ("card-invoice", "transactions.0.description", 80),
    ("card-invoice", "transactions.0.place", 40),
    ("card-invoice", "fees.0.description", 80),
    ("card-invoice", "issuer.name", 80),
    ("card-invoice", "issuer.customer_service.web", 80),
    ("card-invoice", "card_account.card_holder", 70),
    ("card-invoice", "card_account.account_number", 34),
    ("card-invoice", "customer.name", 70),
    ("card-invoice", "customer.address.lines.0", 70),
    ("card-invoice", "customer.address.city", 40),
    ("card-invoice", "invoice.number", 35),
    ("payment-reminder", "creditor.name", 80),
    ("payment-reminder", "invoice.description", 120),
    ("payment-reminder", "invoice.number", 35),
    ("payment-reminder", "customer.name", 70),
    ("payment-reminder", "customer.address.lines.0", 70),
    ("payment-reminder", "notice.message", 300, "sample-collection-notice.json"),
    ("payment-reminder", "notice.legal_text", 300, "sample-collection-notice.json"),
    ("b2b-invoice", "lines.0.name", 200),
    ("b2b-invoice", "lines.0.description", 300),
    ("b2b-invoice", "seller.name", 80),
    ("b2b-invoice", "buyer_reference", 50),  # 100: refused, see below
    ("b2b-invoice", "note", 300),
    ("b2b-invoice", "customer.name", 70),
    ("welcome-letter", "letter.paragraphs.0", 300),
    ("welcome-letter", "letter.subject", 120),
    ("welcome-letter", "letter.highlights.0.value", 80),
    ("welcome-letter", "letter.signatures.0.name", 70),
    ("welcome-letter", "campaign.body", 300),
    ("welcome-letter", "customer.customer_id", 64),
    ("welcome-letter", "campaign.url", 80),
    ("card-invoice", "transactions.0.description", 80, "sample-sv-SE.json"),
]


# each sibling with each engine its layout has a template for (the welcome letter: WeasyPrint)
ENGINE_SIBLINGS = [(engine, sibling) for sibling in SIBLINGS
                   for engine in engines_for(LAYOUTS.get(sibling[0]))]


@pytest.mark.parametrize(("engine", "sibling"), ENGINE_SIBLINGS,
                         ids=[f"{e}-" + ":".join(map(str, s[:2] + s[3:]))
                              for e, s in ENGINE_SIBLINGS])
def test_long_unbroken_text_stays_in_its_box(engine, sibling):
    layout_id, path, length, *sample_name = sibling
    layout = LAYOUTS.get(layout_id)
    data = sample(layout, *sample_name)
    value = unbroken(length)
    if path.endswith(".url"):  # a host and path (server/compose/web_addresses.py)
        value = "fjordbank.no/" + unbroken(length - len("fjordbank.no/"))
    try:
        put(data, path, value)
    except (KeyError, IndexError):
        pytest.fail(f"{path} is not in {layout.ref}'s sample")
    composition = composed(layout, data)
    assert_fits(render(engine, layout, composition), composition, value)


# --- the safety net ------------------------------------------------------------------------


def test_frozen_layout_that_pushes_amounts_off_the_page_is_refused_with_the_field():
    # card-invoice 1.0.0 is frozen as it was archived: the example, exactly
    layout = LAYOUTS.get("card-invoice", "1.0.0")
    data = sample(layout)
    data["transactions"][0]["description"] = DESCRIPTOR
    with pytest.raises(InvalidInput) as refused:
        render(engine="weasyprint", layout=layout, composition=composed(layout, data))
    first = refused.value.violations[0]
    assert first.field == "$.transactions[0].description"
    assert "past the right edge of the text area" in first.description


def test_the_field_named_is_the_one_on_the_rows_pushed_out_not_a_longer_word_elsewhere():
    # The descriptor widens the transactions' column and pushes the amounts out, on both
    # pages of the table. The card holder's name has a longer unbroken word, which fits in
    # its own box: the longest word on the page would name it, the rows pushed out do not
    # hold it.
    layout = LAYOUTS.get("card-invoice", "1.0.0")
    data = sample(layout)
    data["card_account"]["card_holder"] = "KARINORDMANN" + "H" * 50
    render("weasyprint", layout, composed(layout, data))  # fits on its own
    data["transactions"][0]["description"] = unbroken(56)
    with pytest.raises(InvalidInput) as refused:
        render("weasyprint", layout, composed(layout, data))
    assert [(v.field, v.description.split(":")[0]) for v in refused.value.violations] == [
        ("$.transactions[0].description", "page 1"), ("$.transactions[0].description", "page 2")]
    assert all("past the right edge of the text area" in v.description
               for v in refused.value.violations)


# b2b-invoice 2.4.0 (the default) prints every amount its schema takes (tests/unit/
# test_b2b_24.py); 2.3.0, released, still refuses these, naming the field
CANNOT_PRINT_EVERY_AMOUNT = {"b2b-invoice": "2.3.0"}


@pytest.mark.parametrize(("layout_id", "path", "value"), [
    # the total (computed from the amounts) runs off the page; the web address is the
    # longest word on its line, and the rows hold no input string as printed
    ("card-invoice", "transactions.0.amount", "99999999999999.99"),
    # the line sum (quantity x price) runs into the VAT rate; the line's name is the
    # longest word on its row
    ("b2b-invoice", "lines.0.unit_price", "999999999.99"),
    # whole numbers at the fields the layout's schema declares numbers: a price without
    # decimals, a quantity (the line sum 1 250 000 000,00 runs into the VAT rate)
    ("b2b-invoice", "lines.0.unit_price", "100000000"),
    ("b2b-invoice", "lines.0.quantity", "999999999"),
    # or written as a JSON number, as the schema allows
    ("b2b-invoice", "lines.0.unit_price", 100000000),
])
def test_an_outsized_amount_is_named_not_the_longest_word_beside_it(layout_id, path, value):
    layout = LAYOUTS.get(layout_id, CANNOT_PRINT_EVERY_AMOUNT.get(layout_id))
    data = sample(layout)
    put(data, path, value)
    with pytest.raises(InvalidInput) as refused:
        render(engine_of(layout), layout, composed(layout, data))
    index = path.split(".")
    assert {v.field for v in refused.value.violations} == {
        f"$.{index[0]}[{index[1]}].{index[2]}"}


def test_an_outsized_line_sum_names_the_larger_of_quantity_and_price():
    # neither fills its own column; their product, the line sum 2 500 000 500,00, runs into
    # the VAT rate: the price (7 integer digits against the quantity's 4) made it so
    layout = LAYOUTS.get("b2b-invoice", CANNOT_PRINT_EVERY_AMOUNT["b2b-invoice"])
    data = sample(layout)
    data["lines"][0].update(quantity="1000", unit_price="2500000.50")
    with pytest.raises(InvalidInput) as refused:
        render(engine_of(layout), layout, composed(layout, data))
    assert {v.field for v in refused.value.violations} == {"$.lines[0].unit_price"}


def test_a_long_number_that_is_no_amount_is_not_named_as_one():
    # a 12-digit order reference is a string field of the schema, not a number: the outsized
    # price is named, though the reference has more integer digits
    layout = LAYOUTS.get("b2b-invoice", CANNOT_PRINT_EVERY_AMOUNT["b2b-invoice"])
    data = sample(layout)
    data["lines"][0].update(unit_price="100000000", order_line_reference="123456789012")
    with pytest.raises(InvalidInput) as refused:
        render(engine_of(layout), layout, composed(layout, data))
    assert {v.field for v in refused.value.violations} == {"$.lines[0].unit_price"}


def card_invoice_without_typst_breaks(root: Path) -> Path:
    """A copy of the card invoice 2.0.0 (and `_shared`) under `root` whose Typst `fit`
    breaks nothing (as a careless template would be); -> its version folder."""
    shutil.copytree(DEFAULT_LAYOUTS_DIR / "_shared", root / "_shared")
    folder = root / "card-invoice" / "2.0.0"
    shutil.copytree(DEFAULT_LAYOUTS_DIR / "card-invoice" / "2.0.0", folder)
    base = root / "_shared" / "fjordbank-2-typst" / "base.typ"
    source = base.read_text()
    breaking = source[source.index("#let fit("):source.index("// No table row alone")]
    base.write_text(source.replace(
        breaking, "#let fit(value, width: 0pt, size: none, longest: 0) = value\n\n"))
    return folder


@pytest.fixture(scope="module")
def typst_without_word_breaks(tmp_path_factory) -> Layout:
    """The card invoice 2.0.0 with a Typst `fit` that breaks nothing: the description
    overflows its column into the next."""
    return load_layout(card_invoice_without_typst_breaks(tmp_path_factory.mktemp("layouts")))


def test_typst_text_over_its_neighbour_is_refused_with_the_field(typst_without_word_breaks):
    layout = typst_without_word_breaks
    data = sample(layout)
    data["transactions"][0]["description"] = unbroken(80)
    with pytest.raises(InvalidInput) as refused:
        render("typst", layout, composed(layout, data))
    fields = {v.field for v in refused.value.violations}
    assert fields == {"$.transactions[0].description"}, refused.value.violations
    assert any("drawn over text" in v.description or "past the right edge" in v.description
               for v in refused.value.violations)


@pytest.mark.parametrize("engine", ["weasyprint", "typst"])
def test_an_address_taller_than_the_window_is_refused_not_clipped(engine):
    layout = LAYOUTS.get("card-invoice")
    data = sample(layout)
    data["customer"]["address"]["lines"] = [unbroken(70), unbroken(69), unbroken(68)]
    with pytest.raises(InvalidInput) as refused:
        render(engine, layout, composed(layout, data))
    [window] = [v for v in refused.value.violations if "envelope window" in v.description]
    assert window.field.startswith("$.customer.address.lines[")


def test_a_facts_box_value_too_long_for_the_first_page_is_refused_with_its_field():
    # A buyer's reference of 100 characters without a space (the schema's longest) wraps
    # inside the facts box, which then reaches down into the invoice lines: refused, not
    # printed over them. (50 fit: test_long_unbroken_text_stays_in_its_box.)
    layout = LAYOUTS.get("b2b-invoice")
    data = sample(layout)
    data["buyer_reference"] = unbroken(100)
    for engine in engines_for(layout):
        try:
            pdf = render(engine, layout, composed(layout, data))
        except InvalidInput as refused:
            assert refused.violations[0].field == "$.buyer_reference"
        else:  # or it fits
            assert_fits(pdf, composed(layout, data), unbroken(100))


def test_preflight_passes_every_sample_of_every_layout_and_engine():
    for layout in [*LAYOUTS.latest(), LAYOUTS.get("card-invoice", "1.0.0")]:
        if Channel.PRINT not in layout.channels:
            continue  # the NPS survey: e-mail and SMS only
        for path in sorted(layout.path.glob("sample*.json")):
            composition = composed(layout, json.loads(path.read_text(encoding="utf-8")))
            for engine in engines_for(layout):
                render(engine, layout, composition)  # raises when refused


# --- item 2: fonts for every customer's name ------------------------------------------------

MANY_SCRIPTS = {
    "customer.name": "Ελένη Παπαδοπούλου-Ŋŉǅ",  # Greek; Latin Extended-A/-B Inter lacks
    "customer.address.lines.0": "ул. Большая Морская 18 кв. 4",  # Cyrillic
    "transactions.0.description": "ǄUMBERK ŁÓDŹ ŞÜKRÜ ÇAĞLAR Nguyễn Đức",
}


@pytest.mark.parametrize("engine", ["weasyprint", "typst"])
def test_names_in_many_scripts_print_with_the_layouts_fonts(engine):
    layout = LAYOUTS.get("card-invoice")
    data = sample(layout)
    for path, value in MANY_SCRIPTS.items():
        put(data, path, value)
    composition = composed(layout, data)
    pdf = render(engine, layout, composition)
    text = " ".join(pages_text(pdf))
    for value in MANY_SCRIPTS.values():
        assert normalise(value) in text or normalise(value.upper()) in text
    fonts = {name.replace("-", "") for name in font_names(pdf)}  # "Noto-Sans", "NotoSans"
    # ŉ ǅ Ǆ are not in Inter: Noto Sans draws them; no other font is used
    assert any(name.startswith("NotoSans") for name in fonts), fonts
    assert all(name.startswith(("Inter", "NotoSans")) for name in fonts), fonts


@pytest.mark.parametrize(("layout_id", "path", "field"), [
    ("card-invoice", "customer.name", "$.customer.name"),
    ("card-invoice", "customer.address.lines.0", "$.customer.address.lines[0]"),
    ("payment-reminder", "creditor.name", "$.creditor.name"),
    ("b2b-invoice", "customer.address.lines.0", "$.customer.address.lines[0]"),
    ("welcome-letter", "letter.paragraphs.0", "$.letter.paragraphs[0]"),
])
def test_a_character_no_font_draws_is_refused_with_field_and_code_point(layout_id, path, field):
    layout = LAYOUTS.get(layout_id)
    data = sample(layout)
    put(data, path, "Kari \U00010380 Nordmann 李")  # Ugaritic alpa; CJK
    with pytest.raises(InvalidInput) as refused:  # the letter is asked for
        composed(layout, data, channels=(Channel.PRINT,))
    [violation] = [v for v in refused.value.violations if v.field == field]  # one per field
    assert "U+10380 (\U00010380) and U+674E (李)" in violation.description, violation


def test_the_print_channel_itself_refuses_before_rendering():
    # a plan without print (an SMS alone) composes; the print renderer still refuses
    layout = LAYOUTS.get("card-invoice")
    data = sample(layout)
    data["customer"]["name"] = "Kari \U00010380"
    composition = composed(layout, data, channels=(Channel.SMS,))
    sms = render_sms(composition, layout)
    assert "\U00010380" in sms.content.decode() or sms.facts["template"] == "sms-short.txt"
    with pytest.raises(InvalidInput) as refused:
        render("weasyprint", layout, composition)
    assert refused.value.violations[0].field == "$.customer.name"


def test_a_plan_that_can_do_without_the_letter_skips_it_with_the_reason():
    # the reminder's first stage goes by SMS (primary) with print only as the fallback: the
    # fallback that would print a box is left out, and the plan says why
    layout = LAYOUTS.get("payment-reminder")
    data = sample(layout)
    data["creditor"]["name"] = "Inkasso \U00010380"
    composition = composed(layout, data)
    assert Channel.PRINT not in (*composition.channel_plan.channels,
                                 *composition.channel_plan.fallbacks)
    [skipped] = [s for s in composition.channel_plan.skipped if s.channel is Channel.PRINT]
    assert skipped.field == "$.creditor.name" and "U+10380" in skipped.reason


def test_glyph_check_follows_the_layouts_font_chain():
    # ŉ (U+0149) is in Noto Sans, not in Inter: fine on 2.0.0, refused on the frozen 1.0.0
    # layouts, whose only font is Inter (they printed a box)
    def data(layout: Layout) -> dict[str, Any]:
        out = sample(layout)
        out["customer"]["name"] = "ŉ Kari"
        return out

    new = LAYOUTS.get("card-invoice")
    assert missing_glyphs(composed(new, data(new), channels=(Channel.PRINT,)), new) == []
    old = LAYOUTS.get("card-invoice", "1.0.0")
    with pytest.raises(InvalidInput) as refused:
        composed(old, data(old), channels=(Channel.PRINT,))
    [violation] = refused.value.violations
    assert violation.field == "$.customer.name" and "U+0149" in violation.description


def test_combining_marks_count_as_the_letter_they_make():
    layout = LAYOUTS.get("card-invoice")
    data = sample(layout)
    data["customer"]["name"] = "A\u030angstro\u0308m Ba\u0301rd\u200c"  # decomposed, ZWNJ
    assert missing_glyphs(composed(layout, data), layout) == []


def test_sms_carries_what_the_print_fonts_cannot_and_says_how():
    # no font is involved in an SMS: UCS-2 (UTF-16 on the air) carries U+10380 as a
    # surrogate pair, unchanged; what the channel changed to fit is in its facts
    message = plan_sms(normalise_for_gsm("Hei Kari \U00010380!"))
    assert (message.encoding, message.text, message.units) == ("UCS-2", "Hei Kari \U00010380!", 12)
    layout = LAYOUTS.get("card-invoice")
    data = sample(layout)
    data["customer"]["name"] = "Kari \U00010380"
    sms = render_sms(composed(layout, data, channels=(Channel.SMS,)), layout)
    # the greeting would make it two UCS-2 segments: the layout's shorter variant, recorded
    assert sms.facts["template"] == "sms-short.txt" and sms.facts["segments"] == 1


def test_every_channel_that_carries_the_print_pdf_needs_the_glyphs():
    # the e-mail attaches the print PDF, Factur-X is the print PDF/A-3, the mailbox gets it
    from server.channels import channel_unfit

    layout = LAYOUTS.get("card-invoice")
    data = sample(layout)
    data["customer"]["name"] = "Kari \U00010380"
    data["customer"]["email"] = "kari@example.no"
    composition = composed(layout, data, channels=(Channel.SMS,))
    for channel in (Channel.PRINT, Channel.MAILBOX, Channel.EMAIL, Channel.EINVOICE):
        unfit = channel_unfit(composition, layout, channel)
        assert unfit is not None and unfit.field == "$.customer.name", channel
        assert "U+10380" in unfit.reason
    assert channel_unfit(composition, layout, Channel.SMS) is None
    # and a customer who prefers e-mail is refused, not sent boxes by either channel
    data["customer"]["preferences"] = ["email"]
    with pytest.raises(InvalidInput) as refused:
        composed(layout, data)
    assert {v.field for v in refused.value.violations} == {"$.customer.name"}
