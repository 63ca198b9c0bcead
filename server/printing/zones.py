"""Mark zones: the parts of a sheet a print profile keeps for the inserter's codes.

The imposer (`server.printing.marks`) paints each zone white and draws the OMR bars or the
DataMatrix on it, so anything a document prints there disappears from the printed sheet
while the archived PDF still shows it. Documents must therefore stay out of every zone,
and that is checked twice:

* at layout load (`server.compose.layouts`), for what the layout fixes: its print area
  (the page area between the side margins, where the flow, the running header and the
  footer go) must not reach any zone of any profile;
* at render time (`server.channels.print_zones`), for what the data makes: a long unbroken
  URL that runs out of its box into a zone is refused with the data field named.

Zones are those the profile's own definition gives (`OmrSpec.code_area` grown by its clear
zone, `DataMatrixSpec.area` with its quiet zone), in mm from the sheet's top-left corner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from server.printing.profiles import PrintProfile, Rect, builtin_profiles


@dataclass(frozen=True, slots=True)
class MarkZone:
    """One zone of one profile: `kind` is "omr" (the bar column and its clear zone) or
    "datamatrix" (the symbol box and its quiet zone)."""

    profile: str
    kind: str
    rect: Rect

    def __str__(self) -> str:
        r = self.rect
        what = "OMR code and clear zone" if self.kind == "omr" else "DataMatrix and quiet zone"
        return (f"the {what} of print profile {self.profile!r} "
                f"(x {r.x:.1f}-{r.right:.1f} mm, y {r.y:.1f}-{r.bottom:.1f} mm)")


def mark_zones(profile: PrintProfile) -> tuple[MarkZone, ...]:
    """The zones the imposer paints on a sheet front of `profile`."""
    width, _ = profile.paper_size_mm
    omr = profile.omr
    zones = [MarkZone(profile.id, "omr", omr.code_area(width).grown(omr.clear_zone_mm))]
    if profile.datamatrix is not None:
        zones.append(MarkZone(profile.id, "datamatrix", profile.datamatrix.area))
    return tuple(zones)


def all_mark_zones(profiles: Mapping[str, PrintProfile] | None = None) -> tuple[MarkZone, ...]:
    """Every zone of every profile (the builtin ones by default): a document may be printed
    on any line its bank uses, and a reprint may go to another print shop."""
    profiles = builtin_profiles() if profiles is None else profiles
    return tuple(zone for profile in profiles.values() for zone in mark_zones(profile))


def zones_reached(area: Rect, zones: Iterable[MarkZone]) -> list[MarkZone]:
    """The zones `area` overlaps (touching edges do not count)."""
    return [zone for zone in zones if area.intersects(zone.rect)]
