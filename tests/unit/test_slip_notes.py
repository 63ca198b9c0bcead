"""The payment note ("Use {reference} when you pay...") reads as a sentence in every locale
and for every reference scheme (server/compose/builders/base.payment_labels).

QA: the pl-PL e-mail and slip said "Podaj  w tytule przelewu...": a remittance text (the
"text" scheme: tytuł przelewu, Verwendungszweck) has no name of its own, so the note's
{reference} was empty. Such a reference now has its own note (`slip_note_text`).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from server.compose.builders.base import REFERENCE_LABELS, payment_labels
from tests.layouts import shipped

LAYOUTS = shipped()
SCHEMES = sorted(REFERENCE_LABELS)


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_note_names_the_reference_in_every_locale(layout_id, scheme):
    layout = LAYOUTS.get(layout_id)
    account = SimpleNamespace(kind="iban", sort_code=None)
    for locale in layout.locales:
        labels = payment_labels(layout.labels_for(locale), SimpleNamespace(scheme=scheme),
                                account)
        note = labels["note"]
        assert note and "  " not in note and "{" not in note, (locale, note)
        if scheme != "text":  # the note asks for the reference by its name
            assert labels["reference_name"] and labels["reference_name"] in note


def test_the_polish_note_for_a_transfer_title():
    text = LAYOUTS.get("card-invoice").labels_for("pl-PL")
    note = payment_labels(text, SimpleNamespace(scheme="text"),
                          SimpleNamespace(kind="pl_nrb", sort_code=None))["note"]
    assert note.startswith("Wpisz podany tytuł przelewu bez zmian")
