"""The print batch PDF's document level (server.printing.batch_pdf), QA M7: the imposed batch
of real print PDF/A-3 documents from both engines is a PDF 2.0 file (it uses /DPartRoot),
carries the documents' output intents (the majority's at document level, a differing one on
its piece's pages) and XMP naming the batch, dated by its close time: the same batch gives
the same bytes. Syntax as qpdf checks it (pikepdf's check_pdf_syntax is qpdf's --check)."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import pikepdf
import pytest

from server.channels.pdf import PrintEngines
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.printing.batch_pdf import BatchFacts, finish_print_pdf, read_document_parts
from server.printing.marks import MailPiece, impose
from server.printing.profiles import builtin_profiles
from tests.layouts import shipped

LAYOUTS = shipped()
CLOSED = datetime(2026, 11, 30, 14, 5, 7, tzinfo=UTC)
FACTS = BatchFacts("01BATCHM7", "nordkort", "acme-print", "default", CLOSED)


def _print_pdf(engine: str, n: int) -> bytes:
    layout = LAYOUTS.get("card-invoice")
    comp = compose(ComposeRequest(
        tenant="t", layout=layout, data=(layout.path / "sample.json").read_text("utf-8"),
        document_id=f"01BATCHPDF{n:04d}", now=CLOSED, channels=(Channel.PRINT,)))
    return PrintEngines().engine(engine).render(layout, comp).content


def _intent(pdf: pikepdf.Pdf | pikepdf.Object) -> tuple[str, str]:
    """(subtype, sha256 of the ICC profile) of the first output intent."""
    intent = pdf.OutputIntents[0] if isinstance(pdf, pikepdf.Object) else pdf.Root.OutputIntents[0]
    return str(intent.S), hashlib.sha256(intent.DestOutputProfile.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def batch():
    """Two Typst pieces around one WeasyPrint piece, imposed on the default profile."""
    sources = [_print_pdf("typst", 0), _print_pdf("weasyprint", 1), _print_pdf("typst", 2)]
    imposed = impose([MailPiece(f"P{n}", pdf) for n, pdf in enumerate(sources)],
                     builtin_profiles()["default"])
    pieces = [{"piece_id": p.piece_id, "document_id": f"D{n}", "first_page": p.first_page,
               "pages": p.pages, "sheets": p.sheets, "inserts": [], "postal_code": "0150",
               "country": "NO", "envelope": p.envelope, "sides": "simplex", "blank_pages": []}
              for n, p in enumerate(imposed.pieces)]
    return imposed.pdf, pieces, sources, finish_print_pdf(imposed.pdf, pieces, sources, FACTS)


def test_the_batch_is_pdf_2_0_and_qpdf_finds_no_syntax_error(batch):
    imposed, _, _, pdf = batch
    assert imposed.startswith(b"%PDF-1.3")  # what pikepdf.new() writes: no DPart there
    assert pdf.startswith(b"%PDF-2.0\n")
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert doc.pdf_version == "2.0"
        assert doc.check_pdf_syntax() == []
        assert doc.Root.DPartRoot.Type == pikepdf.Name.DPartRoot
    assert [p["document_id"] for p in read_document_parts(pdf)] == ["D0", "D1", "D2"]


def test_the_documents_output_intents_are_carried(batch):
    _, pieces, sources, pdf = batch
    typst, weasy = (pikepdf.open(io.BytesIO(sources[n])) for n in (0, 1))
    assert _intent(typst)[0] == _intent(weasy)[0] == "/GTS_PDFA1"
    assert _intent(typst)[1] != _intent(weasy)[1]  # both sRGB, two different ICC profiles
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert len(doc.Root.OutputIntents) == 1
        assert _intent(doc) == _intent(typst)  # two of three pieces: the document's
        assert int(doc.Root.OutputIntents[0].DestOutputProfile.N) == 3  # RGB
        for piece in pieces:
            pages = range(piece["first_page"] - 1, piece["first_page"] - 1 + piece["pages"])
            for index in pages:
                page = doc.pages[index].obj
                if piece["document_id"] == "D1":  # the WeasyPrint piece states its own
                    assert _intent(page) == _intent(weasy)
                else:
                    assert "/OutputIntents" not in page
        own = {doc.pages[i].obj.OutputIntents.objgen for i in range(
            pieces[1]["first_page"] - 1, pieces[1]["first_page"] - 1 + pieces[1]["pages"])}
        assert len(own) == 1  # the piece's pages share one intent array


def test_xmp_names_the_batch_and_is_dated_by_its_close(batch):
    with pikepdf.open(io.BytesIO(batch[3])) as doc:
        meta = doc.open_metadata()
        assert meta["dc:title"] == ("Print batch 01BATCHM7 (nordkort, print shop acme-print, "
                                    "profile default)")
        assert meta["pdf:Producer"].startswith("Kanal")
        assert meta["xmp:CreateDate"] == meta["xmp:ModifyDate"] == "2026-11-30T14:05:07+00:00"
        assert meta["xmpMM:DocumentID"].startswith("uuid:")
        assert "pdfaid:part" not in meta  # the batch is no PDF/A: it does not say so
        assert str(doc.docinfo.CreationDate) == "D:20261130140507Z"
        assert set(doc.docinfo.keys()) == {"/CreationDate", "/ModDate"}  # PDF 2.0


def test_the_same_batch_gives_the_same_bytes(batch):
    """A batch left in `closing` is rebuilt and put again: identical bytes, no conflict."""
    imposed, pieces, sources, pdf = batch
    assert finish_print_pdf(imposed, pieces, sources, FACTS) == pdf
    other = finish_print_pdf(imposed, pieces, sources, BatchFacts(
        "01BATCHM8", FACTS.tenant, FACTS.printshop, FACTS.profile, FACTS.closed_at))
    with pikepdf.open(io.BytesIO(pdf)) as one, pikepdf.open(io.BytesIO(other)) as two:
        assert one.open_metadata()["xmpMM:DocumentID"] != two.open_metadata()[
            "xmpMM:DocumentID"]
