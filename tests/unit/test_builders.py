"""The three foundation layouts: their samples compose, the builders compute what a reader
checks (balances, minimum payment, totals, check digits), format for the locale, report bad
data with JSON paths, and the print templates escape data. Pure and fast: no PDF rendering."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from stdnum import luhn

from server.channels.pdf import template_variables
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import Layout, LayoutRegistry
from server.compose.model import Composition
from server.errors import InvalidInput
from tests.layouts import shipped

NBSP = "\u00a0"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry() -> LayoutRegistry:
    return shipped()


def sample(layout: Layout, name: str = "sample.json") -> dict[str, Any]:
    return json.loads((layout.path / name).read_text(encoding="utf-8"))


def run(layout: Layout, data: dict[str, Any] | str, locale: str | None = None) -> Composition:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return compose(ComposeRequest(tenant="fjordbank", layout=layout, data=text,
                                  document_id="01JTEST", now=NOW, locale=locale))


def violations(exc: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return {v.field: v.description for v in exc.value.violations}


def render_print(layout: Layout, comp: Composition) -> str:
    return layout.templates.get_template("print.html").render(**template_variables(comp))


ALL_SAMPLES = [
    ("card-invoice", "sample.json", "nb-NO"),
    ("card-invoice", "sample-sv-SE.json", "sv-SE"),
    ("payment-reminder", "sample.json", "nb-NO"),
    ("payment-reminder", "sample-collection-notice.json", "nb-NO"),
    ("payment-reminder", "sample-sv-SE.json", "sv-SE"),
    ("welcome-letter", "sample.json", "nb-NO"),
    ("welcome-letter", "sample-sv-SE.json", "sv-SE"),
]


# --- every layout ---------------------------------------------------------------------------


@pytest.mark.parametrize(("layout_id", "name", "locale"), ALL_SAMPLES)
def test_samples_compose_and_render(registry, layout_id, name, locale):
    layout = registry.get(layout_id)
    comp = run(layout, sample(layout, name), locale)
    html = render_print(layout, comp)
    assert comp.recipient.name in html
    assert "{{" not in html and "{%" not in html


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder", "welcome-letter"])
def test_labels_have_the_same_keys_in_every_locale(registry, layout_id):
    layout = registry.get(layout_id)
    labels = tomllib.loads((layout.path / "labels.toml").read_text(encoding="utf-8"))
    assert set(labels) == set(layout.locales)
    keys = [set(table) for table in labels.values()]
    assert all(k == keys[0] for k in keys)


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder", "welcome-letter"])
def test_html_in_data_is_escaped(registry, layout_id):
    layout = registry.get(layout_id)
    data = sample(layout)
    data["customer"]["name"] = "<b>Kari</b> & <script>alert(1)</script>"
    html = render_print(layout, run(layout, data))
    assert "<b>Kari</b>" not in html and "<script>" not in html
    assert "&lt;b&gt;Kari&lt;/b&gt; &amp; &lt;script&gt;" in html


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder", "welcome-letter"])
def test_unknown_and_unsupported_locales(registry, layout_id):
    layout = registry.get(layout_id)
    with pytest.raises(InvalidInput) as exc:
        run(layout, sample(layout), "xx-QQ")
    assert "locale" in violations(exc)
    with pytest.raises(InvalidInput) as exc:
        run(layout, sample(layout), "fr-FR")  # known to Babel, not to the layout
    assert "locale" in violations(exc)


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder", "welcome-letter"])
def test_window_lines_add_the_country_only_across_borders(registry, layout_id):
    layout = registry.get(layout_id)
    data = sample(layout)
    assert "NO" not in run(layout, data).context["window"]
    data["customer"]["address"] = {"lines": ["Storgatan 1"], "postal_code": "111 22",
                                   "city": "STOCKHOLM", "country": "SE"}
    # UPU: the destination's name in capitals, last, in the sending country's language
    assert run(layout, data).context["window"][-1] == "SVERIGE"


# --- card invoice ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def card(registry) -> Layout:
    return registry.get("card-invoice")


def test_card_invoice_balance_minimum_and_reference(card):
    data = sample(card)
    comp = run(card, data)
    tx = [Decimal(t["amount"]) for t in data["transactions"]]
    purchases = sum(t for t in tx if t > 0)
    expected = (Decimal("12480.55") - Decimal("5000.00") + sum(tx) + Decimal("136.52")
                + Decimal("39.00"))
    assert expected == Decimal("34708.17")
    assert comp.amount_due == expected
    s = comp.context["summary"]
    assert s["new_balance"] == f"34{NBSP}708,17{NBSP}kr"
    assert purchases == Decimal("28700.10")
    assert s["purchases"] == f"28{NBSP}700,10{NBSP}kr"
    assert s["refunds"] == f"\u22121{NBSP}648,00{NBSP}kr"  # U+2212: formatting.minus_sign
    # 3 % of 34 708,17 = 1 041,245 -> whole kroner 1 041 (floor 300 does not bite)
    assert s["minimum_payment"] == f"1{NBSP}041,00{NBSP}kr"
    assert comp.payment_reference.scheme == "kid_mod10"
    assert comp.payment_reference.value == "20184455123" + luhn.calc_check_digit("20184455123")
    assert comp.payment_reference.value == "201844551238"
    assert comp.due_date.isoformat() == "2026-03-25"
    assert comp.currency == "NOK"
    assert comp.invoice.totals.payable == comp.amount_due  # EN 16931 mapping: pays the balance
    pay = comp.context["payment"]
    assert (pay["amount_units"], pay["amount_cents"]) == (f"34{NBSP}708", "17")
    assert pay["account"] == "1503.12.34562"
    assert comp.context["card"]["masked_number"] == "5213 88•• •••• 4821"
    assert comp.context["card"]["interest_rate"] == f"21,9{NBSP}%"
    assert len(comp.context["transactions"]) == 45


def test_card_invoice_swedish(card):
    comp = run(card, sample(card, "sample-sv-SE.json"), "sv-SE")
    assert comp.currency == "SEK"
    assert comp.payment_reference.scheme == "ocr"
    assert comp.context["payment"]["account"] == "5678-4127"  # bankgiro
    assert comp.context["invoice"]["due_date"] == "2026-03-31"
    # 6 215,40 - 6 215,40 + 12 965,81 - 299,00 + 25,00
    assert comp.amount_due == Decimal("12691.81")
    assert comp.context["summary"]["amount_due"] == f"12{NBSP}691,81{NBSP}kr"
    # 3 % = 380,75 -> 381 (above the 200 floor)
    assert comp.context["summary"]["minimum_payment"] == f"381,00{NBSP}kr"
    foreign = [t for t in comp.context["transactions"] if t["foreign"]]
    assert foreign[0]["foreign"] == f"1{NBSP}390,00{NBSP}NOK"
    assert foreign[0]["rate"] == "0,9383"


def test_card_invoice_minimum_payment_rules(card):
    data = sample(card)
    data["transactions"] = [{"date": "2026-02-10", "description": "KIWI", "amount": "250.00"}]
    data["invoice"]["previous_balance"] = "0"
    data["invoice"]["payments_received"] = "0"
    data.pop("interest")
    data["fees"] = []
    comp = run(card, data)  # balance 250 < floor 300: the whole balance
    assert comp.context["summary"]["minimum_payment"] == f"250,00{NBSP}kr"
    data["transactions"][0]["amount"] = "5000"
    comp = run(card, data)  # 3 % = 150 < floor: the floor
    assert comp.context["summary"]["minimum_payment"] == f"300,00{NBSP}kr"
    data["invoice"]["payments_received"] = "6000"
    comp = run(card, data)  # credit balance: nothing to pay
    assert comp.amount_due == Decimal("0")
    assert comp.context["summary"]["minimum_payment"] == f"0,00{NBSP}kr"
    assert comp.context["summary"]["is_credit_balance"] is True
    assert comp.context["summary"]["new_balance"] == f"\u22121{NBSP}000,00{NBSP}kr"


def test_a_positive_balance_never_has_a_minimum_payment_of_zero():
    from server.compose.builders.card_statement import minimum_payment

    # QA: en-GB, balance 16.00, 3 %, floor 0: 0.48 rounded to whole pounds was 0.00
    assert minimum_payment(Decimal("16.00"), Decimal("3"), Decimal("0")) == Decimal("1.00")
    assert minimum_payment(Decimal("0.40"), Decimal("3"), Decimal("0")) == Decimal("0.40")
    assert minimum_payment(Decimal("10010"), Decimal("3"), Decimal("0")) == Decimal("300.00")
    assert minimum_payment(Decimal("0"), Decimal("3"), Decimal("0")) == Decimal("0.00")


def test_card_invoice_given_reference_is_checked(card):
    data = sample(card)
    data["payment"] = {"reference": "201844551238"}
    assert run(card, data).payment_reference.display == "20 18445 51238"
    data["payment"] = {"reference": "201844551239"}  # wrong MOD10 check digit
    with pytest.raises(InvalidInput) as exc:
        run(card, data)
    assert list(violations(exc)) == ["$.payment.reference"]


def test_card_invoice_reference_scheme_override(card):
    data = sample(card)
    data["payment"] = {"reference_base": "123456789", "reference_scheme": "kid_mod11"}
    assert run(card, data).payment_reference.value == "1234567892"


def test_card_invoice_schema_violations_are_reported_together(card):
    data = sample(card)
    data["transactions"][3]["amount"] = "12,50"
    data["invoice"]["due_date"] = "25.03.2026"
    del data["customer"]["name"]
    data["card_account"]["colour"] = "gold"
    data["payment"] = {}
    with pytest.raises(InvalidInput) as exc:
        run(card, data)
    fields = set(violations(exc))
    assert {"$.transactions[3].amount", "$.invoice.due_date", "$.customer",
            "$.card_account", "$.payment"} <= fields


def test_card_invoice_semantic_errors_name_the_field(card):
    cases = [
        (("invoice", "due_date"), "2026-02-30", "$.invoice.due_date"),  # no such day
        (("invoice", "due_date"), "2026-02-27", "$.invoice.due_date"),  # before invoice date
        (("invoice", "payments_received"), "-100", "$.invoice.payments_received"),
        (("card_account", "credit_limit"), "-1", "$.card_account.credit_limit"),
        (("card_account", "masked_card_number"), "5213 8812 3456 4821",
         "$.card_account.masked_card_number"),  # a full card number must never print
        (("currency",), "XYZ", "$.currency"),
        (("issuer", "payment_account", "number"), "1503.12.34567",
         "$.issuer.payment_account.number"),  # bad MOD11
    ]
    for keys, value, field in cases:
        data = sample(card)
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        with pytest.raises(InvalidInput) as exc:
            run(card, data)
        assert field in violations(exc), (keys, value, exc.value)


def test_card_invoice_refund_allowed_negative_fee_not(card):
    data = sample(card)
    data["fees"][0]["amount"] = "-39"
    with pytest.raises(InvalidInput) as exc:
        run(card, data)
    assert "$.fees[0].amount" in violations(exc)
    data = sample(card)
    data["transactions"][0]["original"] = {"currency": "EUR", "amount": "-10"}
    with pytest.raises(InvalidInput) as exc:
        run(card, data)
    assert "$.transactions[0].original.amount" in violations(exc)


def test_card_invoice_amounts_as_json_numbers_keep_decimals(card):
    text = json.dumps(sample(card)).replace('"412.80"', "412.80")
    assert run(card, text).amount_due == Decimal("34708.17")


def test_card_invoice_print_places_the_slip_once_and_labels_in_locale(card):
    comp = run(card, sample(card, "sample-sv-SE.json"), "sv-SE")
    html = render_print(card, comp)
    assert html.count('class="slip"') == 1
    assert "<thead>" in html and "OCR-nummer" in html and "Sida" in html
    assert comp.context["payment"]["reference"] in html


# --- payment reminder -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def reminder(registry) -> Layout:
    return registry.get("payment-reminder")


def test_reminder_total_interest_and_texts(reminder):
    comp = run(reminder, sample(reminder))
    # 4 312,50 x 12,5 % x 14 / 365 = 20,676 -> 20,68
    assert comp.context["claim"]["interest"] == f"20,68{NBSP}kr"
    assert comp.amount_due == Decimal("4312.50") + Decimal("35.00") + Decimal("20.68")
    assert comp.context["claim"]["total"] == f"4{NBSP}368,18{NBSP}kr"
    assert comp.due_date.isoformat() == "2026-02-23"
    assert comp.context["title"] == "Betalingspåminnelse"
    assert "2026010018873" in comp.context["intro"]
    assert "inkassoforskriften" in comp.context["legal_text"]
    assert comp.payment_reference.value == "201844551246"
    assert comp.context["claim"]["interest_text"] == f"12,5{NBSP}% p.a. for 14 dager"


def test_collection_notice_cites_inkassoloven_and_checks_14_days(reminder):
    data = sample(reminder, "sample-collection-notice.json")
    comp = run(reminder, data)
    assert comp.context["title"] == "Inkassovarsel"
    assert "inkassoloven § 9" in comp.context["legal_text"]
    assert comp.context["claim"]["fee"] is None  # no fee in this sample
    data["reminder"]["new_due_date"] = "2026-03-10"  # 8 days after the notice
    with pytest.raises(InvalidInput) as exc:
        run(reminder, data)
    assert "14" in violations(exc)["$.reminder.new_due_date"]


def test_reminder_legal_text_from_data_wins(reminder):
    data = sample(reminder)
    data["notice"] = {"legal_text": "Særskilt tekst fra advokaten."}
    assert run(reminder, data).context["legal_text"] == "Særskilt tekst fra advokaten."


def test_reminder_new_due_date_must_follow_the_original(reminder):
    data = sample(reminder)
    data["reminder"]["new_due_date"] = "2026-01-20"  # original due 2026-01-26
    with pytest.raises(InvalidInput) as exc:
        run(reminder, data)
    assert "2026-01-26" in violations(exc)["$.reminder.new_due_date"]


def test_reminder_bad_values(reminder):
    data = sample(reminder)
    data["reminder"]["fee"] = "-35"
    with pytest.raises(InvalidInput) as exc:
        run(reminder, data)
    assert "$.reminder.fee" in violations(exc)
    data = sample(reminder)
    data["reminder"]["stage"] = "final_warning"
    data["invoice"]["issue_date"] = "2026-13-01"
    with pytest.raises(InvalidInput) as exc:
        run(reminder, data)
    assert "$.reminder.stage" in violations(exc)
    data["reminder"]["stage"] = "reminder"
    with pytest.raises(InvalidInput) as exc:
        run(reminder, data)
    assert "$.invoice.issue_date" in violations(exc)


def test_reminder_swedish_interest_amount_and_ocr(reminder):
    comp = run(reminder, sample(reminder, "sample-sv-SE.json"), "sv-SE")
    assert comp.amount_due == Decimal("2977.40")
    assert comp.context["title"] == "Betalningspåminnelse"
    assert comp.payment_reference.scheme == "ocr"
    assert comp.context["claim"]["interest_text"] == f"10,5{NBSP}% per år"


# --- welcome letter -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def letter(registry) -> Layout:
    return registry.get("welcome-letter")


def test_letter_greeting_date_and_campaign(letter):
    comp = run(letter, sample(letter))
    ctx = comp.context
    assert ctx["letter"]["greeting"] == "Hei Ingrid Søreide Bakke,"
    assert ctx["letter"]["date"] == "2. mars 2026"
    assert ctx["campaign"]["title"].startswith("Spar smartere")
    assert comp.amount_due is None and comp.payment_reference is None
    html = render_print(letter, comp)
    assert 'class="campaign"' in html


def test_letter_without_campaign_and_default_date(letter):
    data = sample(letter, "sample-sv-SE.json")
    del data["letter"]["date"]
    comp = run(letter, data, "sv-SE")
    assert comp.context["campaign"] is None
    assert comp.context["letter"]["date"] == "2 mars 2026"  # the composition date
    assert comp.context["letter"]["greeting"] == "Hej Anna Svensson!"
    assert 'class="campaign"' not in render_print(letter, comp)


def test_letter_schema_limits(letter):
    data = sample(letter)
    data["letter"]["paragraphs"] = []
    data["campaign"] = {"title": "x"}
    data["customer"]["mobile"] = "91234567"  # not E.164
    with pytest.raises(InvalidInput) as exc:
        run(letter, data)
    assert {"$.letter.paragraphs", "$.campaign", "$.customer.mobile"} <= set(violations(exc))

