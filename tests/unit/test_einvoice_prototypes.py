"""The CII and UBL writers' elements, copies of elements lxml made once
(server/channels/einvoice/elements.py `child`, issue 14), give the bytes `etree.SubElement`
gave: for generated invoices and credit notes with every optional part and odd text
(test_einvoice_property's strategy), for the card invoices of a bulk run, and in another
thread (each thread keeps its own prototypes).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from load_tests.bench_bulk import composed_records
from server.channels.einvoice import cii, ubl
from server.channels.einvoice.cii import render_cii
from server.channels.einvoice.ubl import render_ubl
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.unit.test_einvoice_property import LAYOUT, NOW, invoices


def sub_element(parent: etree._Element, namespace: str, tag: str,
                *attributes: tuple[str, str]) -> etree._Element:
    """`elements.child` as the writers had it: lxml's SubElement."""
    return etree.SubElement(parent, f"{{{namespace}}}{tag}", dict(attributes))


def reference(render, invoice) -> bytes:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cii, "child", sub_element)
        patch.setattr(ubl, "child", sub_element)
        return render(invoice)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(invoices())
def test_generated_invoices_are_written_as_subelement_wrote_them(data):
    invoice = compose(ComposeRequest(tenant="t", layout=LAYOUT, data=json.dumps(data),
                                     document_id="d", now=NOW,
                                     channels=(Channel.EINVOICE,))).invoice
    assert render_cii(invoice) == reference(render_cii, invoice)
    assert render_ubl(invoice) == reference(render_ubl, invoice)


def test_card_invoices_are_written_as_subelement_wrote_them_in_any_thread():
    layout = shipped().get("card-invoice")
    found = [c.invoice for c in composed_records(layout, 8, datetime(2026, 3, 2, tzinfo=UTC))]
    for render in (render_cii, render_ubl):
        expected = [reference(render, invoice) for invoice in found]
        assert [render(invoice) for invoice in found] == expected
        written: list[bytes] = []
        thread = threading.Thread(target=lambda render=render, written=written:
                                  written.extend(map(render, found)))
        thread.start()
        thread.join()
        assert written == expected
