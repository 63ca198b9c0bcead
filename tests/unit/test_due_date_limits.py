"""Due dates a payer's bank cannot read, or that no consumer document has, are refused at
their JSON path (server/compose/builders/base.check_payment_term,
server/compose/payments/slips.py for the Finnish virtual bar code).

An issue date after the due date is refused at the date the caller more likely mistyped
(server/compose/validation/en16931.due_before_issue, KANAL-DUE-DATE), the reason naming
both: the due date when it has passed on the day of composing, else the issue date, then
after today too. QA: an invoice dated 2026-12-02 (typed for 2026-03-02) was blamed on its
due date 2026-03-25, "must not be before invoice_date"; the b2b invoice's refusal cited
BR-CO-25, EN 16931's rule that a due date or payment terms be given at all.

QA: a card invoice due 9999-12-31 composed; its Finnish virtual bar code wrote the due date
as YYMMDD "991231", which a payer's bank reads as 2099-12-31.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from server.compose.composer import ComposeRequest, compose
from server.compose.payments import codes
from server.compose.references import make_reference
from server.errors import InvalidInput
from tests.country_payments import compose_country, country_data, registry
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def violations(layout_id: str, data: dict) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=LAYOUTS.get(layout_id),
                               data=json.dumps(data), document_id="d", now=NOW))
    return [(v.field, v.description) for v in info.value.violations]


def test_a_card_invoice_due_more_than_a_year_after_its_date_is_refused():
    data = json.loads(LAYOUTS.get("card-invoice").sample_data())  # invoice date 2026-03-02
    data["invoice"]["due_date"] = "9999-12-31"
    assert violations("card-invoice", data) == [(
        "$.invoice.due_date", "9999-12-31 is more than a year after the invoice date "
        "2026-03-02; the latest due date is 2027-03-03")]
    data["invoice"]["due_date"] = "2027-03-03"  # a year and a day: still composed
    compose(ComposeRequest(tenant="t", layout=LAYOUTS.get("card-invoice"),
                           data=json.dumps(data), document_id="d", now=NOW))


def test_a_reminder_whose_new_due_date_is_years_away_is_refused():
    data = json.loads(LAYOUTS.get("payment-reminder").sample_data())
    data["reminder"]["date"] = "2026-03-02"
    data["reminder"]["new_due_date"] = "2062-03-16"  # 2026 mistyped
    assert violations("payment-reminder", data) == [(
        "$.reminder.new_due_date", "2062-03-16 is more than a year after the notice date "
        "2026-03-02; the latest due date is 2027-03-03")]


def test_the_finnish_bar_code_refuses_a_due_date_it_would_write_as_another_century():
    reference = make_reference("fi", "123")
    with pytest.raises(ValueError, match="cannot carry the due date 2100-01-05"):
        codes.fi_virtual_barcode(iban="FI2112345600000785", amount=Decimal(1),
                                 reference=reference, due_date=date(2100, 1, 5))
    assert codes.fi_virtual_barcode(iban="FI2112345600000785", amount=Decimal(1),
                                    reference=reference,
                                    due_date=date(2099, 12, 31)).endswith("991231")


def test_a_b2b_invoice_due_after_2099_on_a_finnish_slip_is_refused_at_its_due_date():
    # a b2b payment term may be long (Directive 2011/7/EU art. 3(5): by agreement), so only
    # the bar code's own limit applies
    _, data = country_data("b2b-invoice", "FI")
    data["issue_date"], data["due_date"] = "2099-11-01", "2100-01-05"
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=registry().get("b2b-invoice"),
                               data=json.dumps(data), document_id="d", now=NOW, locale="fi-FI"))
    assert [(v.field, v.description) for v in info.value.violations] == [
        ("$.due_date", "2100-01-05 is outside 2000-2099")]
    assert "read as 2000-2099" in str(info.value)
    compose_country("b2b-invoice", "FI")  # the sample itself still composes


@pytest.mark.parametrize("invoice_date, due_date, field, why", [
    ("2026-12-02", "2026-03-25", "$.invoice.invoice_date",
     "2026-12-02 is after the due date 2026-03-25 ($.invoice.due_date), and after today "
     "(2026-03-02): a document is dated the day it is issued, on or before its due date"),
    ("2026-03-02", "2026-02-25", "$.invoice.due_date",
     "2026-02-25 is before the issue date 2026-03-02 ($.invoice.invoice_date): a due date "
     "is on or after the day the document is issued"),
], ids=["invoice date mistyped", "due date mistyped"])
def test_a_card_invoice_dated_after_its_due_date_names_the_date_mistyped(
        invoice_date, due_date, field, why):
    data = json.loads(LAYOUTS.get("card-invoice").sample_data())
    data["invoice"].update(invoice_date=invoice_date, due_date=due_date)
    assert violations("card-invoice", data) == [(field, why)]


@pytest.mark.parametrize("issue_date, due_date, field, why", [
    ("2026-12-31", "2026-03-30", "$.issue_date",
     "[KANAL-DUE-DATE] 2026-12-31 is after the due date 2026-03-30 (BT-9), and after today "
     "(2026-03-02): a document is dated the day it is issued, on or before its due date"),
    ("2026-03-02", "2026-01-01", "$.due_date",
     "[KANAL-DUE-DATE] 2026-01-01 is before the issue date 2026-03-02 (BT-2): a due date is "
     "on or after the day the document is issued"),
], ids=["issue date mistyped", "due date mistyped"])
def test_a_b2b_invoice_dated_after_its_due_date_names_the_date_mistyped(
        issue_date, due_date, field, why):
    data = json.loads(LAYOUTS.get("b2b-invoice").sample_data())
    data.update(issue_date=issue_date, due_date=due_date)
    assert violations("b2b-invoice", data) == [(field, why)]



@pytest.mark.parametrize("preferences, refused", [(["digital_only"], True), ([], False)],
                         ids=["Finvoice the only channel", "Finvoice skipped"])
def test_a_finvoice_too_long_invoice_number_is_named_at_the_card_datas_path(
        preferences, refused):
    """Hypothesis (test_compose_properties): a digital-only Finnish consumer's card invoice
    numbered with 21 characters, past Finvoice's 20, was refused at `$.number`, the EN 16931
    model's path, which the card data does not have; the skipped e-invoice named it too."""
    data = json.loads((LAYOUTS.get("card-invoice").path / "samples/fi-FI.json").read_text())
    data["customer"].update(preferences=preferences)
    if refused:
        for contact in ("email", "mobile"):  # nothing digital but the e-invoice
            data["customer"].pop(contact)
    data["invoice"]["number"] = "1" * 21
    why = ("[FINVOICE-InvoiceNumber] Finvoice invoice numbers have at most 20 characters")
    if refused:
        assert violations("card-invoice", data) == [("$.invoice.number", why)]
    else:
        composition = compose(ComposeRequest(tenant="t", layout=LAYOUTS.get("card-invoice"),
                                             data=json.dumps(data), document_id="d", now=NOW))
        [skipped] = composition.channel_plan.skipped
        assert (skipped.field, skipped.reason.endswith(why)) == ("$.invoice.number", True)
