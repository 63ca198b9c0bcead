"""Nothing to pay says so in every channel (issue 11, item 10, first half).

On a credit balance (or a balance of exactly 0) the SMS used to ask the customer to pay
"0,00 kr". Every layout where the amount due can be 0 or less (card invoice: a credit or zero
balance; b2b invoice: lines and allowances that come to 0 or below; a payment reminder cannot,
it refuses nothing outstanding) now has its own wording in print, email (HTML, text and
subject) and SMS, and shows no payment slip, reference or minimum payment asking for 0.
"""

from __future__ import annotations

import email
import html
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from email import policy

import pytest

from server.channels import Renderers
from server.channels.email import render_email
from server.channels.pdf import PdfEngine, PrintEngines, render_print
from server.channels.sms_channel import render_sms
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel, Composition, Output
from server.errors import InvalidInput
from tests.layouts import shipped
from tests.pdf_inspect import normalise, pages_text

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CREDIT = Decimal("5291.83")  # what the customer has to good
ZERO = Decimal("0")
WORDING = {  # locale -> (credit wording, zero wording, words of a payment request)
    "nb-NO": ("5 291,83 kr til gode", "ingenting å betale", ("KID", "forfaller", "Minstebeløp")),
    "sv-SE": ("5 291,83 kr tillgodo", "inget att betala", ("OCR", "förfaller", "Lägsta belopp")),
}
SAMPLES = {"nb-NO": "sample.json", "sv-SE": "sample-sv-SE.json"}
ZERO_AMOUNT = re.compile(r"(?<![\d-])0,00 kr")  # "0,00 kr" on its own, not "45 000,00 kr"


def card(locale: str, credit: Decimal, transactions: int | None = None
         ) -> tuple[Composition, object]:
    """The card-invoice sample with payments received making the new balance -credit."""
    layout = LAYOUTS.get("card-invoice")
    data = json.loads((layout.path / SAMPLES[locale]).read_text(encoding="utf-8"))
    data["customer"].update(preferences=["paper"], consents=["sms", "email"],
                            mobile="+4791234567")
    if transactions is not None:
        data["transactions"] = data["transactions"][:transactions]

    def composed() -> Composition:
        return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                      document_id="01JN4Q7W2E", now=NOW, locale=locale))

    balance = composed().amount_due
    assert balance > 0
    received = Decimal(data["invoice"]["payments_received"])
    data["invoice"]["payments_received"] = str(received + balance + credit)
    return composed(), layout


def fake_pdf() -> Output:
    return Output(Channel.PRINT, "application/pdf", b"%PDF-1.7\n%%EOF\n", "0" * 64, {"pages": 1})


def email_texts(composition, layout) -> tuple[str, str, str]:
    message = email.message_from_bytes(render_email(composition, layout, pdf=fake_pdf).content,
                                       policy=policy.default)
    body = re.sub(r"<style.*?</style>", " ", message.get_body(("html",)).get_content(), flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", body))
    return (normalise(message["Subject"]), normalise(text),
            normalise(message.get_body(("plain",)).get_content()))


@pytest.mark.parametrize("locale", ["nb-NO", "sv-SE"])
def test_credit_balance_sms_and_email_say_so_and_ask_for_nothing(locale: str) -> None:
    composition, layout = card(locale, CREDIT)
    assert composition.amount_due == 0
    credit, _, request_words = WORDING[locale]
    sms = normalise(render_sms(composition, layout).content.decode())
    assert credit in sms and not ZERO_AMOUNT.search(sms)
    assert not any(word in sms for word in request_words), sms
    subject, body, text = email_texts(composition, layout)
    for part in (subject, body, text):
        assert "5 291,83 kr" in part and not ZERO_AMOUNT.search(part), part
    for part in (body, text):
        assert composition.context["payment"]["reference"] not in part
        assert composition.context["labels"]["slip_note"] not in part


@pytest.mark.parametrize("locale", ["nb-NO", "sv-SE"])
def test_zero_balance_sms_and_email_say_nothing_to_pay(locale: str) -> None:
    composition, layout = card(locale, ZERO)
    _, nothing, request_words = WORDING[locale]
    sms = normalise(render_sms(composition, layout).content.decode())
    assert nothing in sms and not any(word in sms for word in request_words), sms
    subject, body, text = email_texts(composition, layout)
    assert nothing in subject.lower()
    for part in (body, text):
        assert composition.context["payment"]["reference"] not in part
        assert composition.context["labels"]["total_to_pay"] not in part


def test_short_sms_variant_has_the_credit_wording_too() -> None:
    composition, layout = card("nb-NO", CREDIT)
    renamed = replace(composition, context={
        **composition.context,
        "customer": {**composition.context["customer"], "name": "Анна Иванова"}})
    output = render_sms(renamed, layout)
    assert output.facts["template"] == "sms-short.txt"
    assert "5 291,83 kr til gode, ingenting å betale" in normalise(output.content.decode())


@pytest.fixture(scope="module", params=[None, "weasyprint"], ids=["layout-engine", "weasyprint"])
def engine(request: pytest.FixtureRequest) -> PdfEngine:
    """The engine each layout's manifest names (Typst for card-invoice and b2b-invoice
    2.0.0), and WeasyPrint, which designers may still choose for them."""
    return PrintEngines(request.param)


@pytest.mark.parametrize(("payments", "says"), [(CREDIT, "Til gode 5 291,83 kr"),
                                                 (ZERO, "Ingenting å betale 0,00 kr")])
def test_card_invoice_print_has_no_slip_asking_for_nothing(engine, payments, says) -> None:
    composition, layout = card("nb-NO", payments, transactions=3)
    text = " ".join(pages_text(render_print(composition, layout, engine).content))
    labels = composition.context["labels"]
    assert says in text
    assert labels["slip_title"] not in text
    assert composition.context["payment"]["reference_label"] not in text
    assert normalise(composition.context["payment"]["reference"]) not in text
    assert labels["total_to_pay"] not in text and labels["minimum_payment"] not in text


def test_card_invoice_print_with_something_to_pay_keeps_its_slip(engine) -> None:
    composition, layout = card("nb-NO", Decimal("-1000"), transactions=3)  # 1 000,00 to pay
    text = " ".join(pages_text(render_print(composition, layout, engine).content))
    assert composition.context["labels"]["slip_title"] in text
    assert normalise(composition.context["payment"]["reference"]) in text
    assert "Å betale 1 000,00 kr" in text


def test_b2b_invoice_that_comes_to_less_than_nothing_asks_for_no_payment(engine) -> None:
    layout = LAYOUTS.get("b2b-invoice")
    data = json.loads(layout.sample_data())
    data["customer"].pop("peppol_id", None)
    data["customer"]["preferences"] = ["paper"]
    data["lines"].append({"name": "Kreditering av faktura 2026-0007", "quantity": "-1",
                          "unit_price": "30000", "vat_category": "S", "vat_rate": "25"})
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW))
    assert composition.invoice.totals.payable < 0 and composition.amount_due == 0
    assert composition.kind.value == "invoice"
    [output] = Renderers(engine).render(composition, layout)
    text = " ".join(pages_text(output.content))
    credit = normalise(composition.context["payment"]["credit_amount"])
    assert f"Til gode {credit}" in text and "ingenting å betale" in text
    assert "Betal til konto" not in text and "Forfallsdato" not in text
    assert "Å betale" not in text
    payment = composition.context["payment"]
    assert payment["reference_name"] not in text and payment["reference"] not in text


def test_a_reminder_cannot_have_nothing_to_pay() -> None:
    layout = LAYOUTS.get("payment-reminder")
    data = json.loads(layout.sample_data())
    data["invoice"]["amount_outstanding"] = "0"
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                               document_id="d", now=NOW))
    assert info.value.violations[0].field == "$.invoice.amount_outstanding"
    data["invoice"]["amount_outstanding"] = "-100"
    with pytest.raises(InvalidInput):
        compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                               document_id="d", now=NOW))
