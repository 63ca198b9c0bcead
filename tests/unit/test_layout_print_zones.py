"""Every layout leaves every print profile's mark zones blank.

The inserting machine reads the OMR bars and the DataMatrix on each sheet front; the
imposer paints their zones white before drawing, so a layout that prints into a zone
would lose content silently. Rasterise every sample's pages, from every engine the layout
has a template for, and look for ink there.
"""

from datetime import UTC, datetime

import numpy as np
import pypdfium2
import pytest

from server.channels.pdf import PrintEngines, engine_of
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import PRINT_ENGINES, LayoutRegistry
from server.compose.model import Channel
from server.printing.profiles import Rect, builtin_profiles

DPI = 100
LAYOUTS = LayoutRegistry()
PROFILES = builtin_profiles()
ENGINES = PrintEngines()
SAMPLES = [(layout, sample, engine) for layout in LAYOUTS.latest()
           if Channel.PRINT in layout.channels
           # every sample file, and the manifest's samples per locale (samples/<locale>.json)
           for sample in sorted({*layout.path.glob("sample*.json"), *(
               layout.path / name for name in layout.manifest.get("samples", {}).values())})
           for engine in dict.fromkeys([engine_of(layout), *(
               e for e, key in PRINT_ENGINES.items() if layout.section("print").get(key))])]


def zones(profile) -> list[Rect]:
    width_mm, _ = profile.paper_size_mm
    omr = profile.omr
    found = [omr.code_area(width_mm).grown(omr.clear_zone_mm)]
    if profile.datamatrix is not None:
        found.append(profile.datamatrix.area)
    return found


@pytest.mark.parametrize(("layout", "sample", "engine"), SAMPLES,
                         ids=lambda v: getattr(v, "ref", None) or (
                             f"{v.parent.name}/{v.name}" if hasattr(v, "parent") else v))
def test_no_ink_in_any_profiles_mark_zones(layout, sample, engine):
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=sample.read_text(encoding="utf-8"), document_id="z",
        now=datetime(2026, 11, 22, tzinfo=UTC), channels=(Channel.PRINT,)))
    pdf = pypdfium2.PdfDocument(ENGINES.engine(engine).render(layout, composition).content)
    px = DPI / 25.4
    for index, page in enumerate(pdf):
        gray = np.asarray(page.render(scale=DPI / 72, grayscale=True).to_pil().convert("L"))
        for name, profile in PROFILES.items():
            if profile.duplex and index % 2:  # a back: the machine reads fronts only
                continue
            for zone in zones(profile):
                window = gray[int(zone.y * px):int(zone.bottom * px) + 1,
                              max(0, int(zone.x * px)):int(zone.right * px) + 1]
                inked = int((window < 200).sum())
                assert inked == 0, (
                    f"{layout.ref} {sample.name} ({engine}) page {index + 1} prints into the "
                    f"{name} profile's zone {zone} ({inked} dark pixels)")
