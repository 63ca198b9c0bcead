"""A tab in the data prints as a space, with both engines (QA 2026-12-01).

Data may hold tabs (server/compose/data.py keeps tab, LF and CR). WeasyPrint, as any HTML
renderer, prints a tab between words as a space; Typst drew it as nothing, so a customer
"Kunde\\tBygg AS" at "Storgata\\t2" got a letter addressed to "KundeBygg AS" at
"Storgata2" in the envelope window, and a line "Rådgivning\\tkontant" read
"Rådgivningkontant". The e-invoice keeps the text as given.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.channels.pdf import render_print, template_json
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_inspect import pages_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def composed_with_tabs():
    layout = LAYOUTS.get("b2b-invoice")
    data = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    data["customer"]["name"] = "Kunde\tBygg AS"
    data["customer"]["address"]["lines"][0] = "Storgata\t2"
    data["lines"][0]["name"] = "Rådgivning\tkontant"
    data["note"] = "Takk\tfor oppdraget. Sti C:\\temp\\tab"  # a backslash and t stay
    return layout, compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JTEST", now=NOW,
        channels=(Channel.PRINT,)))


@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
def test_a_tab_prints_as_a_space(engine):
    layout, composition = composed_with_tabs()
    text = pages_text(render_print(composition, layout, print_engines(engine, layout)).content)[0]
    for words in ("Kunde Bygg AS", "Storgata 2", "Rådgivning kontant", "Takk for oppdraget"):
        assert words in text, (words, text[:400])


def test_the_typst_context_has_a_space_for_a_tab_and_keeps_backslashes():
    _, composition = composed_with_tabs()
    text = template_json(composition)
    assert json.loads(text)["customer"]["name"] == "Kunde Bygg AS"
    assert "\\t" not in text.replace("\\\\", "")  # no tab escape left
    assert "C:\\\\temp\\\\tab" in text  # an escaped backslash before "t" is no tab
