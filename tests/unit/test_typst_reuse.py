"""One Typst compiler renders document after document and reuses the layout work they share
(issue 14): the data reaches the template as files of one compile, never as `sys.inputs`
(part of the standard library every memoized call takes, so it would make each document
share nothing with the last), and what a warm compiler writes is what a fresh one writes,
page headers and the document title included."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
import pytest
import typst

import server.channels.typst_engine as typst_engine
from server.channels.pdf import template_json
from server.channels.typst_engine import BOUNDS_FILE, CONTEXT_FILE, TypstEngine, main_file
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutError
from tests.layouts import shipped
from tests.pdf_inspect import pages_text

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def card_invoice(name: str, number: str, transactions: int = 40):
    """A card invoice for `name` with invoice `number` and `transactions` rows (40: two
    pages, so page 2 carries the running title)."""
    layout = LAYOUTS.get("card-invoice")
    data = json.loads(layout.sample_data())
    data["customer"]["name"] = name
    data["invoice"]["number"] = number
    own = data["transactions"]
    data["transactions"] = [own[i % len(own)] for i in range(transactions)]
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id=f"01REUSE{number}", now=NOW,
                                  channels=())), layout


def test_the_data_goes_as_files_and_the_library_stays_the_same(monkeypatch):
    calls: list[dict] = []

    class Spy:
        def __init__(self, **kwargs):
            self._inner = typst.Compiler(**kwargs)

        def compile_with_warnings(self, **kwargs):
            calls.append(kwargs)
            return self._inner.compile_with_warnings(**kwargs)

    class Shim:
        Fonts = typst.Fonts
        TypstError = typst.TypstError
        Compiler = Spy

    monkeypatch.setattr(typst_engine, "typst", Shim)
    engine = TypstEngine()
    docs = [card_invoice("Kari Nordmann", "2026020011111", 3),
            card_invoice("Ola Hansen", "2026020022222", 5)]
    for comp, layout in docs:
        engine.render(layout, comp)
    assert len(calls) == 2
    for (comp, _), call in zip(docs, calls, strict=True):
        assert "sys_inputs" not in call  # the library (and its hash) of the last compile
        files = call["input"]
        assert files["main.typ"] == b'#include "/card-invoice/2.2.0/print.typ"\n'
        assert files[CONTEXT_FILE].decode() == template_json(comp)
        assert json.loads(files[BOUNDS_FILE])["values"]


def test_a_warm_compiler_writes_what_fresh_ones_write_headers_and_title_included():
    warm = TypstEngine()
    docs = [card_invoice("Kari Nordmann", "2026020011111"),
            card_invoice("Ola Hansen", "2026020022222"),
            card_invoice("Kari Nordmann", "2026020011111", 3)]
    for comp, layout in docs:
        made = warm.render(layout, comp).content
        assert made == TypstEngine().render(layout, comp).content
        pages = pages_text(made)
        with pikepdf.open(io.BytesIO(made)) as pdf:
            title = str(pdf.open_metadata().get("dc:title"))
        context = json.loads(template_json(comp))
        number, name = context["invoice"]["number"], context["customer"]["name"]
        assert number in title
        if len(pages) > 1:  # the running title is this document's, not the last one's
            assert f"{number} · {name}" in pages[1]
            assert all(other not in pages[1] for other in ("Kari", "Ola") if other
                       not in name)


@pytest.mark.parametrize("path", ['card-invoice/2.0.0/"x.typ', "card\\invoice/print.typ",
                                  "card-invoice/2.0.0/print\n.typ"])
def test_a_template_path_typst_would_have_to_escape_is_refused(path):
    with pytest.raises(LayoutError):
        main_file(Path("/layouts") / path, Path("/layouts"))
