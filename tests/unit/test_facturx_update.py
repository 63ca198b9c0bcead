"""Factur-X appended as an incremental update (server/channels/einvoice/pdf_update.py) is the
same document as pikepdf's whole-file rewrite: the same attachment (bytes, name, media
type, size, MD5, dates, description, /AFRelationship, listed in /AF and /EmbeddedFiles), the
same XMP, catalog, document information and pages, readable without repair by qpdf, PDFium
and the `factur-x` package (pypdf), and still PDF/A-3 + PDF/UA-1 as far as machines check.
The print PDF's own bytes stay as rendered. For a Typst PDF (cross-reference table) and a
WeasyPrint PDF (cross-reference stream, objects in object streams); a file the update
cannot extend safely is rewritten whole.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import facturx
import pikepdf
import pypdfium2
import pytest
from lxml import etree

from server.channels.einvoice import embed_facturx, render_cii
from server.channels.einvoice import facturx as fx
from server.channels.einvoice.pdf_update import IncrementalUpdate, NotAppendable, Ref
from server.channels.pdf import PrintEngines
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_conformance import pdf_a_problems, pdf_ua_findings

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, tzinfo=UTC)


def _print_pdf(engine: str) -> tuple[bytes, bytes]:
    """The card invoice's print PDF/A-3 from `engine`, and its CII."""
    layout = LAYOUTS.get("card-invoice")
    comp = compose(ComposeRequest(
        tenant="t", layout=layout, data=(layout.path / "sample.json").read_text("utf-8"),
        document_id="01FACTURXUPDATE", now=NOW, channels=(Channel.PRINT,)))
    return PrintEngines().engine(engine).render(layout, comp).content, render_cii(comp.invoice)


@pytest.fixture(scope="module", params=["typst", "weasyprint"])
def printed(request) -> tuple[str, bytes, bytes]:
    return (request.param, *_print_pdf(request.param))


def _canonical_xmp(packet: bytes) -> bytes:
    """The XMP's x:xmpmeta as canonical XML, layout whitespace aside (pikepdf's save
    pretty-prints the packet it rewrites; the update keeps the engine's packet as is)."""
    start, end = packet.find(b"<x:xmpmeta"), packet.rfind(b"</x:xmpmeta>") + 12
    tree = etree.fromstring(packet[start:end], etree.XMLParser(remove_blank_text=True))
    return etree.tostring(tree, method="c14n")


def _facts(pdf: bytes) -> dict:
    """What a reader sees of a Factur-X PDF, object numbers aside."""
    with pikepdf.open(io.BytesIO(pdf), attempt_recovery=False) as doc:
        assert doc.check_pdf_syntax() == []
        root = doc.Root
        (spec,) = list(root.AF)
        (name,) = list(doc.attachments)
        attached = doc.attachments[name]
        stream = attached.get_file()
        return {
            "attachment": (name, stream.read_bytes(), stream.mime_type, stream.size, stream.md5,
                           stream.creation_date, stream.mod_date, attached.description),
            "relationship": spec.AFRelationship,
            "spec_is_listed": spec.objgen == attached.obj.objgen,
            "spec_keys": sorted(spec.keys()),
            "ef_keys": sorted(spec.EF.keys()),
            "xmp": _canonical_xmp(root.Metadata.read_bytes()),
            "catalog_keys": sorted(root.keys()),
            "info": {k: str(v) for k, v in doc.docinfo.items()},
            "pages": [b"".join(c.read_bytes() for c in (
                page.Contents if isinstance(page.Contents, pikepdf.Array) else [page.Contents]))
                for page in doc.pages],
            "first_id": bytes(doc.trailer.ID[0]),
        }


def test_the_update_is_the_rewrite_s_document(printed) -> None:
    engine, pdf, cii = printed
    appended = embed_facturx(pdf, cii)
    assert appended.startswith(pdf), "the print PDF's bytes stay as rendered"
    rewritten = fx._rewritten(pdf, etree.fromstring(cii), cii, fx.EN16931_LEVEL, "Data")
    assert _facts(appended) == _facts(rewritten)
    assert embed_facturx(pdf, cii) == appended  # reproducible bytes


def test_the_update_reads_back_everywhere_and_stays_pdf_a3_ua1(printed) -> None:
    engine, pdf, cii = printed
    out = embed_facturx(pdf, cii, relationship="Alternative")
    assert facturx.get_facturx_xml_from_pdf(out) == ("factur-x.xml", cii)  # pypdf underneath
    document = pypdfium2.PdfDocument(out)
    try:
        assert len(document) == len(pypdfium2.PdfDocument(pdf))
        assert document.get_page(0).get_textpage().get_text_range().strip()
    finally:
        document.close()
    with pikepdf.open(io.BytesIO(out)) as doc:
        assert doc.Root.AF[0].AFRelationship == pikepdf.Name.Alternative
    assert pdf_a_problems(out, ua=engine == "typst") == []
    if engine == "typst":  # WeasyPrint's own tables fail one rule already (test_pdf_conformance)
        assert pdf_ua_findings(out) == []


def test_the_update_s_cross_reference_is_the_original_s_kind(printed) -> None:
    engine, pdf, cii = printed
    tail = embed_facturx(pdf, cii)[len(pdf):]
    offset = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", tail).group(1))
    section = embed_facturx(pdf, cii)[offset:offset + 40]
    if engine == "typst":
        assert section.startswith(b"xref\n")
    else:
        assert re.match(rb"\d+ 0 obj\n<< /Type /XRef", section)


def test_a_file_qpdf_must_repair_is_rewritten_whole() -> None:
    pdf, cii = _print_pdf("typst")
    broken = re.sub(rb"startxref\s+\d+", b"startxref\n17", pdf[-64:])
    damaged = pdf[:-64] + broken
    out = embed_facturx(damaged, cii)
    assert not out.startswith(damaged)
    assert facturx.get_facturx_xml_from_pdf(out) == ("factur-x.xml", cii)


def test_a_file_with_attachments_of_its_own_is_rewritten_with_both() -> None:
    pdf, cii = _print_pdf("typst")
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        doc.attachments["terms.txt"] = pikepdf.AttachedFileSpec(
            doc, b"terms", mime_type="text/plain", relationship=pikepdf.Name.Supplement)
        with_terms = io.BytesIO()
        doc.save(with_terms)
    out = embed_facturx(with_terms.getvalue(), cii)
    with pikepdf.open(io.BytesIO(out)) as doc:
        assert sorted(doc.attachments) == ["factur-x.xml", "terms.txt"]
        assert len(doc.Root.AF) == 2


def test_objects_are_grouped_in_subsections_and_the_size_covers_them() -> None:
    pdf, _ = _print_pdf("typst")
    with pikepdf.open(io.BytesIO(pdf), attempt_recovery=False) as doc:
        update = IncrementalUpdate(pdf, doc)
        size = int(doc.trailer.Size)
        info, root = doc.trailer.Info.objgen[0], doc.Root.objgen[0]
        first, second = update.new(), update.new()
        update.put(first, {"/A": 1})
        update.put(second, [first, "å"])
        update.put(Ref(*doc.Root.objgen), {**dict(doc.Root.items()), "/Kanal": second})
        update.put(Ref(*doc.trailer.Info.objgen), {"/Title": "Kanal"})
        out = update.write()
    section = out[out.rindex(b"\nxref\n") + 1:out.rindex(b"trailer\n")]
    subsections = {int(start): int(count) for start, count
                   in re.findall(rb"^(\d+) (\d+)\n", section, re.M)}
    covered = {n for start, count in subsections.items() for n in range(start, start + count)}
    assert covered == {info, root, size, size + 1}
    assert len(section) == len(b"xref\n") + sum(
        len(b"%d %d\n" % kv) for kv in subsections.items()) + 20 * 4  # 20-byte entries
    assert b"/Size %d" % (size + 2) in out[-400:]
    with pikepdf.open(io.BytesIO(out), attempt_recovery=False) as doc:
        assert doc.check_pdf_syntax() == []
        assert list(doc.Root.Kanal) == [pikepdf.Dictionary(A=1), "å"]
        assert str(doc.docinfo.Title) == "Kanal"


def test_an_encrypted_file_is_not_appended_to() -> None:
    pdf, _ = _print_pdf("typst")
    encrypted = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        doc.save(encrypted, encryption=pikepdf.Encryption(owner="o", user=""))
    with pikepdf.open(io.BytesIO(encrypted.getvalue())) as doc, \
            pytest.raises(NotAppendable):
        IncrementalUpdate(encrypted.getvalue(), doc)
