"""Imposed print PDFs, read back by an independent reader (tests/omr_reader.py).

Pieces are real WeasyPrint PDFs (1-6 pages, an address block in the C5 window), imposed
with both builtin profiles; every sheet front is rasterised and its marks read the way an
inserter's scanner would, then checked against the piece the sheet belongs to.
"""

from __future__ import annotations

import dataclasses
import io
import sys
import time
from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest
import weasyprint

from server.printing.marks import ImposedBatch, MailPiece, impose
from server.printing.profiles import PrintProfile, Rect, builtin_profiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import omr_reader  # noqa: E402

PROFILES = builtin_profiles()
FIRST_SEQUENCE = 6  # so the 3-bit counter wraps on the batch's third sheet
PAGE_COUNTS = [1, 2, 3, 4, 5, 1, 6, 2, 3, 1, 1, 5, 4, 2, 3, 1, 2, 1, 3, 4, 1, 2, 5, 1, 3, 2,
               1, 4, 2, 1, 3, 1, 2, 6, 1, 2]  # fmt: skip
FEEDER_SETS = [frozenset(), frozenset({1}), frozenset({2, 3}), frozenset({1, 2, 3}),
               frozenset({3})]  # fmt: skip

HTML = """<!doctype html><html><head><style>
@page {{ size: A4; margin: 25mm 25mm 20mm 25mm; }}
body {{ font-family: sans-serif; font-size: 10pt; margin: 0; }}
.address {{ position: absolute; left: -5mm; top: 24mm; width: 90mm; font-size: 11pt; }}
.first {{ padding-top: 70mm; }}
section {{ break-after: page; }} section:last-child {{ break-after: auto; }}
</style></head><body>{pages}</body></html>"""


def _piece_pdf(piece_id: str, pages: int) -> bytes:
    # The address block sits in the C5 window's address area (18-117 mm x 47-76 mm, page
    # margin 25 mm). Text runs between the page margins, clear of both OMR columns.
    sections = []
    for n in range(1, pages + 1):
        address = (
            f'<div class="address">Kari Nordmann {piece_id}<br>Storgata 1<br>0155 OSLO</div>'
            if n == 1
            else ""
        )
        body = "".join(f"<p>Line {i} of the letter text for {piece_id}.</p>" for i in range(12))
        sections.append(
            f'<section class="{"first" if n == 1 else ""}">{address}'
            f"<h1>{piece_id} page {n}</h1>{body}</section>"
        )
    return weasyprint.HTML(string=HTML.format(pages="".join(sections))).write_pdf()


@pytest.fixture(scope="module")
def pieces() -> list[MailPiece]:
    return [
        MailPiece(f"P{i:03d}", _piece_pdf(f"P{i:03d}", n), FEEDER_SETS[i % len(FEEDER_SETS)])
        for i, n in enumerate(PAGE_COUNTS)
    ]


@pytest.fixture(scope="module", params=sorted(PROFILES), ids=str)
def profile(request: pytest.FixtureRequest) -> PrintProfile:
    return PROFILES[request.param]


@pytest.fixture(scope="module")
def batch(pieces: list[MailPiece], profile: PrintProfile) -> ImposedBatch:
    return impose(pieces, profile, first_sequence=FIRST_SEQUENCE)


@pytest.fixture(scope="module")
def reads(batch: ImposedBatch, profile: PrintProfile) -> list[omr_reader.SheetRead]:
    return omr_reader.read_batch(batch.pdf, profile)


def _sheets(pages: int, profile: PrintProfile) -> int:
    return (pages + 1) // 2 if profile.duplex else pages


# --- layout of the print PDF --------------------------------------------------------------


def test_pieces_are_contiguous_with_blank_backs_in_duplex(
    batch: ImposedBatch, profile: PrintProfile
) -> None:
    page = 1
    sequence = FIRST_SEQUENCE
    for counted, placed in zip(PAGE_COUNTS, batch.pieces, strict=True):
        blank = profile.duplex and counted % 2 == 1
        assert placed.first_page == page
        assert placed.pages == counted + blank
        assert placed.blank_back == blank
        assert placed.sheets == _sheets(counted, profile)
        assert placed.sequence_start == sequence
        assert placed.envelope == ("C5" if placed.sheets <= 5 else "C4")
        page += placed.pages
        sequence += placed.sheets
    assert batch.total_pages == page - 1
    assert batch.total_sheets == sequence - FIRST_SEQUENCE
    assert batch.last_sequence == sequence - 1 and batch.next_sequence == sequence
    with pikepdf.open(io.BytesIO(batch.pdf)) as pdf:
        assert len(pdf.pages) == batch.total_pages
        if profile.duplex:
            assert len(pdf.pages) % 2 == 0


def test_every_page_holds_the_right_piece_page(batch: ImposedBatch) -> None:
    doc = pdfium.PdfDocument(batch.pdf)
    for counted, placed in zip(PAGE_COUNTS, batch.pieces, strict=True):
        for n in range(placed.pages):
            text = doc[placed.first_page - 1 + n].get_textpage().get_text_range()
            if n < counted:
                assert f"{placed.piece_id} page {n + 1}" in text
            else:
                assert text.strip() == ""  # the blank back


def test_content_streams_stay_balanced(batch: ImposedBatch) -> None:
    """The piece's own content is wrapped in q ... Q before the overlay (design: PDF)."""
    with pikepdf.open(io.BytesIO(batch.pdf)) as pdf:
        for page in list(pdf.pages)[:6]:
            ops = [str(op) for _, op in pikepdf.parse_content_stream(page)]
            depth = 0
            for op in ops:
                depth += {"q": 1, "Q": -1}.get(op, 0)
                assert depth >= 0
            assert depth == 0
            contents = page.obj.Contents
            if isinstance(contents, pikepdf.Array):
                assert contents[0].read_bytes() == b"q\n"
                assert contents[-1].read_bytes().startswith(b"Q\n")


def test_marks_are_artifacts(batch: ImposedBatch) -> None:
    """Every mark is drawn inside one /Artifact marked-content sequence (ISO 14289-1 §7.1):
    a tagged piece keeps its marks out of the reading order."""
    with pikepdf.open(io.BytesIO(batch.pdf)) as pdf:
        marked = [page for page in pdf.pages
                  if isinstance(page.obj.Contents, pikepdf.Array)]
        assert marked
        for page in marked[:6]:
            overlay = pikepdf.parse_content_stream(page.obj.Contents[-1])
            ops = [str(op) for _, op in overlay]
            assert ops[:3] == ["Q", "q", "BDC"] and ops[-2:] == ["EMC", "Q"]
            assert overlay[2].operands[0] == pikepdf.Name.Artifact
            assert ops.count("BDC") == 1 and ops.count("EMC") == 1
            assert "re" in ops  # the bars themselves are inside it


# --- the marks, read back -----------------------------------------------------------------


def test_every_sheet_front_is_read(
    reads: list[omr_reader.SheetRead], batch: ImposedBatch, profile: PrintProfile
) -> None:
    assert len(reads) == batch.total_sheets
    step = 2 if profile.duplex else 1
    assert [r.page_index for r in reads] == list(range(0, batch.total_pages, step))


def test_marks_decode_to_each_piece(
    reads: list[omr_reader.SheetRead],
    batch: ImposedBatch,
    pieces: list[MailPiece],
    profile: PrintProfile,
) -> None:
    spec = profile.omr
    modulo = 2**spec.seq_bits
    sheet_reads = iter(reads)
    sequence = FIRST_SEQUENCE
    wrapped = False
    for piece, placed in zip(pieces, batch.pieces, strict=True):
        for n in range(1, placed.sheets + 1):
            read = next(sheet_reads)
            where = f"{piece.piece_id} sheet {n}/{placed.sheets}: {sorted(read.marks)}"
            decoded = omr_reader.decode(profile, read.marks)
            assert decoded.framed, where
            assert decoded.parity_ok, where
            assert not read.stray_ink, where
            assert decoded.end_of_collation == (n == placed.sheets), where
            assert decoded.feeders == (piece.feeders if n == placed.sheets else set()), where
            assert decoded.sequence == sequence % modulo, where
            wrapped |= sequence % modulo == 0 and sequence > FIRST_SEQUENCE
            if profile.datamatrix is not None:
                assert read.datamatrix is not None, where
                payload = omr_reader.parse_datamatrix(read.datamatrix)
                assert payload == {
                    "version": "K1",
                    "piece_id": piece.piece_id,
                    "sheet": n,
                    "sheets": placed.sheets,
                    "feeders": piece.feeders,
                    "sequence": sequence,
                }, where
            else:
                assert read.datamatrix is None
            sequence += 1
    assert wrapped
    assert next(sheet_reads, None) is None


def test_backs_carry_no_marks(batch: ImposedBatch, profile: PrintProfile) -> None:
    if not profile.duplex:  # simplex: every page is a sheet of its own, there are no backs
        assert batch.total_pages == batch.total_sheets
        return
    doc = pdfium.PdfDocument(batch.pdf)
    for index in range(1, batch.total_pages, 2):
        dark = omr_reader.render(doc, index)
        read = omr_reader.read_sheet(dark, profile, index)
        assert read.marks == frozenset() and not read.stray_ink
        assert read.datamatrix is None


def test_marks_stay_out_of_the_address_window(
    batch: ImposedBatch, pieces: list[MailPiece], profile: PrintProfile
) -> None:
    """Away from the code and the DataMatrix, an imposed front looks exactly like the
    piece's own page; in particular the address shows through every window unchanged."""
    spec = profile.omr
    width_mm, _ = profile.paper_size_mm
    zones = [spec.code_area(width_mm).grown(spec.clear_zone_mm)]
    if profile.datamatrix is not None:
        zones.append(profile.datamatrix.area)
    doc = pdfium.PdfDocument(batch.pdf)
    for piece, placed in list(zip(pieces, batch.pieces, strict=True))[:4]:
        own = omr_reader.render(piece.pdf, 0)
        imposed = omr_reader.render(doc, placed.first_page - 1)
        assert own.shape == imposed.shape
        window = profile.envelopes["C5"].visible_area
        assert window is not None
        w = _pixels(window)
        assert own[w].max() > 0.5, "the test piece has an address in the window"
        assert np.abs(own[w] - imposed[w]).max() < 0.02
        differs = np.abs(own - imposed) > 0.1
        for zone in zones:
            differs[_pixels(zone.grown(0.5))] = False
        assert not differs.any(), f"{piece.piece_id}: overlay outside its zones"
        for zone in zones:
            assert own[_pixels(zone)].max() < 0.1, "the test piece leaves the zones blank"


def _pixels(r: Rect) -> tuple[slice, slice]:
    px = omr_reader.px
    # Clamp at the paper's edge: a negative start would count from the other end.
    return (slice(max(0, round(px(r.y))), round(px(r.bottom))),
            slice(max(0, round(px(r.x))), round(px(r.right))))


# --- batches, odd inputs ------------------------------------------------------------------


def test_sequence_continues_into_the_next_batch(pieces: list[MailPiece]) -> None:
    profile = PROFILES["default"]
    first = impose(pieces[:3], profile, first_sequence=0)
    second = impose(pieces[3:5], profile, first_sequence=first.next_sequence)
    assert second.pieces[0].sequence_start == first.last_sequence + 1
    reads = omr_reader.read_batch(first.pdf, profile) + omr_reader.read_batch(second.pdf, profile)
    values = [omr_reader.decode(profile, r.marks).sequence for r in reads]
    assert values == [s % 8 for s in range(len(reads))]


def test_page_with_offset_mediabox_is_marked_in_place(pieces: list[MailPiece]) -> None:
    with pikepdf.open(io.BytesIO(pieces[0].pdf)) as pdf:
        for page in pdf.pages:
            x0, y0, x1, y1 = (float(v) for v in page.mediabox)
            page.obj.MediaBox = pikepdf.Array([x0 + 40, y0 - 30, x1 + 40, y1 - 30])
            for box in ("/TrimBox", "/BleedBox"):
                if box in page.obj:
                    del page.obj[box]
        buffer = io.BytesIO()
        pdf.save(buffer)
    profile = PROFILES["pb-di-negative"]
    batch = impose([MailPiece("SHIFTED", buffer.getvalue(), frozenset({4}))], profile)
    (read,) = omr_reader.read_batch(batch.pdf, profile)
    decoded = omr_reader.decode(profile, read.marks)
    assert decoded.framed and decoded.parity_ok and decoded.end_of_collation
    assert decoded.feeders == {4}
    assert read.datamatrix == "K1|SHIFTED|1/1|4|0"


def _blank_pdf(pages: int, size: tuple[float, float] = (595.276, 841.89)) -> bytes:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=size)
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


def test_overflow_envelope_and_too_thick_pieces() -> None:
    profile = PROFILES["default"]
    batch = impose(
        [MailPiece("A", _blank_pdf(5)), MailPiece("B", _blank_pdf(6)),
         MailPiece("C", _blank_pdf(2), envelope="E65")],
        profile,
    )  # fmt: skip
    assert [p.envelope for p in batch.pieces] == ["C5", "C4", "E65"]
    with pytest.raises(ValueError, match=r"pieces\[0\] \(THICK\): a piece of 51 sheets"):
        impose([MailPiece("THICK", _blank_pdf(51))], profile)


@pytest.mark.parametrize(
    ("piece", "message"),
    [
        (MailPiece("LETTER", _blank_pdf(1, (612, 792))), r"LETTER\) page 1: page is 215\.9"),
        (MailPiece("BROKEN", b"%PDF-1.7 nonsense"), r"BROKEN\): not a readable PDF"),
        (MailPiece("FEED", _blank_pdf(1), frozenset({5})), r"feeders: feeder 5"),
        (MailPiece("bad id", _blank_pdf(1)), r"piece_id"),
    ],
)
def test_impose_rejects(piece: MailPiece, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        impose([piece], PROFILES["pb-di-negative"])


def test_impose_rejects_empty_batches_and_negative_sequences() -> None:
    with pytest.raises(ValueError, match="at least one"):
        impose([], PROFILES["default"])
    with pytest.raises(ValueError, match="first_sequence"):
        impose([MailPiece("A", _blank_pdf(1))], PROFILES["default"], first_sequence=-1)


def test_many_pieces_merge_quickly(pieces: list[MailPiece]) -> None:
    many = [MailPiece(f"M{i:04d}", pieces[i % 4].pdf, pieces[i % 4].feeders) for i in range(600)]
    for profile in PROFILES.values():
        started = time.perf_counter()
        batch = impose(many, profile)
        elapsed = time.perf_counter() - started
        assert batch.total_pages == sum(p.pages for p in batch.pieces)
        assert elapsed < 5, f"{profile.id}: {elapsed:.2f} s for 600 pieces"


def test_clear_zone_is_painted_white_over_intruding_content() -> None:
    """A layout that prints into the code's zone would make false bars; the profile's
    white clear zone hides it, and without it the reader sees the stray ink."""
    html = (
        "<style>@page { size: A4; margin: 0 }</style>"
        '<div style="position: absolute; left: 6mm; top: 110mm; font-size: 14pt">'
        "IIIIIIII<br>========<br>IIIIIIII</div>"
    )
    piece = MailPiece("INTRUDER", weasyprint.HTML(string=html).write_pdf())
    painted = PROFILES["default"]
    unpainted = dataclasses.replace(
        painted, omr=dataclasses.replace(painted.omr, paint_clear_zone=False)
    )
    (read,) = omr_reader.read_batch(impose([piece], painted).pdf, painted)
    assert not read.stray_ink
    assert omr_reader.decode(painted, read.marks).parity_ok
    (read,) = omr_reader.read_batch(impose([piece], unpainted).pdf, unpainted)
    assert read.stray_ink
