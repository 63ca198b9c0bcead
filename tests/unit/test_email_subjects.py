"""E-mail subjects read right in every language: German writes nouns capitalised.

The card-invoice and payment-reminder subjects lowercased a label to use it inside the
sentence (`{{ labels.due_date | lower }}`), which wrote "Zu zahlen 997,63 €,
fälligkeitsdatum 25.03.2026" in de-DE and de-AT (found by the new-user test). Each locale now
has the subject's words as labels of their own (`email_subject_*` in labels.toml).
Pure and fast: the e-mail is rendered with a stand-in PDF from the per-locale samples.
"""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from decimal import Decimal
from email import policy
from typing import Any

import pytest

from server.channels.email import render_email
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel, Output
from tests.layouts import shipped
from tests.pdf_inspect import normalise

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
FAKE_PDF = Output(Channel.PRINT, "application/pdf", b"%PDF-1.7\n%%EOF\n", "0" * 64,
                  {"pages": 1})


def subject(layout_id: str, locale: str, data: dict[str, Any] | None = None) -> str:
    layout = LAYOUTS.get(layout_id)
    if data is None:
        data = json.loads(layout.sample_data(locale))
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="01JN4Q7W2E", now=NOW, locale=locale))
    message = email.message_from_bytes(
        render_email(composition, layout, pdf=lambda: FAKE_PDF).content, policy=policy.default)
    return normalise(str(message["Subject"]))


@pytest.mark.parametrize(("layout_id", "locale", "expected"), [
    ("card-invoice", "de-DE",
     "Ihr Kontoauszug Kreditkarte: Zu zahlen 997,63 €, Fälligkeitsdatum 25.03.2026"),
    ("card-invoice", "de-AT",
     "Ihr Kontoauszug Kreditkarte: Zu zahlen € 529,81, Fälligkeitsdatum 25.03.2026"),
    ("card-invoice", "nb-NO",
     "Kredittkortfaktura: Å betale 34 708,17 kr, forfallsdato 25.03.2026"),
    ("payment-reminder", "de-DE",
     "Zahlungserinnerung: Zu zahlen 590,31 €, neue Zahlungsfrist 23.02.2026"),
    ("payment-reminder", "de-AT",
     "Zahlungserinnerung: Zu zahlen € 417,53, neue Zahlungsfrist 23.02.2026"),
    ("payment-reminder", "nb-NO",
     "Betalingspåminnelse: Å betale 4 368,18 kr, ny betalingsfrist 23.02.2026"),
])
def test_subject_with_an_amount_due_reads_right(layout_id: str, locale: str,
                                                expected: str) -> None:
    assert subject(layout_id, locale) == expected


def _card_with_balance(locale: str, balance: Decimal) -> dict[str, Any]:
    """The card-invoice sample of `locale` with payments received making the new balance
    `balance` (0 or a credit, i.e. below 0)."""
    layout = LAYOUTS.get("card-invoice")
    data = json.loads(layout.sample_data(locale))
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="01JN4Q7W2E", now=NOW, locale=locale))
    due = composition.amount_due
    assert due > 0
    received = Decimal(data["invoice"]["payments_received"])
    data["invoice"]["payments_received"] = str(received + due - balance)
    return data


@pytest.mark.parametrize(("locale", "credit", "nothing"), [
    ("de-DE", "Ihr Kontoauszug Kreditkarte: Guthaben 12,34 €",
     "Ihr Kontoauszug Kreditkarte: kein Zahlbetrag"),
    ("de-AT", "Ihr Kontoauszug Kreditkarte: Guthaben € 12,34",
     "Ihr Kontoauszug Kreditkarte: kein Zahlbetrag"),
    ("nb-NO", "Kredittkortfaktura: til gode 12,34 kr", "Kredittkortfaktura: ingenting å betale"),
])
def test_card_subject_with_nothing_to_pay_reads_right(locale: str, credit: str,
                                                      nothing: str) -> None:
    assert subject("card-invoice", locale, _card_with_balance(locale, Decimal("-12.34"))) \
        == credit
    assert subject("card-invoice", locale, _card_with_balance(locale, Decimal(0))) == nothing
