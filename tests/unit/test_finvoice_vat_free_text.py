"""Finvoice `VatFreeText` keeps the VAT exemption reason in whole words (QA).

A Finnish card holder's Finvoice read "Not subject to VAT: card transactions are payments on
the card holder'": the reason (BT-120, then an English constant in card_statement.py, now in
the document's language from server/compose/builders/card_vat.py) was cut at 70 characters
inside a word. Finvoice 3.0 takes up to three `VatFreeText` elements of at most 70 characters
each (genericStringType0_70, maxOccurs 3 in tests/schemas/finvoice/Finvoice3.0.xsd): the
reason is wrapped at spaces onto them, and one longer than they hold ends at a whole word
with "…". The documents pass the Finvoice XSD.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from server.channels import Renderers
from server.channels.einvoice.finvoice import vat_free_texts
from server.compose.builders.card_vat import not_subject_to_vat
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
RENDERERS = Renderers()
FI_ADDRESS = {"lines": ["Kotikatu 3 B 12"], "postal_code": "33100", "city": "TAMPERE",
              "country": "FI"}
QUOTES = "'\"’‘“”"


def finvoice(layout_id: str, data: dict[str, Any], locale: str | None = None) -> bytes:
    layout = LAYOUTS.get(layout_id)
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW, locale=locale,
                                         channels=(Channel.EINVOICE,)))
    [output] = RENDERERS.render(composition, layout)
    assert output.facts["syntax"] == "finvoice-3.0"
    report = ev.validate_finvoice(output.content)
    assert report.errors == [], report.errors
    return output.content


def free_texts(content: bytes) -> list[list[str]]:
    return [[t.text for t in vat.findall("VatFreeText")]
            for vat in etree.fromstring(content).iter("VatSpecificationDetails")]


@pytest.mark.parametrize("locale", ["fi-FI", "sv-FI"])
def test_a_card_invoices_exemption_reason_is_whole_in_words(locale: str):
    layout = LAYOUTS.get("card-invoice")
    data = json.loads(layout.sample_data(locale))
    [texts] = free_texts(finvoice("card-invoice", data, locale))
    assert all(len(text) <= 70 for text in texts)
    assert len(texts) > 1 and " ".join(texts) == not_subject_to_vat(locale)  # no word cut
    assert not any(text[-1] in QUOTES for text in texts)


def test_a_reason_longer_than_three_elements_ends_at_a_whole_word():
    layout = LAYOUTS.get("b2b-invoice")
    data = json.loads(layout.sample_data())
    data["customer"].update(address=FI_ADDRESS)
    for key in ("org_number", "vat_id", "peppol_id"):
        data["customer"].pop(key, None)
    line = data["lines"][0]
    line.update(vat_category="E", vat_rate="0")
    data["lines"] = [line]
    reason = ("Exempt from VAT under the Finnish VAT Act section 41: financial services "
              "including the card holder's credit, the issuer's fees and the interest "
              "charged on the outstanding balance of the account, and everything the "
              "card agreement's terms call 'related services' in its appendix")
    assert len(reason) > 3 * 70
    data["exemption_reasons"] = {"E": reason}
    texts = next(t for t in free_texts(finvoice("b2b-invoice", data)) if t)
    assert len(texts) == 3 and all(len(text) <= 70 for text in texts)
    assert texts[-1].endswith(" …")
    kept = " ".join(texts).removesuffix(" …")
    assert reason.startswith(kept) and reason[len(kept)] == " "  # cut between words


@pytest.mark.parametrize(("reason", "expected"), [
    (None, []),
    ("   ", []),
    ("Veroton", ["Veroton"]),
    ("x" * 70, ["x" * 70]),
    ("a " * 34 + "bb", ["a " * 34 + "bb"]),  # 70 characters: one element
    ("Not subject  to\nVAT", ["Not subject to VAT"]),
])
def test_vat_free_texts(reason, expected):
    assert vat_free_texts(reason) == expected
