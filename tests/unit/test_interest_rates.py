"""An interest rate a year above 100 % is a typing error, refused at its JSON path
(base.annual_rate): a reminder's late-payment rate and a card account's nominal rate."""

import json
from datetime import UTC, datetime

import pytest

from server.compose.composer import ComposeRequest, compose
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _compose(layout_id: str, change, version: str | None = None):
    layout = LAYOUTS.get(layout_id, version) if version else LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    change(data)
    return compose(ComposeRequest(tenant="demo", layout=layout, data=json.dumps(data),
                                  document_id="01TEST", now=NOW))


def _refused(layout_id: str, change, version: str | None = None) -> tuple[str, str]:
    with pytest.raises(InvalidInput) as info:
        _compose(layout_id, change, version)
    [violation] = info.value.violations
    return violation.field, violation.description


def _late_rate(rate, **rest):
    return lambda data: data["reminder"].update(interest={"rate_percent": rate, **rest})


def _card_rate(rate):
    return lambda data: data["card_account"].update(nominal_interest_percent=rate)


@pytest.mark.parametrize(("rate", "version"), [("99999", "1.0.0"), ("100.01", "1.0.0"),
                                               (101, "1.0.0"), ("100.01", None), (101, None),
                                               ("999.99", None)])
@pytest.mark.parametrize("rest", [{"days": 14}, {"amount": "12.00"}])
def test_a_reminders_implausible_interest_rate_is_refused(rate, rest, version):
    # was accepted: "99999" (a string escapes the schema's number bound) printed as
    # "99 999 % p.a. for 14 dager" and charged 165 409,30 kr of interest on 4 312,50 kr
    field, why = _refused("payment-reminder", _late_rate(rate, **rest), version)
    assert field == "$.reminder.interest.rate_percent"
    assert why == (f"{rate} % a year is not a plausible interest rate: at most 100 % (a "
                   "sanity bound: late-payment and card rates are far below it)")


@pytest.mark.parametrize(("rate", "version"), [("99999", "1.0.0"), ("999.99", None)])
def test_a_card_accounts_implausible_nominal_rate_is_refused(rate, version):
    field, why = _refused("card-invoice", _card_rate(rate), version)
    assert field == "$.card_account.nominal_interest_percent"
    assert why.startswith(f"{rate} % a year is not a plausible interest rate: at most 100 %")


@pytest.mark.parametrize(("layout_id", "change"), [
    ("payment-reminder", lambda rate: _late_rate(rate, days=14)),
    ("payment-reminder", lambda rate: _late_rate(rate, amount="12.00")),
    ("card-invoice", _card_rate),
])
def test_a_rate_past_the_schemas_bound_is_refused_as_a_string_as_it_is_as_a_number(
        layout_id, change):
    # 2.0.0 on: "exclusiveMaximum": 1000 binds "99999" as it binds 99999, before the builder
    # (server.compose.schema_bounds); 1.0.0's schema has no bound, its builder refuses both
    (field, why), (number_field, number_why) = (_refused(layout_id, change("99999")),
                                                _refused(layout_id, change(99999)))
    assert "99999 is greater than or equal to the maximum of 1000" in number_why
    assert field == number_field
    # the reminder's interest object is quoted before its forms' reasons (cut at its length)
    assert _reasons(why) == _reasons(number_why).replace("99999", '"99999"')


def _reasons(why: str) -> str:
    return why.partition(" matches none of the allowed forms: ")[2] or why


def test_rates_up_to_the_bound_are_printed():
    reminder = _compose("payment-reminder", _late_rate("100", days=14))
    assert reminder.context["claim"]["interest_text"].startswith("100\u00a0%")
    card = _compose("card-invoice", _card_rate("24.9"))
    assert card.context["card"]["interest_rate"] == "24,9\u00a0%"
