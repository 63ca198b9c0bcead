"""Eight countries as data: postal rules, address blocks, time zones, cash rounding, labels
per locale, SMS per locale, retention law and reminder-fee caps (issue 15 items 1, 3, 4)."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from archive.retention import SOURCES, RetentionPolicy
from server.channels import sms_channel
from server.compose import countries
from server.compose.composer import ComposeRequest, compose
from server.compose.formatting import day, money
from server.compose.layouts import Layout
from server.compose.model import Channel, Composition
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
LOCALES = ("nb-NO", "sv-SE", "da-DK", "fi-FI", "sv-FI", "de-DE", "de-AT", "pl-PL", "en-GB")
# The document layouts (they print): the NPS survey (e-mail and SMS only) speaks five of the
# locales (layouts/nps-survey), not all nine.
DOCUMENT_LAYOUTS = [layout for layout in LAYOUTS.latest() if Channel.PRINT in layout.channels]
SAMPLES = [(layout, locale) for layout in DOCUMENT_LAYOUTS for locale in LOCALES]


def sample(layout: Layout, locale: str) -> dict[str, Any]:
    name = layout.manifest["samples"][locale]
    return json.loads((layout.path / name).read_text(encoding="utf-8"))


def run(layout: Layout, data: dict[str, Any], *, locale: str | None = None,
        now: datetime = datetime(2026, 2, 9, 9, tzinfo=UTC),
        channels: tuple[Channel, ...] = ()) -> Composition:
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="x", now=now, locale=locale, channels=channels))


def violation(exc: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return {v.field: v.description for v in exc.value.violations}


# --- postal codes and address blocks ------------------------------------------------------------


@pytest.mark.parametrize(("country", "given", "normal"), [
    ("NO", "0358", "0358"), ("SE", "11826", "118 26"), ("SE", "118 26", "118 26"),
    ("DK", "2200", "2200"), ("FI", "00100", "00100"), ("DE", "80336", "80336"),
    ("AT", "8010", "8010"), ("PL", "90926", "90-926"), ("PL", "90-926", "90-926"),
    ("GB", "m13la", "M1 3LA"), ("GB", "SW1A1AA", "SW1A 1AA"), ("GB", "EC2P 2BX", "EC2P 2BX"),
])
def test_postal_codes_are_written_the_operators_way(country, given, normal):
    assert countries.check_postal_code(given, country, "$.p") == normal


@pytest.mark.parametrize(("country", "bad"), [
    ("NO", "358"), ("SE", "1182"), ("DK", "22000"), ("FI", "0010"), ("DE", "8033"),
    ("AT", "80101"), ("PL", "9092"), ("GB", "12345"), ("GB", "M1 3L"),
])
def test_a_postal_code_not_of_the_country_is_refused_with_its_path(country, bad):
    layout = LAYOUTS.get("card-invoice")
    data = sample(layout, "nb-NO")
    data["customer"]["address"].update(country=country, postal_code=bad)
    with pytest.raises(InvalidInput) as info:
        run(layout, data)
    assert "$.customer.address.postal_code" in violation(info)
    assert country in violation(info)["$.customer.address.postal_code"]


def test_uk_address_has_the_post_town_in_capitals_and_the_postcode_on_its_own_line():
    layout = LAYOUTS.get("card-invoice")
    window = run(layout, sample(layout, "en-GB")).context["window"]
    assert window == ["Oliver Bennett", "Flat 4", "27 Portland Street", "MANCHESTER", "M1 3LA"]


@pytest.mark.parametrize(("locale", "last_line"), [
    ("nb-NO", "0358 OSLO"), ("sv-SE", "118 26 STOCKHOLM"), ("da-DK", "2200 København N"),
    ("fi-FI", "33100 TAMPERE"), ("de-DE", "80336 München"), ("de-AT", "8010 Graz"),
    ("pl-PL", "90-926 Łódź"),
])
def test_domestic_addresses_follow_the_operator_and_carry_no_country_line(locale, last_line):
    layout = LAYOUTS.get("card-invoice")
    assert run(layout, sample(layout, locale)).context["window"][-1] == last_line


@pytest.mark.parametrize(("sender", "destination", "line"), [
    ("NO", "SE", "SVERIGE"), ("SE", "NO", "NORGE"), ("DE", "AT", "ÖSTERREICH"),
    ("FI", "SE", "RUOTSI"), ("PL", "DE", "NIEMCY"), ("GB", "DK", "DENMARK"),
])
def test_cross_border_mail_ends_with_the_country_in_the_senders_language(
        sender, destination, line):
    lines = countries.address_lines("A", ("B 1",), "1010", "X", destination, sender)
    assert lines[-1] == line


@pytest.mark.parametrize(("locale", "field", "envelope"), [
    ("nb-NO", "c5-nordic", "C5"), ("de-DE", "din5008-b", "DL"), ("de-AT", "din5008-b", "DL"),
    ("en-GB", "iso-dl", "DL"), ("pl-PL", "c5-nordic", "C5"),
])
def test_the_address_field_and_envelope_follow_the_destination(locale, field, envelope):
    layout = LAYOUTS.get("card-invoice")
    composition = run(layout, sample(layout, locale))
    assert composition.context["address_field"]["id"] == field
    assert composition.print_options.envelope == envelope


def test_din5008_form_b_fits_the_din680_dl_window_of_every_print_profile():
    from server.printing.profiles import builtin_profiles
    din = countries.ADDRESS_FIELDS["din5008-b"]
    assert (din.x, din.y, din.width, din.height) == (25.0, 62.7, 80.0, 27.3)  # DIN 5008 B
    for profile in builtin_profiles().values():
        readable = profile.envelopes["DL"].address_area
        for field in (din, countries.ADDRESS_FIELDS["iso-dl"]):
            assert readable.x <= field.x and field.x + field.width <= readable.right
            assert readable.y <= field.y and field.y + field.height <= readable.bottom


# --- time zone, cash rounding, dates ------------------------------------------------------------


def test_the_document_is_dated_in_the_customers_time_zone():
    """23:30 UTC on 9 February is already 10 February in Helsinki, still the 9th in London."""
    layout = LAYOUTS.get("payment-reminder")
    late = datetime(2026, 2, 9, 23, 30, tzinfo=UTC)
    fi = sample(layout, "fi-FI")
    del fi["reminder"]["date"]  # the notice is dated today
    fi_doc = run(layout, fi, now=late)
    assert (fi_doc.time_zone, fi_doc.context["notice"]["date"]) == ("Europe/Helsinki",
                                                                    "10.2.2026")
    gb = sample(layout, "en-GB")
    del gb["reminder"]["date"]
    gb_doc = run(layout, gb, now=late)
    assert (gb_doc.time_zone, gb_doc.context["notice"]["date"]) == ("Europe/London",
                                                                    "09/02/2026")


@pytest.mark.parametrize(("country", "amount", "cash"), [
    ("SE", "1234.49", "1234.00"), ("SE", "1234.50", "1235.00"), ("NO", "99.50", "100.00"),
    ("DK", "10.24", "10.00"), ("DK", "10.25", "10.50"), ("DK", "10.80", "11.00"),
    ("FI", "10.02", "10.00"), ("FI", "10.03", "10.05"), ("DE", "10.03", "10.03"),
    ("PL", "10.03", "10.03"), ("GB", "10.03", "10.03"),
])
def test_cash_rounding_only_where_the_country_has_it(country, amount, cash):
    assert countries.cash_round(Decimal(amount), country) == Decimal(cash)


def test_invoice_amounts_stay_exact_to_the_minor_unit():
    layout = LAYOUTS.get("card-invoice")
    for locale in ("sv-SE", "nb-NO", "da-DK", "fi-FI"):
        composition = run(layout, sample(layout, locale))
        assert composition.amount_due == composition.amount_due.quantize(Decimal("0.01"))
        assert composition.amount_due != composition.amount_due.quantize(Decimal(1))


@pytest.mark.parametrize(("locale", "text"), [
    ("nb-NO", "02.03.2026"), ("sv-SE", "2026-03-02"), ("da-DK", "02.03.2026"),
    ("fi-FI", "2.3.2026"), ("de-DE", "02.03.2026"), ("de-AT", "02.03.2026"),
    ("pl-PL", "02.03.2026"), ("en-GB", "02/03/2026"),
])
def test_dates_as_the_countrys_banks_write_them(locale, text):
    assert day(date(2026, 3, 2), locale) == text


@pytest.mark.parametrize(("currency", "locale", "text"), [
    ("DKK", "da-DK", "1.234,50 kr."), ("EUR", "fi-FI", "1 234,50 €"),
    ("EUR", "de-DE", "1.234,50 €"), ("EUR", "de-AT", "€ 1.234,50"),
    ("PLN", "pl-PL", "1 234,50 zł"), ("GBP", "en-GB", "£1,234.50"),
])
def test_amounts_through_babel(currency, locale, text):
    assert money(Decimal("1234.50"), currency, locale).replace("\u00a0", " ") == text


# --- labels and SMS per locale ------------------------------------------------------------------


@pytest.mark.parametrize("layout", DOCUMENT_LAYOUTS, ids=lambda layout: layout.id)
def test_every_locale_has_every_label_of_the_layout(layout):
    table = tomllib.loads((layout.path / "labels.toml").read_text(encoding="utf-8"))
    keys = set(table["nb-NO"])
    assert set(layout.locales) == set(LOCALES)
    for locale in LOCALES:
        assert set(table[locale]) == keys, locale
        if locale != "nb-NO":  # written for the locale, not left in Norwegian
            same = {k for k in keys if table[locale][k] == table["nb-NO"][k] and
                    len(table[locale][k]) > 12 and "{" not in table[locale][k]}
            assert not same or locale.startswith(("da", "sv")), (locale, same)


@pytest.mark.parametrize(("locale", "title", "due"), [
    ("da-DK", "Kontoudtog kreditkort", "Forfaldsdato"),
    ("fi-FI", "Luottokortin tiliote", "Eräpäivä"),
    ("sv-FI", "Kontoutdrag kreditkort", "Förfallodag"),
    ("de-DE", "Kontoauszug Kreditkarte", "Fälligkeitsdatum"),
    ("de-AT", "Kontoauszug Kreditkarte", "Fälligkeitsdatum"),
    ("pl-PL", "Wyciąg z karty kredytowej", "Termin płatności"),
    ("en-GB", "Credit card statement", "Payment due date"),
])
def test_card_statement_labels_are_the_banks_terms(locale, title, due):
    labels = LAYOUTS.get("card-invoice").labels_for(locale)
    assert (labels["document_title"], labels["due_date"]) == (title, due)


@pytest.mark.parametrize(("layout", "locale"), [
    (layout, locale) for layout, locale in SAMPLES if Channel.SMS in layout.channels])
def test_the_sms_of_every_locale_fits_its_segments_in_gsm7(layout, locale):
    composition = run(layout, sample(layout, locale), channels=(Channel.SMS,))
    output = sms_channel.render_sms(composition, layout)
    text = output.content.decode()
    assert output.facts["encoding"] == "GSM-7", text
    assert output.facts["segments"] <= layout.section("sms")["max_segments"]
    assert composition.context["payment"]["reference"] in text


# --- retention and reminder fees ----------------------------------------------------------------


@pytest.mark.parametrize(("country", "invoice", "letter"), [
    ("NO", 5, 2), ("SE", 7, 2), ("DK", 5, 2), ("FI", 6, 2), ("DE", 8, 6), ("AT", 7, 7),
    ("PL", 6, 2), ("GB", 6, 2), ("FR", 10, 2),
])
def test_retention_per_country_from_the_law_file(country, invoice, letter):
    policy = RetentionPolicy.default()
    assert (policy.years("invoice", country), policy.years("letter", country)) == (invoice,
                                                                                   letter)
    if country != "FR":
        assert len(SOURCES[country]) > 40  # the act is cited


def test_de_invoices_are_locked_eight_years_after_the_year_end():
    until = RetentionPolicy.default().retain_until(
        datetime(2026, 3, 2, tzinfo=UTC), "invoice", "DE")
    assert until == datetime(2035, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("locale", "cap", "above"), [
    ("nb-NO", "35.00", "35.01"), ("sv-SE", "60.00", "60.50"), ("da-DK", "100.00", "100.01"),
    ("fi-FI", "5.00", "5.01"), ("sv-FI", "5.00", "7.50"),
])
def test_a_reminder_fee_above_the_statutory_cap_is_refused(locale, cap, above):
    layout = LAYOUTS.get("payment-reminder")
    data = sample(layout, locale)
    data["reminder"]["fee"] = cap
    run(layout, data)
    data["reminder"]["fee"] = above
    with pytest.raises(InvalidInput) as info:
        run(layout, data)
    assert "statutory maximum" in violation(info)["$.reminder.fee"]


@pytest.mark.parametrize("locale", ["de-DE", "de-AT", "pl-PL", "en-GB"])
def test_countries_without_a_fixed_cap_say_so_and_take_the_fee(locale):
    layout = LAYOUTS.get("payment-reminder")
    country = locale[-2:]
    law = layout.section("reminder")["law"][country]
    assert "fee_cap" not in law and law["no_cap"] and law["source"]
    data = sample(layout, locale)
    data["reminder"]["fee"] = "25.00"
    assert run(layout, data).context["claim"]["fee"]


def test_a_nok_claim_on_a_debtor_in_sweden_follows_the_norwegian_cap():
    layout = LAYOUTS.get("payment-reminder")
    data = sample(layout, "nb-NO")
    data["customer"]["address"] = {"lines": ["Storgatan 1"], "postal_code": "111 22",
                                   "city": "STOCKHOLM", "country": "SE"}
    data["reminder"]["fee"] = "50.00"  # under SE's 60 kr, over NO's 35 kr
    with pytest.raises(InvalidInput) as info:
        run(layout, data, locale="nb-NO")
    assert "35.00 NOK" in violation(info)["$.reminder.fee"]


def test_a_danish_collection_notice_gives_ten_days():
    layout = LAYOUTS.get("payment-reminder")
    data = sample(layout, "da-DK")
    data["reminder"].update(stage="collection_notice", date="2026-02-09",
                            new_due_date="2026-02-18")
    with pytest.raises(InvalidInput) as info:
        run(layout, data)
    assert "10 days" in violation(info)["$.reminder.new_due_date"]
    data["reminder"]["new_due_date"] = "2026-02-19"
    assert run(layout, data).context["title"] == "Inkassovarsel"
