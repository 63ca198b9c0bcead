"""The unit word after an invoice line's quantity agrees with the quantity (QA finding on the
b2b-invoice: "7 EA", da-DK "1 timer", en-GB "1 hrs"), from the layout's existing labels
(layout versions are immutable) and CLDR's plural rules and unit forms through Babel
(server/compose/units.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from babel import Locale

from server.channels.pdf import PrintEngines, engine_of, render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.units import CLDR_UNITS, unit_word
from tests.layouts import shipped
from tests.pdf_inspect import pages_text

LAYOUTS = shipped()
B2B = LAYOUTS.get("b2b-invoice", "2.0.0")
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LOCALES = ("nb-NO", "sv-SE", "da-DK", "fi-FI", "sv-FI", "de-DE", "de-AT", "pl-PL", "en-GB")


def word(quantity: str, code: str, locale: str, **extra: str) -> str:
    words = {**B2B.labels_for(locale), **extra}
    return unit_word(Decimal(quantity), code, words, locale)


@pytest.mark.parametrize(("locale", "expected"), [("nb-NO", "stk."), ("en-GB", "each"),
                                                  ("de-DE", "Stk."), ("fi-FI", "kpl")])
def test_each_without_a_label_takes_the_piece_label_of_its_family(locale, expected):
    """EA ("each"), H87 ("piece") and C62 ("one") are one unit in UN/ECE Rec 20; the layout
    names only C62, and "7 EA" printed the raw code."""
    assert word("7", "EA", locale) == expected
    assert word("1", "H87", locale) == expected


@pytest.mark.parametrize(("locale", "one", "other"), [
    ("da-DK", "time", "timer"),  # label "timer" is CLDR's long plural
    ("nb-NO", "time", "timer"),
    ("en-GB", "hr", "hrs"),      # label "hrs" is CLDR's short plural
    ("sv-SE", "tim", "tim"),     # short, the same for every quantity
    ("de-DE", "Std.", "Std."),
    ("fi-FI", "h", "h"),         # no CLDR form of the hour: the layout's abbreviation
    ("sv-FI", "h", "h"),
    ("pl-PL", "godz.", "godz."),
])
def test_hours_agree_with_the_quantity(locale, one, other):
    assert word("1", "HUR", locale) == one
    assert (word("2", "HUR", locale), word("7", "HUR", locale)) == (other, other)


def test_a_plural_label_of_months_becomes_singular_for_one():
    assert (word("1", "MON", "en-GB"), word("3", "MON", "en-GB")) == ("month", "months")
    # nb "mnd." is no CLDR form of the month (CLDR nb short is "md."): printed as written
    assert (word("1", "MON", "nb-NO"), word("3", "MON", "nb-NO")) == ("mnd.", "mnd.")


def test_a_singular_label_of_months_becomes_plural_for_three():
    # da-DK's label "md." is CLDR's short singular; CLDR's short plural is "mdr."
    assert (word("1", "MON", "da-DK"), word("3", "MON", "da-DK")) == ("md.", "mdr.")


def test_a_decimal_quantity_counts_by_cldr_operands():
    """Danish 1.5 is "one" in CLDR (i = 1: "1,5 time"); English 1.5 and 1.0 are "other"."""
    assert word("1.5", "HUR", "da-DK") == "time"
    assert word("2.5", "HUR", "da-DK") == "timer"
    assert word("1.5", "HUR", "en-GB") == "hrs"
    assert word("1.0", "HUR", "en-GB") == "hrs"
    assert word("1.5", "HUR", "nb-NO") == "timer"


def test_polish_few_and_many_come_from_cldr_for_a_code_without_a_label():
    """pl-PL years (ANN, no layout label): CLDR's short forms one / few / many / other."""
    assert [word(q, "ANN", "pl-PL") for q in ("1", "2", "22", "5", "12", "1.5")] == \
        ["rok", "lata", "lata", "lat", "lat", "roku"]
    assert [word(q, "DAY", "en-GB") for q in ("1", "2")] == ["day", "days"]
    assert word("5", "KGM", "pl-PL") == "kg"


def test_an_unknown_code_prints_as_given():
    assert word("7", "XYZ", "nb-NO") == "XYZ"
    assert word("1", "LS", "en-GB") == "lump sum"  # a label without CLDR unit: unchanged


def test_a_label_for_the_plural_category_wins():
    """A future layout can carry its own forms: unit_<CODE>_<category>."""
    assert word("1", "HUR", "da-DK", unit_HUR_one="tim.") == "tim."
    assert word("2", "HUR", "da-DK", unit_HUR_one="tim.") == "timer"
    assert word("2", "HUR", "da-DK", unit_HUR_other="t.") == "t."
    assert word("4", "EA", "pl-PL", unit_C62_few="sztuki") == "sztuki"


def test_a_negative_quantity_takes_the_form_of_its_size():
    assert word("-1", "HUR", "en-GB") == "hr"
    assert word("-3", "HUR", "da-DK") == "timer"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_mapped_cldr_unit_exists_for_every_layout_locale(locale):
    patterns = Locale.parse(locale.replace("-", "_"))._data["unit_patterns"]
    assert [unit for unit in CLDR_UNITS.values() if unit not in patterns] == []
    for code in CLDR_UNITS:
        assert word("1", code, locale) and word("2", code, locale)


def composed(locale: str, quantity: str, unit_code: str):
    data = json.loads(B2B.sample_data(locale))
    data["lines"][0].update(quantity=quantity, unit_code=unit_code)
    return compose(ComposeRequest(tenant="t", layout=B2B, data=json.dumps(data),
                                  document_id="01UNITS", now=NOW, locale=locale,
                                  channels=())), B2B


@pytest.mark.parametrize(("locale", "quantity", "code", "printed"), [
    ("da-DK", "1", "HUR", "1 time"),
    ("en-GB", "1", "HUR", "1 hr"),
    ("en-GB", "7", "EA", "7 each"),
])
def test_the_composed_and_printed_invoice_line_has_the_word_for_its_quantity(
        locale, quantity, code, printed):
    composition, layout = composed(locale, quantity, code)
    line = composition.context["lines"][0]
    assert f"{line['quantity']} {line['unit']}" == printed
    pdf = render_print(composition, layout, PrintEngines(engine_of(layout))).content
    text = " ".join(pages_text(pdf)).replace("\u00a0", " ").replace("\u202f", " ")
    assert printed in text


def test_a_quantity_printed_without_its_trailing_zeros_counts_as_printed():
    """"1.00" prints as "1": English "1 hr", not the "other" form of 1.00."""
    composition, _ = composed("en-GB", "1.00", "HUR")
    line = composition.context["lines"][0]
    assert (line["quantity"], line["unit"]) == ("1", "hr")
