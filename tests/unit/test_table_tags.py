"""WeasyPrint's table tags settled to what the HTML means (server/channels/table_tags.py):
a table without header cells becomes `/Div`s, header cells get the scope HTML gives an
auto-scoped `<th>`, and nothing else in the structure tree or on the page changes."""

from __future__ import annotations

import io

import pikepdf
import pypdfium2
from weasyprint import HTML

from server.channels.pdf_ua import identify_pdf_ua
from server.channels.table_tags import settle_table_tags
from tests.pdf_conformance import pdf_ua_findings

PAGE = """<!doctype html><html lang="nb"><head><title>Tabeller</title></head><body>
<table class="layout"><tr><td>Fjordbank ASA</td><td>Kari Nordmann</td></tr></table>
<table class="facts">
  <tr><th>Fakturadato</th><td>1. desember 2026</td></tr>
  <tr><th>Å betale</th><td>1 234,50 kr</td></tr>
</table>
<table class="lines">
  <thead><tr><th>Dato</th><th>Beskrivelse</th><th>Beløp</th></tr></thead>
  <tbody><tr><td>02.11.</td><td>REMA 1000</td><td>249,90</td></tr></tbody>
</table>
</body></html>"""


def weasyprint_pdf() -> bytes:
    return HTML(string=PAGE).render().write_pdf(pdf_variant="pdf/a-3a")


def tree(pdf: bytes) -> list[tuple[str, str | None]]:
    """(role, /Scope of its /Table attributes) of every structure element, depth first."""
    out: list[tuple[str, str | None]] = []

    def walk(node):
        kids = node.get("/K")
        for kid in kids if isinstance(kids, pikepdf.Array) else [kids]:
            if isinstance(kid, pikepdf.Dictionary) and "/S" in kid:
                attributes = kid.get("/A")
                scope = None
                for a in attributes if isinstance(attributes, pikepdf.Array) else [attributes]:
                    if isinstance(a, pikepdf.Dictionary) and "/Scope" in a:
                        scope = str(a.Scope)
                out.append((str(kid.S), scope))
                walk(kid)

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        walk(doc.Root.StructTreeRoot)
    return out


def test_layout_tables_become_divs_and_header_cells_get_their_scope():
    before = tree(weasyprint_pdf())
    after = tree(identify_pdf_ua(weasyprint_pdf()))

    assert [role for role, _ in before].count("/Table") == 3
    assert [role for role, _ in after].count("/Table") == 2  # the layout table is gone
    assert all(scope is None for role, scope in before if role == "/TH")
    scopes = [scope for role, scope in after if role == "/TH"]
    assert scopes == ["/Row", "/Row", "/Column", "/Column", "/Column"]
    # the same elements in the same order: only the layout table's roles changed
    assert len(after) == len(before)
    changed = [(b, a) for (b, _), (a, _) in zip(before, after, strict=True) if b != a]
    assert changed == [("/Table", "/Div"), ("/TBody", "/Div"), ("/TR", "/Div"), ("/TD", "/Div"),
                       ("/TD", "/Div")]


def test_the_checker_sees_the_difference():
    rules = {f.split()[0] for f in pdf_ua_findings(weasyprint_pdf())}
    assert "UA-15-003" in rules
    assert pdf_ua_findings(identify_pdf_ua(weasyprint_pdf())) == []


def test_the_pages_and_their_text_are_unchanged():
    pdf = weasyprint_pdf()
    settled = identify_pdf_ua(pdf)

    def text(content: bytes) -> str:
        document = pypdfium2.PdfDocument(content)
        return "".join(page.get_textpage().get_text_range() for page in document)

    assert text(settled) == text(pdf)
    with pikepdf.open(io.BytesIO(pdf)) as a, pikepdf.open(io.BytesIO(settled)) as b:
        assert [p.Contents.read_bytes() for p in a.pages] == \
            [p.Contents.read_bytes() for p in b.pages]


def test_an_untagged_pdf_is_left_alone():
    pdf = HTML(string=PAGE).render().write_pdf()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert settle_table_tags(doc) == 0
