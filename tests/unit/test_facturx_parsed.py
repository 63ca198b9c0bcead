"""Factur-X embedding with the CII's own tree (`embed_facturx(..., parsed=cii_tree(...))`)
writes the very bytes of embedding the XML alone, which parses it: for Typst and WeasyPrint
print PDFs (the incremental update), for a file rewritten whole, and for a PDF without dates
of its own (the attachment's date is then the invoice's issue date, read from the tree). The
e-invoice channel's Factur-X is what it was when it embedded `render_cii`'s bytes, and it
no longer parses the CII it wrote. A tree that is no CII document is refused; a CII tree
that is not the XML's is the caller's promise broken: the bytes given are embedded, and
the tree gives only the attachment's date when the PDF has none (documented, shown here).
"""

from __future__ import annotations

import functools
import io
from dataclasses import replace
from datetime import UTC, date, datetime

import facturx
import pikepdf
import pytest
from lxml import etree

from server.channels import einvoice_channel
from server.channels.einvoice import cii_bytes, cii_tree, embed_facturx, render_cii
from server.channels.einvoice import facturx as fx
from server.channels.pdf import PrintEngines, render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.compose.plan import FACTURX
from tests.layouts import shipped
from tests.unit.einvoice_fixtures import CASES

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
ENGINES = PrintEngines()


@pytest.fixture(scope="module")
def undated_pdfa3() -> bytes:
    """A PDF/A-3 with no dates in its document information."""
    from weasyprint import HTML

    return HTML(string="<h1>Faktura 2024-001</h1>").write_pdf(pdf_variant="pdf/a-3b")


@pytest.fixture(scope="module", params=["typst", "weasyprint"])
def print_pdf(request) -> bytes:
    layout = LAYOUTS.get("card-invoice")
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=layout.sample_data(), document_id="01FACTURXPARSED",
        now=NOW, channels=(Channel.PRINT,)))
    return ENGINES.engine(request.param).render(layout, composition).content


def _with_attachment(pdf: bytes) -> bytes:
    """`pdf` with an attachment of its own: Factur-X then rewrites the file whole."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        doc.attachments["terms.txt"] = pikepdf.AttachedFileSpec(
            doc, b"terms", mime_type="text/plain", relationship=pikepdf.Name.Supplement)
        out = io.BytesIO()
        doc.save(out, deterministic_id=True)
        return out.getvalue()


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_tree_gives_the_bytes_of_a_parse(case: str, print_pdf: bytes,
                                             undated_pdfa3: bytes) -> None:
    invoice = CASES[case]()
    tree = cii_tree(invoice)
    xml = cii_bytes(tree)
    assert xml == render_cii(invoice)
    for pdf in (print_pdf, undated_pdfa3, _with_attachment(print_pdf)):
        for relationship in ("Data", "Alternative"):
            parsed = embed_facturx(pdf, xml, parsed=tree, relationship=relationship)
            assert parsed == embed_facturx(pdf, xml, relationship=relationship)
    assert facturx.get_facturx_xml_from_pdf(parsed) == ("factur-x.xml", xml)


def test_an_undated_pdf_takes_the_issue_date_from_the_tree(undated_pdfa3: bytes) -> None:
    invoice = CASES[sorted(CASES)[0]]()
    tree = cii_tree(invoice)
    out = embed_facturx(undated_pdfa3, cii_bytes(tree), parsed=tree)
    with pikepdf.open(io.BytesIO(out)) as doc:
        (spec,) = list(doc.Root.AF)
        stamp = f"D:{invoice.issue_date:%Y%m%d}000000Z"
        assert str(spec.EF.F.Params.ModDate) == str(spec.EF.F.Params.CreationDate) == stamp


def _facturx_documents():
    """(composition, layout) of every sample of the layouts with Factur-X whose recipient
    gets it (no Peppol id, not a Finnish consumer), and generated card invoices."""
    from load_tests.bench_bulk import records

    for layout in LAYOUTS.every_version():
        if not layout.manifest.get("einvoice", {}).get("facturx"):
            continue
        for path in sorted(layout.path.glob("sample*.json")):
            yield layout, path.read_text(encoding="utf-8"), None
    card = LAYOUTS.get("card-invoice")
    for _, data, locale in records(6):
        yield card, data, locale


def test_the_channels_factur_x_is_the_one_it_wrote_before(monkeypatch) -> None:
    """The e-invoice channel's Factur-X equals embedding `render_cii`'s bytes (what the
    channel did before it kept the tree), and the channel parses no CII."""
    parses = []
    fromstring = fx.etree.fromstring
    monkeypatch.setattr(fx.etree, "fromstring", lambda text, *a, **k: parses.append(
        text) or fromstring(text, *a, **k))
    seen = 0
    for n, (layout, data, locale) in enumerate(_facturx_documents()):
        composition = compose(ComposeRequest(
            tenant="t", layout=layout, data=data, document_id=f"01FACTURXPARSED{n:03d}",
            now=NOW, locale=locale))
        printed = render_print(composition, layout, ENGINES)
        pdf = functools.partial(lambda out: out, printed)
        output = einvoice_channel.render_einvoice(composition, layout, pdf=pdf)
        if output.facts["syntax"] != FACTURX:
            continue
        seen += 1
        parses.clear()
        before = embed_facturx(printed.content, render_cii(composition.invoice))
        assert any(b"CrossIndustryInvoice" in text for text in parses)  # the old way parsed
        parses.clear()
        again = einvoice_channel.render_einvoice(composition, layout, pdf=pdf)
        assert not any(b"CrossIndustryInvoice" in text for text in parses)
        assert output.content == again.content == before, layout.ref
    assert seen >= 8


def test_a_tree_that_is_no_cii_document_is_refused(print_pdf: bytes) -> None:
    xml = render_cii(CASES[sorted(CASES)[0]]())
    with pytest.raises(ValueError, match="CrossIndustryInvoice"):
        embed_facturx(print_pdf, xml, parsed=etree.fromstring(b"<invoice/>"))
    with pytest.raises(ValueError, match="CrossIndustryInvoice"):
        embed_facturx(print_pdf, xml, parsed=cii_tree(CASES[sorted(CASES)[0]]())[0])


def test_a_cii_tree_of_another_invoice_is_the_callers_promise_broken(
        print_pdf: bytes, undated_pdfa3: bytes) -> None:
    """Documented, not checked (checking costs what the tree spares): the bytes given are
    embedded whatever the tree; the tree only dates the attachment of an undated PDF."""
    invoice = CASES[sorted(CASES)[0]]()
    xml = render_cii(invoice)
    other_number = cii_tree(replace(invoice, number="OTHER-1", note="another invoice"))
    for pdf in (print_pdf, undated_pdfa3):
        assert embed_facturx(pdf, xml, parsed=other_number) == embed_facturx(pdf, xml)
    wrong = cii_tree(replace(invoice, number="OTHER-1", issue_date=date(2020, 1, 31)))
    undated = embed_facturx(undated_pdfa3, xml, parsed=wrong)
    assert facturx.get_facturx_xml_from_pdf(undated) == ("factur-x.xml", xml)
    with pikepdf.open(io.BytesIO(undated)) as doc:
        assert str(doc.Root.AF[0].EF.F.Params.ModDate) == "D:20200131000000Z"

