"""A sample's Finnish payment reference (viitenumero) is its own customer's. QA 2026-12-02:
the fi-FI and sv-FI samples of card-invoice and payment-reminder, two customers (52018830 and
52019114), both paid with base "2026004711", the country tests' invoice 4711 and neither
customer's. Each now pays with its customer number and a sequence, the check digit appended
by the reference code (server/compose/references.py, weights 7, 3, 1), as the layouts' other
samples do (card-invoice de-DE: 71044519 + 03; b2b-invoice fi-FI: 400391 + 260). Every
version's samples are checked: a sample is example data (`kanal layouts --sample`,
GetLayout), never read to compose or re-render a document, and was corrected in place before
(01c7d06, 6bfbc5d)."""

from __future__ import annotations

import json
import re

import pytest

from server.compose.composer import ComposeRequest, compose
from server.compose.references import make_reference
from tests.layout_samples import NOW, samples_paying_by

FINNISH = list(samples_paying_by("fi"))


def test_the_samples_with_a_finnish_reference_are_found():
    found = {(layout.id, locale) for layout, locale, _ in (p.values for p in FINNISH)}
    assert found == {(lid, locale) for lid in ("b2b-invoice", "card-invoice", "payment-reminder")
                     for locale in ("fi-FI", "sv-FI")}


@pytest.mark.parametrize(("layout", "locale", "data"), FINNISH)
def test_a_samples_finnish_reference_is_its_own_customers(layout, locale, data):
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW, locale=locale))
    reference = composition.payment_reference
    base, check = reference.value[:-1], reference.value[-1]
    customer = re.sub(r"\D", "", data["customer"]["customer_id"])  # b2b: "B-400391"
    assert base.startswith(customer), (reference.value, data["customer"]["customer_id"])
    assert make_reference("fi", base) == reference, check  # its check digit (7-3-1)
