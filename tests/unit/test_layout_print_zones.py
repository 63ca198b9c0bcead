"""Marks never cover document content (issue 11 fault 7).

The imposer paints each print profile's OMR and DataMatrix zones white and draws the codes
on them, so whatever a document printed there is silently lost on paper. Three guards:

* every sample of every 2.0.0 layout, from every engine the layout has a template for, is
  imposed on every print profile, and the page is compared before and after marking as
  bitmaps: a pixel of document ink inside a zone that differs after marking fails, and so
  does any change outside the zones (the marks may add ink only where they belong);
* a layout whose print area (`[print] margins_mm`) reaches a zone is refused at load, and
  the declared margins are the engines' own (WeasyPrint's page boxes, Typst's page as a
  probe reports it, and no sample's ink beside them);
* data that runs out of its box into a zone is refused at render time with
  INVALID_ARGUMENT naming the field (a welcome letter with a long unbroken URL on the
  right-edge Pitney Bowes profile).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
import typst
import weasyprint

from server.channels import Renderers
from server.channels.pdf import PrintEngines, engine_of
from server.channels.print_zones import find_intrusions
from server.channels.weasyprint_engine import AssetFetcher
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import (
    PRINT_ENGINES,
    LayoutError,
    LayoutRegistry,
    font_folders,
    load_layout,
)
from server.compose.model import Channel, ChannelPlan
from server.errors import InvalidInput
from server.printing.marks import MailPiece, impose
from server.printing.profiles import builtin_profiles
from server.printing.sheets import plan_sheets, sheet_rules
from server.printing.zones import all_mark_zones, mark_zones
from tests.layouts import shipped
from tests.print_engines import print_engines

DPI = 100
PX_PER_MM = DPI / 25.4
INK = 0.1  # darkness from which a pixel is document ink
CHANGED = 0.02  # darkness difference from which a pixel counts as changed
LAYOUTS_DIR = Path(__file__).resolve().parents[2] / "layouts"
LAYOUTS = shipped()
PROFILES = builtin_profiles()
ENGINES = PrintEngines()
NOW = datetime(2026, 11, 22, tzinfo=UTC)
SAMPLES = [(layout, sample, engine) for layout in LAYOUTS.latest()
           if Channel.PRINT in layout.channels
           # every sample file, and the manifest's samples per locale (samples/<locale>.json)
           for sample in sorted({*layout.path.glob("sample*.json"), *(
               layout.path / name for name in layout.manifest.get("samples", {}).values())})
           for engine in dict.fromkeys([engine_of(layout), *(
               e for e, key in PRINT_ENGINES.items() if layout.section("print").get(key))])]


def _id(value: object) -> str:
    if isinstance(value, Path) and value.parent.name == "samples":
        return f"samples/{value.name}"
    return getattr(value, "name", None) or getattr(value, "ref", None) or str(value)


def _compose(layout, data: str, document_id: str = "ZONES1"):
    return compose(ComposeRequest(tenant="t", layout=layout, data=data, document_id=document_id,
                                  now=NOW, channels=(Channel.PRINT,)))


@cache
def _rendered(layout_ref: str, sample_name: str, engine: str):
    layout_id, version = layout_ref.split("@")
    layout = LAYOUTS.get(layout_id, version)
    composition = _compose(layout, (layout.path / sample_name).read_text(encoding="utf-8"))
    return composition, ENGINES.engine(engine).render(layout, composition).content


def _dark(document: pypdfium2.PdfDocument, index: int) -> np.ndarray:
    """Page `index` as darkness 0 (paper) .. 1 (ink)."""
    gray = document[index].render(scale=DPI / 72, grayscale=True).to_numpy()
    if gray.ndim == 3:
        gray = gray[..., 0]
    return 1.0 - gray.astype(np.float32) / 255.0


def _zone_mask(shape: tuple[int, int], profile) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for zone in mark_zones(profile):
        r = zone.rect
        mask[int(r.y * PX_PER_MM):int(np.ceil(r.bottom * PX_PER_MM)) + 1,
             max(0, int(r.x * PX_PER_MM)):int(np.ceil(r.right * PX_PER_MM)) + 1] = True
    return mask


def marking_damage(pdf: bytes, piece: MailPiece, profile) -> list[str]:
    """Impose `piece` alone on `profile` and compare each of its pages before and after
    marking: what the marks changed that was the document's (empty when nothing)."""
    batch = impose([piece], profile)
    before = pypdfium2.PdfDocument(pdf)
    after = pypdfium2.PdfDocument(batch.pdf)
    plan = plan_sheets(len(before), profile.duplex, piece.sheet_rules)
    problems = []
    try:
        for page in range(len(before)):
            old = _dark(before, page)
            new = _dark(after, plan.side_of(page + 1))
            assert old.shape == new.shape
            changed = np.abs(new - old) > CHANGED
            zones = _zone_mask(old.shape, profile)
            lost = int((changed & zones & (old > INK)).sum())
            if lost:
                problems.append(f"page {page + 1}: {lost} pixels of document ink inside "
                                f"{profile.id}'s zones changed by the marks")
            outside = int((changed & ~zones).sum())
            if outside:
                problems.append(f"page {page + 1}: {outside} pixels changed outside the "
                                f"mark zones of {profile.id}")
    finally:
        before.close()
        after.close()
    return problems


# --- every layout, sample, engine and profile: before and after marking ------------------------


@pytest.mark.parametrize("profile", sorted(PROFILES), ids=str)
@pytest.mark.parametrize(("layout", "sample", "engine"), SAMPLES, ids=_id)
def test_marking_changes_no_document_ink(layout, sample, engine, profile) -> None:
    composition, pdf = _rendered(layout.ref, str(sample.relative_to(layout.path)), engine)
    piece = MailPiece("ZONES1", pdf, sheet_rules=sheet_rules(composition.print_options))
    assert marking_damage(pdf, piece, PROFILES[profile]) == []


@pytest.mark.parametrize(("layout", "sample", "engine"), SAMPLES, ids=_id)
def test_pages_keep_to_the_declared_print_area(layout, sample, engine) -> None:
    """The `margins_mm` checked at load are the templates' own: no sample puts ink
    beside them, with either engine (the declaration cannot drift from the CSS/Typst)."""
    _, pdf = _rendered(layout.ref, str(sample.relative_to(layout.path)), engine)
    top, right, bottom, left = layout.section("print")["margins_mm"]
    document = pypdfium2.PdfDocument(pdf)
    for index in range(len(document)):
        dark = _dark(document, index)
        columns = np.flatnonzero((dark > INK).any(axis=0)) / PX_PER_MM
        assert columns.min() >= left - 0.5 and columns.max() <= 210 - right + 0.5, (
            f"page {index + 1}: ink from x {columns.min():.1f} to {columns.max():.1f} mm")
    document.close()
    assert find_intrusions(pdf, all_mark_zones()) == []


PRINT_LAYOUTS = [layout for layout in LAYOUTS.latest() if Channel.PRINT in layout.channels]


@pytest.mark.parametrize("layout", PRINT_LAYOUTS, ids=_id)
def test_declared_margins_are_the_weasyprint_page_margins(layout) -> None:
    """`[print] margins_mm` is what WeasyPrint lays the pages out with (first and later
    pages), read from the engine's own page boxes."""
    fetcher = AssetFetcher((layout.path, layout.shared_path))
    sheets = [weasyprint.CSS(filename=str(layout.path / name), url_fetcher=fetcher)
              for name in layout.section("print")["stylesheets"]]
    document = weasyprint.HTML(
        string="<p>1</p><p style='break-before: page'>2</p>", url_fetcher=fetcher,
        base_url=layout.path.as_uri() + "/").render(stylesheets=sheets)
    for page in document.pages:
        box = page._page_box  # WeasyPrint keeps the laid-out page box here (CSS px)
        margins = [box.margin_top, box.margin_right, box.margin_bottom, box.margin_left]
        assert [round(m * 25.4 / 96, 2) for m in margins] == layout.section(
            "print")["margins_mm"]


@pytest.mark.parametrize("layout", [layout for layout in PRINT_LAYOUTS
                                    if layout.section("print").get("typst_template")], ids=_id)
def test_declared_margins_are_the_typst_page_margins(layout, tmp_path) -> None:
    """The Typst templates take their page from the shared base (`letter`, no `set page`
    of their own); a probe asks Typst for that page's margins."""
    source = (layout.path / layout.section("print")["typst_template"]).read_text()
    assert "#show: letter.with(" in source and "set page(" not in source
    base = next(line for line in source.splitlines() if "base.typ" in line and "import" in line)
    root = tmp_path / "layouts"
    shutil.copytree(LAYOUTS_DIR / "_shared", root / "_shared",
                    ignore=shutil.ignore_patterns("fonts"))
    probe = root / "probe" / "1" / "probe.typ"
    probe.parent.mkdir(parents=True)
    probe.write_text(base + """
#show: letter.with((locale: "nb-NO", labels: (page: "Side")), title: "probe")
#context [#metadata(("top", "right", "bottom", "left").map(side =>
  page.margin.at(side).length.mm())) <margins>]
probe
""")
    fonts = typst.Fonts(include_system_fonts=False, include_embedded_fonts=False,
                        font_paths=[str(folder) for folder in font_folders(layout)])
    compiler = typst.Compiler(input=str(probe), root=str(root), font_paths=fonts,
                              ignore_system_fonts=True)
    [margins] = json.loads(compiler.query("<margins>", field="value"))
    assert [round(m, 2) for m in margins] == layout.section("print")["margins_mm"]


def test_the_comparison_sees_document_ink_painted_over() -> None:
    """The test above is not blind: a page with text in the right-edge zone (imposed
    without the render-time check) is reported, on that profile and not on the other."""
    pdf = weasyprint.HTML(string=(
        "<style>@page { size: A4; margin: 0 }</style><p style='position: absolute; "
        "left: 150mm; top: 120mm; font: 14pt sans-serif; white-space: nowrap'>"
        "WWW.EXAMPLESHOP.NO/ORDER-1234567890</p>")).write_pdf()
    damage = marking_damage(pdf, MailPiece("INK", pdf), PROFILES["pb-di-negative"])
    assert damage and "document ink inside pb-di-negative's zones" in damage[0]
    assert marking_damage(pdf, MailPiece("INK", pdf), PROFILES["default"]) == []


# --- fixed content: refused at layout load -----------------------------------------------------


def _layout_copy(tmp_path: Path, layout_id: str, margins: list | None) -> Path:
    target = tmp_path / "layouts" / layout_id / "2.0.0"
    if not (tmp_path / "layouts" / "_shared").exists():
        (tmp_path / "layouts").mkdir(parents=True, exist_ok=True)
        (tmp_path / "layouts" / "_shared").symlink_to(LAYOUTS_DIR / "_shared")
    shutil.copytree(LAYOUTS_DIR / layout_id / "2.0.0", target)
    manifest = (target / "manifest.toml").read_text(encoding="utf-8")
    line = "margins_mm = [14, 18, 20, 18]\n"
    assert line in manifest
    manifest = manifest.replace(line, "" if margins is None else f"margins_mm = {margins}\n")
    (target / "manifest.toml").write_text(manifest, encoding="utf-8")
    return target


@pytest.mark.parametrize(("layout_id", "margins", "profile", "zone"), [
    ("welcome-letter", [14, 10, 20, 18], "pb-di-negative", "OMR code"),
    ("card-invoice", [14, 15, 20, 18], "pb-di-negative", "OMR code"),
    ("payment-reminder", [14, 18, 20, 12], "default", "OMR code"),
    ("b2b-invoice", [14, 18, 20, 15], "default", "OMR code"),
])
def test_a_layout_whose_print_area_reaches_a_zone_is_refused_at_load(
        tmp_path, layout_id, margins, profile, zone) -> None:
    path = _layout_copy(tmp_path, layout_id, margins)
    with pytest.raises(LayoutError, match=f"{zone}.*'{profile}'.*Widen the side margins"):
        load_layout(path)
    with pytest.raises(LayoutError, match="margins_mm"):
        LayoutRegistry(tmp_path / "layouts")
    # the same layout is fine for a shop whose profiles have no zone there
    other = [z for z in all_mark_zones() if z.profile != profile]
    assert load_layout(path, other).id == layout_id


def test_a_2_0_layout_must_declare_its_margins(tmp_path) -> None:
    with pytest.raises(LayoutError, match="margins_mm is required"):
        load_layout(_layout_copy(tmp_path, "welcome-letter", None))
    with pytest.raises(LayoutError, match=r"\[top, right, bottom, left\]"):
        load_layout(_layout_copy(tmp_path / "b", "welcome-letter", [14, 18]))


# --- data-driven content: refused at render time, naming the field ----------------------------

LONG_URL = ("fjordbank.no/velkommen?utm_source=velkomstbrev&utm_medium=print"
            "&utm_campaign=kredittkort2026&utm_content=nykunde&ref=4419002199502026")


def _long_url_letter(version: str):
    layout = LAYOUTS.get("welcome-letter", version)
    data = json.loads(layout.sample_data())
    data["letter"]["paragraphs"][2] = f"Les mer på {LONG_URL} om vilkårene."
    return layout, _compose(layout, json.dumps(data, ensure_ascii=False))


def test_welcome_letter_with_a_long_url_keeps_its_ink_off_the_marks() -> None:
    """The reported case: on the right-edge profile the OMR clear zone covered the URL. The
    2.0.0 letter breaks the URL inside its column (issue 11 fault 1), so marking changes
    none of its ink; the frozen 1.0.0 letter, which cannot break it, is refused by name."""
    layout, composition = _long_url_letter("2.0.0")
    [pdf] = Renderers(ENGINES).render(composition, layout)
    assert not marking_damage(pdf.content, MailPiece("URL", pdf.content),
                              PROFILES["pb-di-negative"])
    old_layout, old = _long_url_letter("1.0.0")
    with pytest.raises(InvalidInput) as caught:
        Renderers(ENGINES).render(old, old_layout)
    assert [v.field for v in caught.value.violations] == ["$.letter.paragraphs[2]"]


def test_ink_in_a_mark_zone_is_refused_naming_the_field(monkeypatch) -> None:
    """The render-time zone check on its own (the text-area preflight in front of it is
    left out): the 1.0.0 letter's unbroken URL reaches the pb-di OMR zone, and the check
    names the field, the profile and the zone."""
    layout, composition = _long_url_letter("1.0.0")
    monkeypatch.setattr("server.channels.pdf.refuse_overflow", lambda *args, **kwargs: None)
    raw = ENGINES.engine("weasyprint").render(layout, composition)
    with pytest.raises(InvalidInput) as caught:
        Renderers(ENGINES).render(composition, layout)
    [violation] = caught.value.violations
    assert violation.field == "$.letter.paragraphs[2]"
    assert "pb-di-negative" in violation.description and "OMR" in violation.description
    assert "utm_source" in violation.description
    # what the check saw is really there: the URL's ink reaches the right-edge OMR zone
    damage = marking_damage(raw.content, MailPiece("URL", raw.content),
                            PROFILES["pb-di-negative"])
    assert damage and "document ink" in damage[0]
    # nothing is painted over a copy that never goes to paper; a print fallback is checked
    mailbox = replace(composition, channel_plan=ChannelPlan(channels=(Channel.MAILBOX,)))
    [copy] = Renderers(ENGINES).render(mailbox, layout)
    assert copy.channel == Channel.MAILBOX and copy.content == raw.content
    fallback = replace(composition, channel_plan=ChannelPlan(
        channels=(Channel.MAILBOX,), fallbacks=(Channel.PRINT,)))
    with pytest.raises(InvalidInput, match="mark zone"):
        Renderers(ENGINES).render(fallback, layout)


@pytest.mark.parametrize(("layout_id", "engine", "path", "value"), [
    ("welcome-letter", "weasyprint", ("letter", "highlights", 1, "value"), LONG_URL[:80]),
    ("welcome-letter", "weasyprint", ("letter", "subject"), LONG_URL[:120]),
    ("card-invoice", "weasyprint", ("transactions", 0, "description"), "W" * 80),
    ("card-invoice", "typst", ("transactions", 0, "description"), "W" * 80),
    ("payment-reminder", "typst", ("customer", "name"), "X" * 70),
    ("b2b-invoice", "typst", ("lines", 0, "description"), LONG_URL),
])
def test_long_unbroken_data_is_either_refused_by_name_or_kept_off_the_marks(
        layout_id, engine, path, value) -> None:
    """Siblings in other layouts and fields: never silent. Either the render is refused
    naming the field, or marking every profile changes none of the document's ink."""
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    composition = _compose(layout, json.dumps(data, ensure_ascii=False))
    renderers = Renderers(print_engines(engine, layout))
    try:
        [pdf] = [o for o in renderers.render(composition, layout) if o.channel == Channel.PRINT]
    except InvalidInput as exc:
        fields = [v.field for v in exc.violations]
        assert fields == ["$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}"
                                        for k in path)], fields
        return
    piece = MailPiece("LONG", pdf.content, sheet_rules=sheet_rules(composition.print_options))
    for profile in PROFILES.values():
        assert marking_damage(pdf.content, piece, profile) == []
