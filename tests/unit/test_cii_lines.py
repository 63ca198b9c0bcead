"""The CII's header and lines made by one parse of their text
(server/channels/einvoice/cii_lines.py) are what `cii_tree` builds element by element: the
same document bytes for generated headers (number, type code, note) and lines with every
optional part (notes, item ids, attributes, classifications, origin, order line, gross
price with discount, base quantity, period, allowances and charges, invoiced object,
accounting reference) and text with markup, quotes, CR, LF, tabs, blanks, emoji and
combining marks; for the e-invoice test cases; and a value XML cannot hold is refused as
lxml refuses it."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.channels.einvoice import cii, cii_lines, render_cii
from server.compose.en16931 import Identifier, InvoiceLine, ItemAttribute, LineAllowanceCharge
from tests.unit.einvoice_fixtures import CASES, invoice

_TEXT = st.one_of(
    st.none(), st.just(""), st.just("  "),
    st.text(st.sampled_from(list("aøÅ &<>\"'\r\n\t=;]]>") + ["\u0336", "\U0001f600",
                                                              "\u202e", "\u00a0"]),
            min_size=1, max_size=12),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20))
_WORD = st.one_of(st.none(), st.just(""), st.text("AZ09 &<\"\t\n", min_size=1, max_size=6))
_AMOUNT = st.decimals(min_value=Decimal("-99999"), max_value=Decimal("99999"), places=2,
                      allow_nan=False)
_NUMBER = st.decimals(min_value=Decimal("-9999"), max_value=Decimal("9999"), places=4,
                      allow_nan=False)
_DATE = st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2030, 12, 31)))
_ID = st.one_of(st.none(), st.builds(Identifier, st.text("ab1 &<", min_size=1, max_size=5),
                                     _WORD, _WORD))


@st.composite
def _lines(draw: st.DrawFn) -> list[InvoiceLine]:
    out = []
    for n in range(draw(st.integers(1, 4))):
        out.append(InvoiceLine(
            id=draw(st.one_of(st.just(str(n + 1)), st.text("1a &", max_size=3))),
            name=draw(_TEXT) or "x", quantity=draw(_NUMBER),
            unit_code=draw(st.sampled_from(["C62", "HUR", ""])), unit_price=draw(_NUMBER),
            net_amount=draw(_AMOUNT), vat_category=draw(st.sampled_from(["S", "O", "Z", "E"])),
            vat_rate=draw(st.one_of(st.none(), _NUMBER)), description=draw(_TEXT),
            period_start=draw(_DATE), period_end=draw(_DATE), note=draw(_TEXT),
            object_id=draw(_ID), order_line_reference=draw(_WORD),
            accounting_reference=draw(_WORD),
            allowances_charges=tuple(draw(st.lists(st.builds(
                LineAllowanceCharge, st.booleans(), _AMOUNT, _TEXT, _WORD,
                st.one_of(st.none(), _AMOUNT), st.one_of(st.none(), _NUMBER)), max_size=2))),
            price_discount=draw(st.one_of(st.none(), _NUMBER)),
            gross_price=draw(st.one_of(st.none(), _NUMBER)),
            base_quantity=draw(st.one_of(st.none(), _NUMBER)),
            seller_item_id=draw(_WORD), buyer_item_id=draw(_WORD),
            standard_item_id=draw(_ID),
            classifications=tuple(draw(st.lists(_ID.filter(bool), max_size=2))),
            origin_country=draw(_WORD),
            attributes=tuple(draw(st.lists(st.builds(ItemAttribute, _TEXT.map(str),
                                                      _TEXT.map(str)), max_size=2)))))
    return out


def _element_by_element(inv, monkeypatch) -> bytes:
    with monkeypatch.context() as patch:
        patch.setattr(cii, "document_start", lambda invoice, guideline: None)
        return render_cii(inv)


_BASE = invoice()


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=_lines(), currency=st.sampled_from(["NOK", "EUR", "JPY", "KWD"]),
       number=st.text("A1-/ &<", min_size=1, max_size=8), note=_TEXT, subject=_WORD,
       type_code=st.sampled_from(["380", "381", "383"]))
def test_parsed_lines_are_the_built_lines(lines, currency, number, note, subject, type_code,
                                          monkeypatch) -> None:
    inv = dataclasses.replace(_BASE, lines=tuple(lines), currency=currency, number=number,
                              note=note, note_subject=subject, type_code=type_code)
    assert cii_lines.document_start(inv, cii.GUIDELINE_ID) is not None  # the fast path
    assert render_cii(inv) == _element_by_element(inv, monkeypatch)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_einvoice_cases_are_the_same_bytes(case, monkeypatch) -> None:
    inv = CASES[case]()
    assert render_cii(inv) == _element_by_element(inv, monkeypatch)


@pytest.mark.parametrize("field", ["name", "note"])
@pytest.mark.parametrize("bad", ["a\x01b", "\ufffe", "x\ud800"])
def test_a_value_xml_cannot_hold_is_refused_as_before(bad, field, monkeypatch) -> None:
    if field == "name":
        inv = dataclasses.replace(_BASE, lines=(dataclasses.replace(_BASE.lines[0], name=bad),))
    else:
        inv = dataclasses.replace(_BASE, note=bad, note_subject="AAI")
    assert cii_lines.document_start(inv, cii.GUIDELINE_ID) is None
    with pytest.raises(ValueError) as ours:
        render_cii(inv)
    with pytest.raises(ValueError) as before:
        _element_by_element(inv, monkeypatch)
    assert type(ours.value) is type(before.value)
