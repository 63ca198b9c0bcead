"""Print-shop profiles: a TOML file turns into a frozen, validated `PrintProfile`.

A print shop's production line is described once, as data: the paper, simplex or duplex,
the envelopes it stocks (window geometry, how many sheets fit, which bigger envelope takes
over when a piece is too thick) and the code its inserters read -- the OMR bar column
(`OmrSpec`) and, for newer lines, a 2D DataMatrix per sheet (`DataMatrixSpec`).

Everything is validated when the profile is loaded, not when a batch is printed: a bar
too thin for the scanner, a code longer than the reading head, or a mark that would show
through an envelope window is a configuration error and raises `ValueError` naming the
field (`omr.pitch_mm`, `envelopes.C5.max_sheets`, ...): the rules and their limits live in
server.printing.profile_rules. The limits are Pitney Bowes' published OMR limits (the
strictest of the common inserter makes):

* bars 0.35-0.7 mm thick (1-2 pt) and at least 10 mm long,
* pitch (centre to centre) at least 2.54 mm,
* the whole code at most 70 mm long and at most 24 positions,
* the first bar at least 20 mm from the lead edge (the top edge: sheets feed top first),
* 3 mm clear on each side of the code, nothing printed behind it.

Geometry is in millimetres from the sheet's top-left corner, with the sheet lying face up
as it will be folded into the envelope, because that is how print shops measure it.

TOML format (keys are the dataclass fields; unknown keys are errors, to catch typos)::

    id = "default"
    name = "Quadient DS, C5 simplex"
    paper = "A4"
    duplex = false
    default_envelope = "C5"

    [envelopes.C5]            # table name = envelope id
    window_x_mm = 15.0        # window's left edge, from the sheet's left edge
    window_y_mm = 44.0        # window's top edge, from the sheet's top edge
    window_w_mm = 105.0
    window_h_mm = 35.0        # omit all four window keys for an envelope without window
    max_sheets = 5
    play_mm = 3.0             # how far the sheet can shift inside the envelope

    [overflow]                # envelope id -> envelope used when max_sheets is exceeded
    C5 = "C4"

    [omr]
    edge = "left"             # "left" | "right"
    x_mm = 5.0                # distance of the bars' start from that edge
    first_mark_y_mm = 105.0   # centreline of the first position, from the top edge
    mark_length_mm = 12.0
    mark_thickness_mm = 0.5
    pitch_mm = 4.23           # centre to centre
    marks = ["start", "eoc", "feed1", "feed2", "feed3", "seq1", "seq2", "seq4",
             "parity", "safety"]
    eoc_negative = false      # true: the EOC bar is printed on every sheet EXCEPT the last
    parity = "even"           # "even" | "odd"
    seq_bits = 3
    clear_zone_mm = 3.0       # blank margin around the code
    paint_clear_zone = true   # paint the clear zone white before drawing the bars

    [datamatrix]              # optional; absent = no DataMatrix
    x_mm = 189.0              # symbol box top-left, from the sheet's top-left
    y_mm = 155.0
    module_mm = 0.4
    max_size_mm = 16.0        # the symbol must fit this square box
    quiet_zone_modules = 2
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from server.printing.profile_rules import (
    MIN_CLEAR_ZONE_MM,
    PAPER_SIZES_MM,
    validate_profile,
)

_T = TypeVar("_T")


BUILTIN_DIR = Path(__file__).with_name("profiles")

_WINDOW_KEYS = frozenset({"window_x_mm", "window_y_mm", "window_w_mm", "window_h_mm"})


@dataclass(frozen=True, slots=True)
class Rect:
    """An axis-aligned rectangle in mm, from the sheet's top-left corner (y grows down)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def grown(self, by: float) -> Rect:
        return Rect(self.x - by, self.y - by, self.w + 2 * by, self.h + 2 * by)

    def intersects(self, other: Rect) -> bool:
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )

    def inside(self, width: float, height: float) -> bool:
        return self.x >= 0 and self.y >= 0 and self.right <= width and self.bottom <= height


@dataclass(frozen=True, slots=True)
class Envelope:
    """An envelope the shop stocks, with its window as seen on the folded sheet.

    The window is given relative to the sheet's top-left corner as the sheet sits in the
    envelope. A sheet can shift by `play_mm` in any direction, so the address must stay
    inside `address_area` and nothing machine-readable may come into `visible_area`.
    """

    id: str
    window_x_mm: float | None
    window_y_mm: float | None
    window_w_mm: float | None
    window_h_mm: float | None
    max_sheets: int
    play_mm: float = 0.0

    @property
    def window(self) -> Rect | None:
        if self.window_x_mm is None:
            return None
        return Rect(self.window_x_mm, self.window_y_mm, self.window_w_mm, self.window_h_mm)  # type: ignore[arg-type]

    @property
    def address_area(self) -> Rect | None:
        """Where the address block must lie to be readable whatever the play."""
        window = self.window
        return window.grown(-self.play_mm) if window else None

    @property
    def visible_area(self) -> Rect | None:
        """Every part of the sheet that can show through the window."""
        window = self.window
        return window.grown(self.play_mm) if window else None


@dataclass(frozen=True, slots=True)
class OmrSpec:
    """The OMR bar column: where it is, how it looks, and what each position means.

    Position i (0-based, counted from the top) has its centreline at
    `first_mark_y_mm + i * pitch_mm`; its bar runs `mark_length_mm` inwards starting
    `x_mm` from the `edge`. `marks` names every position; a position whose mark is not
    set on a sheet is left blank. See `server.printing.omr` for when each mark is set.
    """

    edge: Literal["left", "right"]
    x_mm: float
    first_mark_y_mm: float
    mark_length_mm: float
    mark_thickness_mm: float
    pitch_mm: float
    marks: tuple[str, ...]
    eoc_negative: bool
    parity: Literal["even", "odd"]  # only used when `marks` has a "parity" position
    seq_bits: int
    clear_zone_mm: float = MIN_CLEAR_ZONE_MM
    paint_clear_zone: bool = True

    @property
    def feeders(self) -> int:
        """How many selective feeders the code can select (feed1..feedN)."""
        return sum(1 for m in self.marks if m.startswith("feed"))

    @property
    def code_length_mm(self) -> float:
        """From the top of the first bar to the bottom of the last."""
        return (len(self.marks) - 1) * self.pitch_mm + self.mark_thickness_mm

    def code_area(self, paper_width_mm: float) -> Rect:
        """The rectangle the bars occupy (without the clear zone)."""
        x = self.x_mm if self.edge == "left" else paper_width_mm - self.x_mm - self.mark_length_mm
        top = self.first_mark_y_mm - self.mark_thickness_mm / 2
        return Rect(x, top, self.mark_length_mm, self.code_length_mm)


@dataclass(frozen=True, slots=True)
class DataMatrixSpec:
    """Where the per-sheet DataMatrix goes: a square box whose top-left is (x_mm, y_mm)."""

    x_mm: float
    y_mm: float
    module_mm: float
    max_size_mm: float
    quiet_zone_modules: int = 2

    @property
    def box(self) -> Rect:
        return Rect(self.x_mm, self.y_mm, self.max_size_mm, self.max_size_mm)

    @property
    def area(self) -> Rect:
        """The box with its quiet zone: what must stay free of anything else."""
        return self.box.grown(self.quiet_zone_modules * self.module_mm)


@dataclass(frozen=True, slots=True)
class PrintProfile:
    id: str
    name: str
    paper: str
    duplex: bool
    envelopes: Mapping[str, Envelope]
    default_envelope: str
    overflow: Mapping[str, str]  # envelope id -> envelope to use when max_sheets is exceeded
    omr: OmrSpec
    datamatrix: DataMatrixSpec | None = None

    @property
    def paper_size_mm(self) -> tuple[float, float]:
        return PAPER_SIZES_MM[self.paper]

    def envelope_for(self, sheets: int, requested: str | None = None) -> Envelope:
        """The envelope a piece of `sheets` sheets goes into: the requested (or default)
        envelope, or the first one along the overflow chain that is big enough."""
        envelope_id = requested or self.default_envelope
        if envelope_id not in self.envelopes:
            raise ValueError(f"unknown envelope {envelope_id!r} for profile {self.id!r}")
        seen: set[str] = set()
        while self.envelopes[envelope_id].max_sheets < sheets:
            seen.add(envelope_id)
            nxt = self.overflow.get(envelope_id)
            if nxt is None or nxt in seen:
                raise ValueError(
                    f"a piece of {sheets} sheets fits no envelope of profile {self.id!r} "
                    f"(overflow chain ends at {envelope_id!r}, max "
                    f"{self.envelopes[envelope_id].max_sheets} sheets)"
                )
            envelope_id = nxt
        return self.envelopes[envelope_id]


# --- loading ------------------------------------------------------------------------------


def load_profile(path: str | Path) -> PrintProfile:
    """Read and validate one profile TOML file."""
    path = Path(path)
    with path.open("rb") as f:
        data = tomllib.load(f)
    try:
        return profile_from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None


def builtin_profiles() -> dict[str, PrintProfile]:
    """The profiles shipped in `server/printing/profiles/*.toml`, by id."""
    profiles: dict[str, PrintProfile] = {}
    for path in sorted(BUILTIN_DIR.glob("*.toml")):
        profile = load_profile(path)
        if profile.id in profiles:
            raise ValueError(f"{path.name}: duplicate profile id {profile.id!r}")
        profiles[profile.id] = profile
    return profiles


def profile_from_dict(data: Mapping[str, Any]) -> PrintProfile:
    """Build a validated profile from parsed TOML (see the module docstring)."""
    top = _fields(
        data,
        "",
        required={"id", "name", "omr", "envelopes", "default_envelope"},
        allowed={
            "id",
            "name",
            "paper",
            "duplex",
            "envelopes",
            "default_envelope",
            "overflow",
            "omr",
            "datamatrix",
        },
    )
    envelopes_data = top["envelopes"]
    if not isinstance(envelopes_data, Mapping) or not envelopes_data:
        raise ValueError("envelopes: at least one [envelopes.<id>] table is required")
    envelopes = {
        env_id: _build(
            Envelope,
            {"id": env_id, **_table(env, f"envelopes.{env_id}")},
            f"envelopes.{env_id}",
            optional=_WINDOW_KEYS,
        )
        for env_id, env in envelopes_data.items()
    }
    omr_data = dict(_table(top["omr"], "omr"))
    if "marks" in omr_data:
        if not isinstance(omr_data["marks"], list):
            raise ValueError("omr.marks: must be a list of mark names")
        omr_data["marks"] = tuple(omr_data["marks"])
    omr = _build(OmrSpec, omr_data, "omr")
    datamatrix = None
    if "datamatrix" in top:
        datamatrix = _build(DataMatrixSpec, _table(top["datamatrix"], "datamatrix"), "datamatrix")
    profile = PrintProfile(
        id=top["id"],
        name=top["name"],
        paper=top.get("paper", "A4"),
        duplex=top.get("duplex", False),
        envelopes=MappingProxyType(envelopes),
        default_envelope=top["default_envelope"],
        overflow=MappingProxyType(dict(_table(top.get("overflow", {}), "overflow"))),
        omr=omr,
        datamatrix=datamatrix,
    )
    validate_profile(profile)
    return profile


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a table")
    return value


def _fields(
    data: Mapping[str, Any], where: str, *, required: set[str], allowed: set[str]
) -> Mapping[str, Any]:
    prefix = f"{where}." if where else ""
    unknown = sorted(set(data) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise ValueError(f"{prefix}{unknown[0]}: unknown key (known: {known})")
    missing = sorted(required - set(data))
    if missing:
        raise ValueError(f"{prefix}{missing[0]}: required")
    return data


def _build(
    cls: type[_T], data: Mapping[str, Any], where: str, optional: frozenset[str] = frozenset()
) -> _T:
    """Instantiate a dataclass from a TOML table, checking keys and value types."""
    allowed = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    required = {
        f.name
        for f in fields(cls)  # type: ignore[arg-type]
        if f.default is MISSING and f.default_factory is MISSING
    } - optional
    data = _fields(data, where, required=required, allowed=allowed)
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            if f.name in optional:
                values[f.name] = None
            continue
        value = data[f.name]
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if "float" in kind and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        expected: tuple[type, ...] = ()
        if kind.startswith("float"):
            expected = (float,)
        elif kind == "int":
            expected = (int,)
        elif kind == "bool":
            expected = (bool,)
        elif kind == "str" or kind.startswith("Literal"):
            expected = (str,)
        if expected and (
            not isinstance(value, expected) or (expected == (int,) and isinstance(value, bool))
        ):
            raise ValueError(f"{where}.{f.name}: expected {kind}, got {value!r}")
        values[f.name] = value
    return cls(**values)
