"""Imposition: mail pieces' own PDFs turn into one print-ready PDF with inserter marks.

Each mail piece arrives as the PDF its renderer made (A4 pages, one piece per PDF). The
print PDF is the pieces' pages back to back, in order, with what the print shop's
inserter needs drawn onto the front of every sheet:

* the sides of each piece's sheets come from `server.printing.sheets.plan_sheets`: in
  duplex, blank sides are inserted where the piece's `SheetRules` ask (simplex sheets, a
  page that must start on a front such as a tear-off giro slip, a blank back) and after a
  piece that ends on a front, so the next piece starts on a new sheet (a sheet never
  carries two customers' pages);
* the OMR bars the profile's `OmrSpec` asks for (`server.printing.omr.sheet_code`), as
  vector filled rectangles on the sheet's front (duplex: the piece's odd pages; simplex:
  every page), on a white clear zone when the profile says so;
* the DataMatrix (`server.printing.omr.datamatrix_payload`) when the profile has one, as
  vector modules taken from zxing-cpp's bit matrix, so it prints sharp at any resolution.

The sheet sequence number runs across the whole batch, continuing from
`first_sequence`, so the inserter also notices a sheet lost *between* two pieces; the
caller carries `ImposedBatch.last_sequence + 1` into the next batch.

The overlay is marked content of the `/Artifact` kind, so the accessible pages a tagged
PDF/UA piece brings (Typst's, WeasyPrint's) keep every mark out of their reading order.

Every existing page content is wrapped in ``q ... Q`` before the overlay is appended:
WeasyPrint leaves a transform (a flip of the y axis) active at the end of its content
stream, and marks drawn under it would land mirrored. The wrap costs one shared
three-byte stream; the page's own streams are not decoded or rewritten.

All pieces go into one `pikepdf.Pdf`: each piece's PDF is opened once and its pages are
appended (qpdf copies shared fonts and images once per piece). The source PDFs stay open
until the batch is written, because qpdf reads copied stream data lazily at write time.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import pikepdf
import zxingcpp

from server.printing.omr import datamatrix_payload, sheet_code
from server.printing.profiles import DataMatrixSpec, OmrSpec, PrintProfile, Rect
from server.printing.sheets import BLANK, SheetRules, plan_sheets

PT_PER_MM = 72 / 25.4
_DARK_RUN = re.compile(rb"\x00+")  # zxing-cpp's bit matrix: 0 = dark module, 255 = light
_SIZE_TOLERANCE_PT = 1.0  # renderers round page sizes differently (595 vs 595.276)
# The marks are the printer's, not the document's: a page artifact (ISO 32000-1 §14.8.2.2,
# ISO 14289-1 §7.1), so a tagged page stays tagged and readers skip them.
ARTIFACT_BEGIN = b"/Artifact <</Type /Page>> BDC\n"


@dataclass(frozen=True, slots=True)
class MailPiece:
    """One mail piece to print: its own pages, and the inserts that go with it."""

    piece_id: str
    pdf: bytes
    feeders: frozenset[int] = field(default_factory=frozenset)
    envelope: str | None = None  # requested envelope id; None = the profile's default
    sheet_rules: SheetRules = field(default_factory=SheetRules)  # simplex, fronts, blank backs


@dataclass(frozen=True, slots=True)
class ImposedPiece:
    """Where a piece ended up in the print PDF."""

    piece_id: str
    first_page: int  # 1-based page number in the print PDF
    pages: int  # pages in the print PDF, including inserted blank sides
    sheets: int
    sequence_start: int  # sequence number of the piece's first sheet
    envelope: str  # the envelope it fits, after the profile's overflow rule
    blank_pages: tuple[int, ...] = ()  # 1-based print PDF pages inserted blank (duplex)
    duplex: bool = False  # printed on both sides of its sheets (some may be left blank)

    @property
    def blank_back(self) -> bool:
        """The piece's last side is an inserted blank (it ended on a front)."""
        return self.first_page + self.pages - 1 in self.blank_pages


@dataclass(frozen=True, slots=True)
class ImposedBatch:
    pdf: bytes
    pieces: tuple[ImposedPiece, ...]
    total_pages: int
    total_sheets: int
    last_sequence: int  # sequence number of the batch's last sheet

    @property
    def next_sequence(self) -> int:
        """Where the next batch for the same inserter continues counting."""
        return self.last_sequence + 1


def impose(
    pieces: Sequence[MailPiece], profile: PrintProfile, *, first_sequence: int = 0
) -> ImposedBatch:
    """Merge the pieces into one print PDF and mark every sheet for the inserter."""
    if not pieces:
        raise ValueError("pieces: a print batch needs at least one mail piece")
    if first_sequence < 0:
        raise ValueError(f"first_sequence: {first_sequence} must not be negative")
    paper_w_pt, paper_h_pt = (v * PT_PER_MM for v in profile.paper_size_mm)
    out = pikepdf.new()
    save_state = out.make_stream(b"q\n")
    bars_cache: dict[tuple[str, ...], bytes] = {}
    imposed: list[ImposedPiece] = []
    sequence = first_sequence

    with ExitStack() as sources:
        for index, piece in enumerate(pieces):
            where = f"pieces[{index}] ({piece.piece_id})"
            try:
                src = sources.enter_context(pikepdf.open(io.BytesIO(piece.pdf)))
            except pikepdf.PdfError as exc:
                raise ValueError(f"{where}: not a readable PDF: {exc}") from None
            page_count = len(src.pages)
            if page_count == 0:
                raise ValueError(f"{where}: the PDF has no pages")
            for number, page in enumerate(src.pages, start=1):
                _check_page(page, paper_w_pt, paper_h_pt, f"{where} page {number}")

            plan = plan_sheets(page_count, profile.duplex, piece.sheet_rules)
            first_index = len(out.pages)
            _place_sides(out, src, plan.sides, (paper_w_pt, paper_h_pt))
            sheets = plan.sheets
            try:
                envelope = profile.envelope_for(sheets, piece.envelope)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None

            for sheet, side in enumerate(plan.front_sides, start=1):
                code = sheet_code(
                    profile.omr,
                    sheet_in_piece=sheet,
                    sheets_in_piece=sheets,
                    sequence=sequence + sheet - 1,
                    feeders=piece.feeders,
                )
                bars = bars_cache.get(code)
                if bars is None:
                    bars = bars_cache[code] = _bars_ops(profile.omr, code, paper_w_pt, paper_h_pt)
                page = out.pages[first_index + side]
                overlay = [b"Q\nq\n", ARTIFACT_BEGIN,
                           _origin_ops(page, profile, paper_w_pt, paper_h_pt), bars]
                if profile.datamatrix is not None:
                    payload = datamatrix_payload(
                        piece.piece_id, sheet, sheets, piece.feeders, sequence + sheet - 1
                    )
                    overlay.append(_datamatrix_ops(profile.datamatrix, payload, paper_h_pt, where))
                overlay.append(b"EMC\nQ\n")
                _append_overlay(out, page, save_state, b"".join(overlay))

            imposed.append(
                ImposedPiece(
                    piece_id=piece.piece_id,
                    first_page=first_index + 1,
                    pages=len(plan.sides),
                    sheets=sheets,
                    sequence_start=sequence,
                    envelope=envelope.id,
                    blank_pages=tuple(first_index + 1 + i for i in plan.blank_sides),
                    duplex=plan.duplex,
                )
            )
            sequence += sheets

        buffer = io.BytesIO()
        out.save(buffer, deterministic_id=True)

    total_sheets = sequence - first_sequence
    return ImposedBatch(
        pdf=buffer.getvalue(),
        pieces=tuple(imposed),
        total_pages=sum(p.pages for p in imposed),
        total_sheets=total_sheets,
        last_sequence=sequence - 1,
    )


def _place_sides(out: pikepdf.Pdf, src: pikepdf.Pdf, sides: Sequence[int | None],
                 size: tuple[float, float]) -> None:
    """Append a piece's pages to the print PDF in plan order, blank sides in between;
    consecutive pages go in one `extend` (qpdf copies their shared resources once)."""
    run: list[pikepdf.Page] = []
    for side in sides:
        if side is BLANK:
            if run:
                out.pages.extend(run)
                run = []
            out.add_blank_page(page_size=size)
        else:
            run.append(src.pages[side - 1])
    if run:
        out.pages.extend(run)


def _check_page(page: pikepdf.Page, width_pt: float, height_pt: float, where: str) -> None:
    """Marks are placed by paper geometry: refuse pages the geometry does not describe."""
    box = page.mediabox
    w, h = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
    if abs(w - width_pt) > _SIZE_TOLERANCE_PT or abs(h - height_pt) > _SIZE_TOLERANCE_PT:
        raise ValueError(
            f"{where}: page is {w / PT_PER_MM:.1f} x {h / PT_PER_MM:.1f} mm, "
            f"the profile prints on {width_pt / PT_PER_MM:.0f} x {height_pt / PT_PER_MM:.0f} mm"
        )
    if int(page.obj.get("/Rotate", 0)) % 360 != 0:
        raise ValueError(f"{where}: rotated pages (/Rotate) cannot be marked")
    if float(page.obj.get("/UserUnit", 1)) != 1:
        raise ValueError(f"{where}: /UserUnit pages cannot be marked")


def _origin_ops(
    page: pikepdf.Page, profile: PrintProfile, paper_w_pt: float, paper_h_pt: float
) -> bytes:
    """A `cm` that puts the overlay's origin where the paper geometry expects it.

    The overlay is drawn as if the page were exactly the profile's paper with its
    lower-left corner at (0, 0). Real pages start at their MediaBox's lower-left corner
    and may be a fraction of a point off size; the marks are anchored to the top edge
    (the lead edge the reader measures from) and to the OMR code's side edge.
    """
    x0, y0, x1, y1 = (float(v) for v in page.mediabox)
    dx = x0 if profile.omr.edge == "left" else x1 - paper_w_pt
    dy = y1 - paper_h_pt
    if abs(dx) < 1e-6 and abs(dy) < 1e-6:
        return b""
    return f"1 0 0 1 {_n(dx)} {_n(dy)} cm\n".encode()


def _append_overlay(
    pdf: pikepdf.Pdf, page: pikepdf.Page, save_state: pikepdf.Stream, overlay: bytes
) -> None:
    """Contents become [q, <the page's own streams>, Q + overlay]."""
    contents = page.obj.get("/Contents")
    if contents is None:
        own: list[pikepdf.Object] = []
    elif isinstance(contents, pikepdf.Array):
        own = list(contents)
    else:
        own = [contents]
    page.obj.Contents = pikepdf.Array([save_state, *own, pdf.make_stream(overlay)])


def _bars_ops(spec: OmrSpec, code: tuple[str, ...], paper_w_pt: float, paper_h_pt: float) -> bytes:
    """Content-stream operators for one sheet's OMR bars (and their white clear zone)."""
    paper_w_mm = paper_w_pt / PT_PER_MM
    ops: list[str] = []
    if spec.paint_clear_zone:
        zone = spec.code_area(paper_w_mm).grown(spec.clear_zone_mm)
        ops += ["1 g", _rect(zone, paper_h_pt), "f"]
    area = spec.code_area(paper_w_mm)
    ops.append("0 g")
    printed = set(code)
    for position, name in enumerate(spec.marks):
        if name in printed:
            centre = spec.first_mark_y_mm + position * spec.pitch_mm
            bar = Rect(area.x, centre - spec.mark_thickness_mm / 2, area.w, spec.mark_thickness_mm)
            ops.append(_rect(bar, paper_h_pt))
    ops.append("f")
    return ("\n".join(ops) + "\n").encode()


def _datamatrix_ops(spec: DataMatrixSpec, payload: str, paper_h_pt: float, where: str) -> bytes:
    """Content-stream operators for one DataMatrix: one path of all dark-module runs."""
    # Square symbols only: the camera's read window is square, and a square symbol
    # reads the same whichever way the sheet turns in the folder.
    symbol = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.DataMatrix, force_square=True)
    matrix = memoryview(symbol.to_image(scale=1, add_quiet_zones=False))
    rows, cols = matrix.shape
    module = spec.module_mm
    if max(rows, cols) * module > spec.max_size_mm + 1e-9:
        raise ValueError(
            f"{where}: DataMatrix of {cols}x{rows} modules ({cols * module:.1f} mm) does not "
            f"fit the profile's {spec.max_size_mm} mm box; shorten the piece id"
        )
    quiet = spec.quiet_zone_modules * module
    zone = Rect(spec.x_mm - quiet, spec.y_mm - quiet, cols * module + 2 * quiet,
                rows * module + 2 * quiet)  # fmt: skip
    # Modules are drawn in module units: one `cm` maps (column, row) to the page, with
    # rows growing downwards, and each horizontal run of dark modules is one `re`.
    scale = module * PT_PER_MM
    ops = [
        "1 g", _rect(zone, paper_h_pt), "f", "q 0 g",
        f"{_n(scale)} 0 0 {_n(-scale)} {_n(spec.x_mm * PT_PER_MM)} "
        f"{_n(paper_h_pt - spec.y_mm * PT_PER_MM)} cm",
    ]  # fmt: skip
    cells = matrix.tobytes()
    for r in range(rows):
        row = cells[r * cols : (r + 1) * cols]
        ops.extend(f"{m.start()} {r} {m.end() - m.start()} 1 re" for m in _DARK_RUN.finditer(row))
    ops.append("f Q")
    return ("\n".join(ops) + "\n").encode()


def _rect(r: Rect, paper_h_pt: float) -> str:
    """A `re` operator for a rectangle in top-left mm, in bottom-left PDF points."""
    return (
        f"{_n(r.x * PT_PER_MM)} {_n(paper_h_pt - r.bottom * PT_PER_MM)} "
        f"{_n(r.w * PT_PER_MM)} {_n(r.h * PT_PER_MM)} re"
    )


def _n(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
