"""The rules a print-shop profile must pass when it is loaded (server.printing.profiles).

The limits are Pitney Bowes' published OMR limits, the strictest of the common inserter
makes (bars 0.35-0.7 mm thick and at least 10 mm long, pitch at least 2.54 mm, the code at
most 70 mm and 24 positions, the first bar at least 20 mm from the lead edge, 3 mm clear
around it); a DataMatrix must fit its box with its quiet zone; no mark may show through an
envelope's window. Each broken rule raises `ValueError` naming the field
(`omr.pitch_mm`, `envelopes.C5.max_sheets`, ...). Separate from the profile's values so
the print trade's rules read on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.printing.profiles import DataMatrixSpec, OmrSpec, PrintProfile

#: Paper sizes the imposer can mark, (width, height) in mm, portrait.
PAPER_SIZES_MM: Mapping[str, tuple[float, float]] = MappingProxyType({"A4": (210.0, 297.0)})

# Pitney Bowes OMR limits (see the module docstring).
MIN_BAR_THICKNESS_MM = 0.35
MAX_BAR_THICKNESS_MM = 0.7
MIN_BAR_LENGTH_MM = 10.0
MIN_PITCH_MM = 2.54
MAX_CODE_LENGTH_MM = 70.0
MAX_POSITIONS = 24
MIN_LEAD_EDGE_MM = 20.0
MIN_CLEAR_ZONE_MM = 3.0

#: Mark names with a fixed meaning; feeder marks are "feed1".."feedN", sequence bits are
#: "seq1", "seq2", "seq4", ... (the number is the bit's weight).
FIXED_MARKS = frozenset({"start", "eoc", "parity", "safety"})


def validate_profile(profile: PrintProfile) -> None:
    """Raise ValueError naming the first field that makes the profile unusable."""
    if profile.paper not in PAPER_SIZES_MM:
        raise ValueError(
            f"paper: {profile.paper!r} not supported (supported: {', '.join(PAPER_SIZES_MM)})"
        )
    width, height = profile.paper_size_mm
    _validate_envelopes(profile)
    _validate_omr(profile.omr, width, height)
    code_zone = profile.omr.code_area(width).grown(profile.omr.clear_zone_mm)
    zones = [("omr", code_zone)]
    if profile.datamatrix is not None:
        _validate_datamatrix(profile.datamatrix, width, height)
        if profile.datamatrix.area.intersects(code_zone):
            raise ValueError("datamatrix: overlaps the OMR code or its clear zone")
        zones.append(("datamatrix", profile.datamatrix.area))
    for name, zone in zones:
        for env in profile.envelopes.values():
            visible = env.visible_area
            if visible is not None and zone.intersects(visible):
                raise ValueError(
                    f"{name}: would show through the window of envelope {env.id!r} "
                    f"(window {visible.x:.1f},{visible.y:.1f} {visible.w:.1f}x{visible.h:.1f} mm "
                    f"incl. play)"
                )


def _validate_envelopes(profile: PrintProfile) -> None:
    width, height = profile.paper_size_mm
    for env in profile.envelopes.values():
        where = f"envelopes.{env.id}"
        if env.max_sheets < 1:
            raise ValueError(f"{where}.max_sheets: must be at least 1")
        if env.play_mm < 0:
            raise ValueError(f"{where}.play_mm: must not be negative")
        window_keys = (env.window_x_mm, env.window_y_mm, env.window_w_mm, env.window_h_mm)
        if any(v is None for v in window_keys) and not all(v is None for v in window_keys):
            raise ValueError(f"{where}.window_x_mm: give all four window keys or none")
        window = env.window
        if window is not None:
            if window.w <= 2 * env.play_mm or window.h <= 2 * env.play_mm:
                raise ValueError(f"{where}.window_w_mm: window too small for play_mm")
            if not window.inside(width, height):
                raise ValueError(f"{where}.window_x_mm: window lies outside the sheet")
    if profile.default_envelope not in profile.envelopes:
        raise ValueError(f"default_envelope: {profile.default_envelope!r} is not in envelopes")
    for src, dst in profile.overflow.items():
        if src not in profile.envelopes:
            raise ValueError(f"overflow.{src}: not in envelopes")
        if dst not in profile.envelopes:
            raise ValueError(f"overflow.{src}: target {dst!r} is not in envelopes")
        if profile.envelopes[dst].max_sheets <= profile.envelopes[src].max_sheets:
            raise ValueError(f"overflow.{src}: target {dst!r} holds no more sheets than {src!r}")


def _validate_omr(spec: OmrSpec, width: float, height: float) -> None:
    if spec.edge not in ("left", "right"):
        raise ValueError(f"omr.edge: {spec.edge!r} must be 'left' or 'right'")
    if spec.parity not in ("even", "odd"):
        raise ValueError(f"omr.parity: {spec.parity!r} must be 'even' or 'odd'")
    if not MIN_BAR_THICKNESS_MM <= spec.mark_thickness_mm <= MAX_BAR_THICKNESS_MM:
        raise ValueError(
            f"omr.mark_thickness_mm: {spec.mark_thickness_mm} mm outside "
            f"{MIN_BAR_THICKNESS_MM}-{MAX_BAR_THICKNESS_MM} mm"
        )
    if spec.mark_length_mm < MIN_BAR_LENGTH_MM:
        raise ValueError(
            f"omr.mark_length_mm: {spec.mark_length_mm} mm is shorter than {MIN_BAR_LENGTH_MM} mm"
        )
    if spec.pitch_mm < MIN_PITCH_MM:
        raise ValueError(f"omr.pitch_mm: {spec.pitch_mm} mm is below {MIN_PITCH_MM} mm")
    if spec.pitch_mm - spec.mark_thickness_mm < MIN_BAR_THICKNESS_MM:
        raise ValueError("omr.pitch_mm: bars would touch (gap thinner than a bar)")
    if spec.clear_zone_mm < MIN_CLEAR_ZONE_MM:
        raise ValueError(f"omr.clear_zone_mm: at least {MIN_CLEAR_ZONE_MM} mm")
    _validate_mark_names(spec)
    if len(spec.marks) > MAX_POSITIONS:
        raise ValueError(f"omr.marks: {len(spec.marks)} positions, at most {MAX_POSITIONS}")
    if spec.code_length_mm > MAX_CODE_LENGTH_MM:
        raise ValueError(
            f"omr.marks: code is {spec.code_length_mm:.1f} mm long "
            f"({len(spec.marks)} positions at {spec.pitch_mm} mm pitch), "
            f"at most {MAX_CODE_LENGTH_MM} mm"
        )
    area = spec.code_area(width)
    if area.y < MIN_LEAD_EDGE_MM:
        raise ValueError(
            f"omr.first_mark_y_mm: first bar {area.y:.2f} mm from the lead "
            f"edge, at least {MIN_LEAD_EDGE_MM} mm"
        )
    if spec.x_mm < spec.clear_zone_mm:
        raise ValueError(
            f"omr.x_mm: {spec.x_mm} mm leaves less than the clear zone "
            f"({spec.clear_zone_mm} mm) to the edge"
        )
    if not area.grown(spec.clear_zone_mm).inside(width, height):
        raise ValueError("omr.first_mark_y_mm: the code and its clear zone do not fit the sheet")


def _validate_mark_names(spec: OmrSpec) -> None:
    marks = spec.marks
    if not marks or not all(isinstance(m, str) for m in marks):
        raise ValueError("omr.marks: must be a non-empty list of mark names")
    if len(set(marks)) != len(marks):
        raise ValueError("omr.marks: a mark name appears twice")
    for m in marks:
        if m in FIXED_MARKS:
            continue
        for prefix in ("feed", "seq"):
            if m.startswith(prefix) and m[len(prefix) :].isdigit():
                break
        else:
            raise ValueError(
                f"omr.marks: unknown mark {m!r} (known: start, eoc, feedN, seqN, parity, safety)"
            )
    for required in ("start", "safety", "eoc"):
        if required not in marks:
            raise ValueError(f"omr.marks: {required!r} is required")
    if marks[0] != "start":
        raise ValueError("omr.marks: the code must open with 'start'")
    if marks[-1] != "safety":
        raise ValueError("omr.marks: the code must close with 'safety'")
    feeds = sorted(int(m[4:]) for m in marks if m.startswith("feed"))
    if feeds != list(range(1, len(feeds) + 1)):
        raise ValueError("omr.marks: feeder marks must be feed1..feedN without gaps")
    if spec.seq_bits < 0:
        raise ValueError("omr.seq_bits: must not be negative")
    seqs = sorted(int(m[3:]) for m in marks if m.startswith("seq"))
    if seqs != [2**i for i in range(spec.seq_bits)]:
        expected = ", ".join(f"seq{2**i}" for i in range(spec.seq_bits)) or "none"
        raise ValueError(f"omr.seq_bits: {spec.seq_bits} bits needs the marks {expected}")


def _validate_datamatrix(spec: DataMatrixSpec, width: float, height: float) -> None:
    if not 0.25 <= spec.module_mm <= 2.0:
        raise ValueError(f"datamatrix.module_mm: {spec.module_mm} mm outside 0.25-2 mm")
    if spec.quiet_zone_modules < 1:
        raise ValueError("datamatrix.quiet_zone_modules: at least 1")
    if spec.max_size_mm < 10 * spec.module_mm:
        raise ValueError("datamatrix.max_size_mm: smaller than the smallest symbol (10x10)")
    if not spec.area.inside(width, height):
        raise ValueError("datamatrix.x_mm: the symbol box and quiet zone do not fit the sheet")
