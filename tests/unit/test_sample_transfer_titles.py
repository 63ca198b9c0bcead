"""A sample's transfer title (the `text` payment scheme: tytuł przelewu, Verwendungszweck)
names the document's own invoice number, and its own customer when it names one. QA
2026-12-02: the pl-PL samples of b2b-invoice ("Faktura 2026/03/4711, klient 10042" on invoice
F-2026-00309 of customer B-700309), card-invoice (the same title on 2026029105563) and
payment-reminder ("FV 2026/03/4711" on a reminder for 2026019105563) told the payer to
quote an invoice that is not the one printed. Every version's samples are checked: a sample
is example data (`kanal layouts --sample`, GetLayout), never read to compose or re-render a
document, and was corrected in place before (01c7d06)."""

from __future__ import annotations

import json
import re

import pytest

from server.compose.composer import ComposeRequest, compose
from tests.layout_samples import NOW, samples_paying_by

TITLED = list(samples_paying_by("text"))


def test_the_samples_with_a_transfer_title_are_found():
    found = {(layout.id, locale) for layout, locale, _ in (p.values for p in TITLED)}
    assert found == {("b2b-invoice", "pl-PL"), ("card-invoice", "pl-PL"),
                     ("payment-reminder", "pl-PL")}


@pytest.mark.parametrize(("layout", "locale", "data"), TITLED)
def test_a_samples_transfer_title_names_its_own_invoice_and_customer(layout, locale, data):
    title = data["payment"]["reference"]
    number = data.get("number") or data["invoice"]["number"]  # b2b: $.number
    assert re.search(rf"(?<![\w/-]){re.escape(number)}(?![\w/-])", title), (title, number)
    for client in re.findall(r"klient (\S+?),?(?:\s|$)", title):
        assert client == data["customer"]["customer_id"], title
    # and the composed document prints that title for the payer to quote
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW))
    assert composition.payment_reference.display == title
