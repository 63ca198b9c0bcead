"""The Polish payment sentence names the account as running text: "Zapłać na rachunek nr 61
… do …" (b2b-invoice 2.3.0, both engines) and "Wplac … na rachunek nr 61 …" (the SMS of
payment-reminder 2.2.0). QA: they read "Zapłać na Nr rachunku odbiorcy 61 …" and "na Nr
rachunku odbiorcy 61 …": the account's field label on the transfer form after a preposition,
which is not Polish. The account number and the transfer title stay as they were.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.channels import sms_channel
from server.channels.pdf import render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_inspect import normalise, pages_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ACCOUNT = "61 1090 1014 0000 0712 1981 2874"  # the pl-PL samples' NRB


def composed(layout_id: str, version: str, channels: tuple[Channel, ...]):
    layout = LAYOUTS.get(layout_id, version)
    return layout, compose(ComposeRequest(
        tenant="t", layout=layout, data=layout.sample_data("pl-PL"), document_id="01JPLPAY",
        now=NOW, locale="pl-PL", channels=channels))


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
def test_the_b2b_invoice_asks_to_pay_to_the_account_number(engine):
    layout, composition = composed("b2b-invoice", "2.3.0", (Channel.PRINT,))
    payment = composition.context["payment"]
    assert payment["account"] == ACCOUNT
    pdf = render_print(composition, layout, print_engines(engine, layout)).content
    text = normalise(pages_text(pdf)[0])
    sentence = (f"Zapłać na rachunek nr {ACCOUNT} do {payment['due_date']}, podając tytuł "
                f"przelewu: {payment['reference']}.")
    assert sentence in text, text[-600:]
    assert "na Nr rachunku" not in text


@pytest.mark.parametrize("short", [False, True])
def test_the_reminders_sms_asks_to_pay_to_the_account_number(short):
    layout, composition = composed("payment-reminder", "2.2.0", (Channel.PRINT, Channel.SMS))
    payment = composition.context["payment"]
    words = composition.context["labels"]["sms_short" if short else "sms"]
    assert " na rachunek nr {account}, {reference_name} {reference}." in words
    text = sms_channel.render_sms(composition, layout).content.decode()
    if not short:
        assert f" na rachunek nr {ACCOUNT}, tytul przelewu {payment['reference']}." in text, text
        assert "Nr rachunku" not in text
