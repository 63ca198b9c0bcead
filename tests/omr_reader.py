"""A test-only inserter: a print PDF turns back into the marks a scanner would read.

Independent of the code under test on purpose. It knows the profile's *definition* (the
dataclasses in `server.printing.profiles`) and the trade rules as the design notes state
them, and nothing of `server.printing.omr` or `server.printing.marks`: it rasterises each
sheet's front with pdfium, looks for ink where the profile says each bar position is, and
decodes the DataMatrix with zxing-cpp. If the imposer put a bar in the wrong place, left
WeasyPrint's flipped transform active, or miscounted sheets, this reader sees it the way
an inserter would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
import zxingcpp

from server.printing.profiles import PrintProfile

DPI = 200
INK = 0.5  # mean darkness above which a bar position counts as marked
STRAY = 0.25  # darkness above which a pixel row in the clear zone counts as stray ink


@dataclass(frozen=True)
class SheetRead:
    """What the reader saw on one sheet's front."""

    page_index: int  # 0-based page of the print PDF
    marks: frozenset[str]  # positions with a bar
    stray_ink: bool  # ink in the code's clear zone outside the bar positions
    datamatrix: str | None  # decoded text, None when the profile has none or none was found


@dataclass(frozen=True)
class Decoded:
    """One sheet's code interpreted by the trade rules."""

    end_of_collation: bool
    feeders: frozenset[int]
    sequence: int  # value of the sequence bits
    parity_ok: bool
    framed: bool  # start and safety both present


def px(mm: float, dpi: int = DPI) -> float:
    return mm / 25.4 * dpi


def render(pdf: bytes | pdfium.PdfDocument, index: int, dpi: int = DPI) -> np.ndarray:
    """Page `index` as darkness 0 (paper) .. 1 (full ink), shape (rows, cols)."""
    doc = pdf if isinstance(pdf, pdfium.PdfDocument) else pdfium.PdfDocument(pdf)
    gray = doc[index].render(scale=dpi / 72, grayscale=True).to_numpy()
    if gray.ndim == 3:
        gray = gray[..., 0]
    return 1.0 - gray.astype(np.float32) / 255.0


def front_indices(page_count: int, duplex: bool) -> list[int]:
    """Fronts of the sheets: every page in simplex, every other page in duplex."""
    return list(range(0, page_count, 2 if duplex else 1))


def read_sheet(dark: np.ndarray, profile: PrintProfile, page_index: int = 0) -> SheetRead:
    """Read the OMR column (and DataMatrix) off one rendered sheet front."""
    spec = profile.omr
    width_mm = profile.paper_size_mm[0]
    # Bars start x_mm from their edge and run mark_length_mm towards the middle.
    left_mm = spec.x_mm if spec.edge == "left" else width_mm - spec.x_mm - spec.mark_length_mm
    x0, x1 = round(px(left_mm + 1)), round(px(left_mm + spec.mark_length_mm - 1))
    half = px(spec.mark_thickness_mm) / 2

    marks: set[str] = set()
    bar_rows: set[int] = set()
    for position, name in enumerate(spec.marks):
        centre = px(spec.first_mark_y_mm + position * spec.pitch_mm)
        rows = range(int(centre - half - 1), int(centre + half + 2))
        bar_rows.update(rows)
        row_darkness = dark[rows.start : rows.stop, x0:x1].mean(axis=1)
        if row_darkness.max() >= INK:
            marks.add(name)

    # Clear zone: the whole code area plus clear_zone_mm around it must be free of ink,
    # except on the rows of the bar positions themselves.
    cz = spec.clear_zone_mm
    top = spec.first_mark_y_mm - spec.mark_thickness_mm / 2 - cz
    bottom = spec.first_mark_y_mm + (len(spec.marks) - 1) * spec.pitch_mm
    bottom += spec.mark_thickness_mm / 2 + cz
    zone = dark[
        round(px(top)) : round(px(bottom)),
        round(px(left_mm - cz)) : round(px(left_mm + spec.mark_length_mm + cz)),
    ]
    zone_top = round(px(top))
    stray = False
    for offset, row in enumerate(zone):
        if zone_top + offset in bar_rows:
            # On a bar row, only the margins beside the bar must be blank.
            margin = round(px(cz)) - 2
            row = np.concatenate([row[:margin], row[-margin:]])
        if row.max() >= STRAY:
            stray = True
            break

    text = None
    if profile.datamatrix is not None:
        text = read_datamatrix(dark, profile)
    return SheetRead(page_index, frozenset(marks), stray, text)


def read_datamatrix(dark: np.ndarray, profile: PrintProfile) -> str | None:
    dm = profile.datamatrix
    assert dm is not None
    quiet = dm.quiet_zone_modules * dm.module_mm
    y0, x0 = round(px(dm.y_mm - quiet)), round(px(dm.x_mm - quiet))
    y1, x1 = (
        round(px(dm.y_mm + dm.max_size_mm + quiet)),
        round(px(dm.x_mm + dm.max_size_mm + quiet)),
    )
    crop = np.ascontiguousarray(((1.0 - dark[y0:y1, x0:x1]) * 255).astype(np.uint8))
    found = zxingcpp.read_barcodes(crop, formats=zxingcpp.BarcodeFormat.DataMatrix)
    return found[0].text if found else None


def read_batch(pdf: bytes, profile: PrintProfile, dpi: int = DPI) -> list[SheetRead]:
    """Read every sheet front of a print PDF, in order."""
    doc = pdfium.PdfDocument(pdf)
    try:
        return [
            read_sheet(render(doc, i, dpi), profile, i)
            for i in front_indices(len(doc), profile.duplex)
        ]
    finally:
        doc.close()


def decode(profile: PrintProfile, marks: frozenset[str]) -> Decoded:
    """Interpret a sheet's marks: EOC (with the profile's logic), feeders, sequence, parity."""
    spec = profile.omr
    eoc_bar = "eoc" in marks
    feeders = frozenset(int(m[4:]) for m in marks if m.startswith("feed"))
    sequence = sum(int(m[3:]) for m in marks if m.startswith("seq"))
    if "parity" in spec.marks:
        parity_ok = len(marks) % 2 == (1 if spec.parity == "odd" else 0)
    else:
        parity_ok = True
    return Decoded(
        end_of_collation=eoc_bar != spec.eoc_negative,
        feeders=feeders,
        sequence=sequence,
        parity_ok=parity_ok,
        framed="start" in marks and "safety" in marks,
    )


def parse_datamatrix(text: str) -> dict[str, object]:
    """The sheet DataMatrix as the design documents it: K1|id|n/m|feeders|sequence."""
    version, piece_id, position, feeders, sequence = text.split("|")
    sheet, sheets = position.split("/")
    return {
        "version": version,
        "piece_id": piece_id,
        "sheet": int(sheet),
        "sheets": int(sheets),
        "feeders": frozenset(int(c) for c in feeders if c != "0"),
        "sequence": int(sequence),
    }
