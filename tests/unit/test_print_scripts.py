"""Names and addresses in Arabic, Hebrew, Devanagari and Thai print with the layouts' own fonts.

Customers of UK, German and Nordic banks have such names on record; the 2.0.0 layouts' font
chain ends with Noto Sans Arabic, Hebrew, Devanagari and Thai
(layouts/_shared/fonts/noto-sans-scripts-20201225). A card invoice and a payment reminder
with the name and address in each script go through the print channel as in production
(glyph check, preflight with the C5 window check) with both engines, and are read back with
pdfium: the text in logical order, the name starting at the window's left edge like the
postcode line under it (right-to-left names are ordered inside the left-to-right address
block, not pushed to its right), drawn with the layout's fonts only, and the PDF still
PDF/A-3 + PDF/UA-1. What no font of the chain draws (CJK, emoji) is still refused before
rendering, naming the field. The SMS and e-mail carry such names unchanged.
"""

from __future__ import annotations

import email
import json
import re
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from typing import Any

import pytest

from server.channels.advance_bounds import advance_bounds, chain_for, fit_bounds_json
from server.channels.email import render_email
from server.channels.pdf import render_print, template_json
from server.channels.sms import plan_sms
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import font_folders
from server.compose.model import Channel, Composition
from server.errors import InvalidInput
from tests.layouts import shipped
from tests.pdf_conformance import pdf_a_problems, pdf_ua_findings
from tests.pdf_inspect import find_text, font_names, pages_text
from tests.print_engines import print_engines

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
WINDOW_LEFT, WINDOW_TOP, WINDOW_BOTTOM = 18.0, 47.0, 76.0  # mm: both layouts' window_mm

# the PDF font names of the 2.0.0 chain (Typst "NotoSansArabic-Regular", WeasyPrint
# "Noto-Sans-Arabic"), hyphens dropped; a system font (DejaVu, Noto Sans CJK) is none of them
LAYOUT_FONT = re.compile(r"(Inter|NotoSans|NotoSans(Arabic|Hebrew|Devanagari|Thai))"
                         r"(Regular|SemiBold|Bold)?")
# script -> (name, address lines, the PDF font name the script draws with)
PEOPLE = {
    "arabic": ("محمد العلي", ["شارع الملك فهد ١٢", "الرياض"], "NotoSansArabic"),
    "hebrew": ("דוד כהן", ["רחוב הרצל 5", "תל אביב"], "NotoSansHebrew"),
    "devanagari": ("राज शर्मा", ["मकान 12, गांधी मार्ग", "नई दिल्ली"], "NotoSansDevanagari"),
    "thai": ("สมชาย ใจดี", ["123 ถนนสุขุมวิท", "กรุงเทพ"], "NotoSansThai"),
}


def composed(layout_id: str, change=None, channels=()) -> tuple[Any, Composition]:
    layout = LAYOUTS.get(layout_id)
    data = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    if change:
        change(data)
    return layout, compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                          document_id="01JTEST", now=NOW, channels=channels))


def in_window(box) -> bool:
    return box.top >= WINDOW_TOP and box.bottom <= WINDOW_BOTTOM


def addressed_to(script: str):
    name, lines, _ = PEOPLE[script]

    def change(data: dict[str, Any]) -> None:
        data["customer"]["name"] = name
        data["customer"]["address"]["lines"] = lines
    return change


@pytest.mark.parametrize("script", sorted(PEOPLE))
@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder"])
@pytest.mark.parametrize("engine", ["typst", "weasyprint"])
def test_a_name_in_its_own_script_prints_in_the_window(engine, layout_id, script):
    name, lines, font = PEOPLE[script]
    layout, composition = composed(layout_id, addressed_to(script))
    if engine == "weasyprint" and script == "devanagari":
        # WeasyPrint 70 maps each glyph to one text (ToUnicode), which a conjunct's
        # reordered glyphs (reph, i-matra) cannot have: the page would be drawn right but
        # read back wrong, so the print channel refuses it, naming the field
        with pytest.raises(InvalidInput) as refused:
            render_print(composition, layout, print_engines(engine, layout))
        fields = {v.field for v in refused.value.violations}
        assert "$.customer.name" in fields and "PDF/UA-1" in str(refused.value), fields
        return
    # the print channel: glyph check, then preflight (text area, window) on the PDF
    pdf = render_print(composition, layout, print_engines(engine, layout)).content
    fonts = {n.split("+")[-1].replace("-", "") for n in font_names(pdf)}
    assert any(f.startswith(font) for f in fonts), fonts
    assert all(LAYOUT_FONT.fullmatch(f) for f in fonts), fonts  # no system font
    assert pdf_a_problems(pdf, ua=True) == []
    assert pdf_ua_findings(pdf) == []
    text = pages_text(pdf)[0]
    for value in (name, *lines):
        assert value in text, (value, text[:300])  # logical order, as in the data
    [box] = [b for b in find_text(pdf, name) if in_window(b)]  # the reminder's slip too
    [postcode] = [b for b in find_text(pdf, "0358 OSLO") if in_window(b)]
    assert abs(box.left - WINDOW_LEFT) < 0.5, box  # the window's left edge
    assert abs(box.left - postcode.left) < 0.3, (box, postcode)  # aligned as the block
    assert box.top < postcode.top


@pytest.mark.parametrize(("value", "point"), [("王小明", "U+738B"), ("Kari \U0001F600", "U+1F600")])
@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder"])
def test_cjk_and_emoji_are_still_refused_naming_the_field(layout_id, value, point):
    def change(data: dict[str, Any]) -> None:
        data["customer"]["name"] = value
    with pytest.raises(InvalidInput) as refused:
        composed(layout_id, change, channels=(Channel.PRINT,))
    [violation] = refused.value.violations  # one per field, however many characters
    assert violation.field == "$.customer.name"
    assert point in violation.description, violation


def test_a_latin_page_keeps_the_bounds_of_inter_and_noto_sans():
    # the fallback fonts have wider '!' and '/' than Inter and Noto Sans; a Latin-only page
    # is drawn without them, so its bounds (and what `fit` measures) grow nowhere
    layout, latin = composed("card-invoice")
    chain = font_folders(layout)
    assert [folder.name for folder in chain][-1] == "noto-sans-scripts-20201225"
    assert advance_bounds(chain)["!"] > advance_bounds(chain[:2])["!"]
    context = template_json(latin)
    assert chain_for(chain, context) in (chain[:1], chain[:2])  # Inter has every letter
    chars = json.loads(fit_bounds_json(layout, context))["chars"]
    before = advance_bounds(chain[:2])  # the chain as it was: Inter, Noto Sans
    assert chars and all(bound <= before[char] for char, bound in chars.items())
    _, arabic = composed("card-invoice", addressed_to("arabic"))
    context = template_json(arabic)
    assert chain_for(chain, context) == chain
    assert json.loads(fit_bounds_json(layout, context))["chars"]["!"] == advance_bounds(chain)["!"]


def test_the_bounds_cover_the_arabic_joining_forms():
    # a final or medial form can be wider than the isolated letter the cmap maps: the bound
    # is the widest form (Typst's fit must not keep a word whole that is wider than its box)
    folder = Path(font_folders(LAYOUTS.get("card-invoice"))[-1])
    from fontTools.ttLib import TTFont
    font = TTFont(folder / "NotoSansArabic-Regular.ttf", lazy=True)
    units, cmap = font["head"].unitsPerEm, font.getBestCmap()
    bounds = advance_bounds((folder,))
    widths = {name: advance for name, (advance, _) in font["hmtx"].metrics.items()}
    wider = [chr(point) for point, glyph in cmap.items() if 0x0620 <= point <= 0x064A
             and any(widths.get(f"{glyph}.{form}", 0) > widths[glyph]
                     for form in ("fina", "medi", "init"))]
    assert wider, "no joining form wider than its isolated letter to check"
    for char in wider:
        glyph = cmap[ord(char)]
        widest = max(widths.get(f"{glyph}.{form}", 0) for form in ("fina", "medi", "init"))
        assert bounds[char] >= widest / units, char


def test_the_sms_and_the_email_carry_the_names_unchanged():
    name = PEOPLE["arabic"][0]
    message = plan_sms(f"Hei {name}: 1 234,50 kr forfaller 2026-03-20")
    assert (message.encoding, message.data_coding) == ("UCS-2", 8)
    assert message.units == len(message.text) and message.segments == 1
    assert plan_sms(name * 8).segments == 2  # 80 UTF-16 units: 67 per part when split
    layout, composition = composed("card-invoice", addressed_to("hebrew"),
                                   channels=(Channel.EMAIL,))
    raw = render_email(composition, layout, pdf=lambda: render_print(
        composition, layout, print_engines("typst", layout))).content
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()  # RFC 2047 encoded words, not raw UTF-8
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["To"].addresses[0].display_name == PEOPLE["hebrew"][0]


def test_a_weasyprint_layout_refuses_devanagari_before_rendering():
    # the welcome letter renders with WeasyPrint: its plan finds the text layer it could
    # not write, and the channel that owes the letter is refused naming the field
    def change(data: dict[str, Any]) -> None:
        data["customer"]["name"] = PEOPLE["devanagari"][0]
    with pytest.raises(InvalidInput) as refused:
        composed("welcome-letter", change, channels=(Channel.PRINT,))
    assert {v.field for v in refused.value.violations} == {"$.customer.name"}
    assert "Devanagari" in refused.value.violations[0].description
    # a plan that can do without the letter skips it, saying why
    _, composition = composed("welcome-letter", change)
    [skipped] = [s for s in composition.channel_plan.skipped if s.channel is Channel.PRINT]
    assert skipped.reason.startswith("the print engine weasyprint cannot write a true text "
                                     "layer for Devanagari text"), skipped.reason
    for script in ("arabic", "hebrew", "thai"):  # drawn and read back right by WeasyPrint
        composed("welcome-letter", addressed_to(script), channels=(Channel.PRINT,))
