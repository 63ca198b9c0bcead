"""The print preflight names the creditor fields that pushed the giro slip's rows down, not
the payment reference in the row they pushed onto the page footer.

A payment reminder whose creditor has three 70-character address lines and a 60-character
city (the schema's longest): each breaks over two lines in the slip's half-width payee
column, the slip (62 mm, fixed) grows taller than it is, and its reference/amount/account
row is drawn over the note and the footer. The preflight refused it (good) naming
`$.payment.reference_base`, which only stands in the pushed row. Rendered with the layout's
own engine (Typst) through the print channel, as in production.

A card invoice (nb-NO) to a German address with a long name and two long lines (QA,
/tmp/qa/repro/preflight-field.json): the address wraps past its window field and its
country line ("TYSKLAND") lands on the heading "Sammendrag" below, its foot on the
heading's foot, so the two runs read as one row, not a pushed one; neither run nor the row
holds an input string, and the preflight named the longest word of the whole document, the
issuer's `$.issuer.customer_service.web`. It names the wrapped recipient fields above.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.channels.pdf import PrintEngines, engine_of, render_print
from server.channels.preflight_pushed import stacked
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped

REGISTRY = shipped()
LAYOUT = REGISTRY.get("payment-reminder")
CARD_INVOICE = REGISTRY.get("card-invoice")
WORDS = ["Storgata", "Næringspark", "Bygning", "Inngang", "Etasje", "Kontor", "Avdeling",
         "Fakturamottak"]
CREDITOR = ["$.creditor.address.lines[0]", "$.creditor.address.lines[1]",
            "$.creditor.address.lines[2]", "$.creditor.address.city"]


def words(start: int, length: int) -> str:
    """`length` characters of address words (with spaces: they wrap, never overflow)."""
    text = " ".join(WORDS[(start + n) % len(WORDS)] for n in range(40))
    return text[:length].rstrip()


def render(data: dict, layout=LAYOUT) -> bytes:
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JTEST",
        now=datetime(2026, 3, 2, 9, tzinfo=UTC), channels=(Channel.PRINT,)))
    return render_print(composition, layout, PrintEngines(engine_of(layout))).content


def long_creditor() -> dict:
    data = json.loads((LAYOUT.path / "sample.json").read_text(encoding="utf-8"))
    address = data["creditor"]["address"]
    address["lines"] = [words(0, 70), words(3, 70), words(5, 70)]
    address["city"] = "Kristiansund Nord Næringsområde Vest Industriveien Øvre Del"
    return data


def test_a_creditor_block_pushing_the_slip_rows_down_names_the_creditor_fields():
    data = long_creditor()
    assert [len(line) for line in data["creditor"]["address"]["lines"]] == [70, 70, 70]
    with pytest.raises(InvalidInput) as refused:
        render(data)
    violations = refused.value.violations
    assert [v.field for v in violations] == CREDITOR, violations
    assert all("text is drawn over text" in v.description
               and "broken over lines" in v.description for v in violations)


def test_the_same_creditor_with_two_short_lines_prints():
    data = long_creditor()
    data["creditor"]["address"]["lines"] = [words(0, 30), words(3, 30)]
    data["creditor"]["address"]["city"] = "Kristiansund"
    assert render(data).startswith(b"%PDF")


def test_runs_on_one_row_are_not_stacked():
    assert stacked((280.0, 282.8), (280.9, 284.1))  # the note under the pushed row
    assert not stacked((100.0, 103.0), (100.2, 104.5))  # cells top-aligned in one row
    assert not stacked((100.0, 103.0), (101.5, 103.2))  # baseline-aligned, other sizes


def german_recipient() -> dict:
    """The card invoice's sample (NOK: nb-NO) to QA's German recipient."""
    data = json.loads((CARD_INVOICE.path / "sample.json").read_text(encoding="utf-8"))
    data["customer"]["name"] = "Anna-Maria von Habsburg-Lothringen zu Österreich-Este"
    data["customer"]["address"] = {
        "lines": ["c/o Hauptstraße 145, Hinterhaus, 3. Obergeschoss links, Klingel Müller",
                  "Gebäude C, Aufgang 4, Wohnung 17, Eingang über den Hof"],
        "postal_code": "80336", "city": "München", "country": "DE"}
    return data


def test_an_address_pushed_onto_the_heading_below_names_the_recipient_not_the_issuer():
    with pytest.raises(InvalidInput) as refused:
        render(german_recipient(), CARD_INVOICE)
    violations = refused.value.violations
    over = [v for v in violations if "text is drawn over text" in v.description]
    assert over and "TYSKLAND" in over[0].description, violations  # nb-NO: Tyskland
    assert [v.field for v in over] == ["$.customer.name", "$.customer.address.lines[0]",
                                       "$.customer.address.lines[1]"], violations
    assert all("broken over lines" in v.description for v in over)
    assert not any(v.field.startswith("$.issuer") for v in violations), violations
