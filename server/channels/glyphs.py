"""Glyph coverage: the text a print page will show -> the characters no font of the layout draws.

A print layout draws with a chain of fonts (`[print] fonts`, e.g. Inter 4.1 then Noto Sans
2.004: Latin with its extensions, Greek, Cyrillic; then Noto Sans Arabic, Hebrew, Devanagari
and Thai for names and addresses in those scripts). A character none of them has (CJK,
emoji, Ugaritic in the 2.0.0 layouts) would come out as an empty box (.notdef, "tofu") in
WeasyPrint, or from whatever system font Pango finds, and Typst refuses such a PDF/A page
with a message no caller can act on. A name or an address printed wrong is worse than no
letter, so the document is refused before rendering instead (issue 11 item 2):
`INVALID_ARGUMENT` naming the field (the JSON path of the input string that holds the
character) and the character (`U+10380 UGARITIC LETTER ALPA`): one violation per field,
naming the first MAX_NAMED_CHARACTERS of its characters and counting the rest ("3
characters cannot be printed: U+674E (李), U+5C0F (小) and U+9F8D (龍): ...").

What is checked: every string of the composed context the print templates read (values
from data, formatted values, the layout's labels, the campaign texts), after NFC
composition (a + U+030A is the å the fonts have). Characters without a glyph of their own
by design are skipped: controls and format characters (Unicode categories Cc, Cf: soft
hyphen, zero-width space and joiners, bidi marks), line and paragraph separators, and
variation selectors, which the shaping engines draw nothing for; and spaces (Zs), which
they draw from the font's own space when it lacks U+3000 or U+1680.

The font set's coverage (the union of the cmaps of its TrueType/OpenType/WOFF2 files, read
with fontTools) is read once per set of folders and kept for the life of the process, and
found once per layout. The composer asks for every channel that carries the PDF and the
renderer again, so the usual answer (every character drawn) is found cheaply: the distinct
characters of the shown strings, gathered in one walk without paths, against the coverage;
only when one of them is missing are the strings walked again with their paths to name the
fields.

Fields a layout lets print without what it cannot draw (`[print] replace_unprintable`, JSON
path patterns such as `$.transactions[*].description`): text the bank does not write itself,
a card network's or an enrichment service's merchant descriptor ("Kaffe ☕", "星巴克"), whose
emoji or foreign script must not stop the customer's invoice. There the print PDF drops
symbols without a glyph (emoji and their joiners and variation selectors) and prints each
other such character as "?", as a statement printer does; the e-mail and e-invoice keep the
text as given. A name, an address or any other field is still refused (`printable`).

Scripts an engine draws right but cannot write a true text layer for
(`TEXT_LAYER_UNMAPPED`): WeasyPrint 70 maps each glyph to one text (its PDF font's
ToUnicode), so Devanagari, whose shaping reorders glyphs (the reph, the i-matra) and joins
conjuncts, reads back scrambled ("श2ार्मा"): a search or a screen reader gets another name
than the page shows, and the PDF is not accessible (PDF/UA-1, ISO 14289-1 7.2: the text
must be the content's). Typst writes each cluster's text. So a layout that renders with
WeasyPrint refuses such text like a character without a glyph (`unmapped_text`), before
rendering when the manifest names the engine, and after it when another engine was asked
for (`kanal render --engine weasyprint`).

Which channels need it: every one that carries the print PDF (print, the digital mailbox,
an e-mail with the PDF attached, the Factur-X e-invoice); the composer asks
`server.channels.channel_unfit`, so a channel that cannot carry the document is skipped
where the plan allows it and refused where it is owed. The HTML e-mail itself is drawn by
the reader's mail program with its own fonts, and the SMS goes as UCS-2 when it must
(`server.channels.sms`), so neither is refused here.
"""

from __future__ import annotations

import re
import threading
import unicodedata
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont

from server import logs
from server.compose.layouts import Layout, font_folders
from server.compose.model import Composition
from server.compose.plan import Unfit
from server.errors import FieldViolation, InvalidInput, listed

FONT_SUFFIXES = (".ttf", ".otf", ".woff2", ".woff")
# controls, format characters, line/paragraph separators; and spaces: HarfBuzz (WeasyPrint)
# and rustybuzz (Typst) draw a space the font lacks (U+3000, U+1680) from its space glyph
NO_GLYPH_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Zs"})
# U+E000-F8FF and planes 15-16: fonts draw icons there (Inter has 745), but the code points
# mean nothing outside one font and Typst's PDF/A-3a export refuses them, so they are
# refused like characters without a glyph.
PRIVATE_USE = "Co"
log = logs.get_logger(__name__)

MAX_REPORTED = 20  # fields named in one error
MAX_NAMED_CHARACTERS = 5  # of one field's characters, named one by one
# engine -> the code point ranges whose text layer it writes wrong (see the docstring)
TEXT_LAYER_UNMAPPED = {"weasyprint": (("Devanagari", 0x0900, 0x097F),
                                      ("Devanagari Extended", 0xA8E0, 0xA8FF),
                                      ("Vedic Extensions", 0x1CD0, 0x1CFF))}
REPLACEMENT = "?"  # a letter, digit or mark of a script the fonts lack, in a replaced field
# what a replaced field drops instead: symbols (emoji are So), and the zero-width joiner,
# variation selectors and skin-tone modifiers that build emoji sequences (UTS #51)
DROPPED_CATEGORIES = frozenset({"So", "Sk", "Sm", "Sc"})
EMOJI_COMPONENTS = re.compile("[\u200d\ufe0e\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]")


@lru_cache(maxsize=32)
def coverage(folders: tuple[Path, ...]) -> tuple[frozenset[int], tuple[str, ...]]:
    """The code points some font in `folders` maps to a glyph, and the font families found
    (in folder order, for messages). Cached per set of folders. Private-use code points
    are never covered (`PRIVATE_USE`), whatever a font draws for them."""
    points: set[int] = set()
    families: list[str] = []
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in FONT_SUFFIXES:
                continue
            font = TTFont(path, lazy=True)
            try:
                points.update(font.getBestCmap() or {})
                family = font["name"].getBestFamilyName()
            finally:
                font.close()
            if family and family not in families:
                families.append(family)
    return frozenset(p for p in points if not _private_use(p)), tuple(families)


def _private_use(point: int) -> bool:
    return unicodedata.category(chr(point)) == PRIVATE_USE


_LAYOUT_COVERAGE: weakref.WeakKeyDictionary[Layout, tuple[frozenset[int], tuple[str, ...]]] = (
    weakref.WeakKeyDictionary())


def layout_coverage(layout: Layout) -> tuple[frozenset[int], tuple[str, ...]]:
    """`coverage` of the layout's font chain (`font_folders`), found once per layout."""
    found = _LAYOUT_COVERAGE.get(layout)
    if found is None:
        found = _LAYOUT_COVERAGE[layout] = coverage(font_folders(layout))
    return found


def needs_glyph(char: str) -> bool:
    """Whether a character is drawn with a glyph (controls, format characters and
    variation selectors are not)."""
    if unicodedata.category(char) in NO_GLYPH_CATEGORIES:
        return False
    point = ord(char)
    return not (0xFE00 <= point <= 0xFE0F or 0xE0100 <= point <= 0xE01EF)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _shown(composition: Composition) -> Iterator[tuple[str, str]]:
    """(context path, text) of every string the print templates read."""
    yield from _strings(dict(composition.context), "")
    for campaign in composition.campaigns:
        for name in ("title", "body"):
            text = getattr(campaign, name, None)
            if isinstance(text, str):
                yield f"campaigns.{campaign.area}.{name}", text


# Context values that hold no text (neither str nor Mapping nor list/tuple).
_LEAVES = frozenset({type(None), bool, int, float, Decimal, date})


def _shown_characters(composition: Composition) -> set[str]:
    """The distinct characters of the strings `_shown` yields that are not all ASCII, each
    string NFC-composed as `missing_glyphs` reads it: one walk, no paths."""
    texts: list[str] = []
    stack: list[Any] = [composition.context]
    while stack:
        value = stack.pop()
        kind = type(value)  # the exact types first: an ABC isinstance is the walk's cost
        if kind is str:
            if not value.isascii():
                texts.append(value)
        elif kind is dict:
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        elif kind in _LEAVES:
            continue
        elif isinstance(value, str):
            if not value.isascii():
                texts.append(value)
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    for campaign in composition.campaigns:
        for name in ("title", "body"):
            text = getattr(campaign, name, None)
            if isinstance(text, str) and not text.isascii():
                texts.append(text)
    chars: set[str] = set()
    for text in texts:
        chars.update(unicodedata.normalize("NFC", text))
    return chars


def source_field(composition: Composition, char: str, shown: str) -> str | None:
    """The JSON path of the input string a shown character came from: the strings that
    hold it (or its other case: the window prints the city in capitals), preferring one
    that the shown text contains or is contained in."""
    holding = [(path, value) for path, value in composition.source_text
               if char in value or char.lower() in value.lower()]
    for path, value in holding:
        if value in shown or shown in value:
            return path
    return holding[0][0] if holding else None


def missing_glyphs(composition: Composition, layout: Layout) -> list[FieldViolation]:
    """One violation per field holding characters no font of the layout's chain draws
    (`_why_unprintable`), the field being the input's JSON path (or `layout <ref> <context
    path>` for the layout's own text), in the order the context holds them."""
    _, families = layout_coverage(layout)
    return [FieldViolation(field, _why_unprintable(chars, families))
            for field, chars in _missing_by_field(composition, layout).items()]


def _missing_by_field(composition: Composition, layout: Layout) -> dict[str, list[str]]:
    """field -> the distinct characters of it no font draws (at most MAX_REPORTED fields)."""
    covered, _ = layout_coverage(layout)
    if all(ord(char) in covered or not needs_glyph(char)
           for char in _shown_characters(composition)):
        return {}  # every character is drawn: no field to name
    found: dict[str, dict[str, None]] = {}
    for path, text in _shown(composition):
        if text.isascii():  # Inter draws all of printable ASCII
            continue
        text = unicodedata.normalize("NFC", text)
        for char in dict.fromkeys(text):
            if ord(char) in covered or not needs_glyph(char):
                continue
            field = (source_field(composition, char, text)
                     or f"layout {layout.ref} {path.lstrip('.')}")
            if field in found or len(found) < MAX_REPORTED:
                found.setdefault(field, {})[char] = None
    return {field: list(chars) for field, chars in found.items()}


def _why_unprintable(chars: list[str], families: tuple[str, ...]) -> str:
    """Why a field's characters cannot be printed, in one message: one character named
    and explained; of several, the first MAX_NAMED_CHARACTERS named and the rest counted."""
    if len(chars) == 1:
        return _why_one_unprintable(chars[0], families)
    named = [f"U+{ord(char):04X} ({char})" for char in chars[:MAX_NAMED_CHARACTERS]]
    private = sum(unicodedata.category(char) == PRIVATE_USE for char in chars)
    return (f"{len(chars)} characters cannot be printed: {listed(named, len(chars))}"
            + (f": no glyph in the print fonts ({', '.join(families)}), they would print "
               f"as empty boxes" if private < len(chars) else "")
            + ("; a private-use character means nothing outside one font, and a PDF/A-3a "
               "document may not carry it" if private else ""))


def _why_one_unprintable(char: str, families: tuple[str, ...]) -> str:
    if unicodedata.category(char) == PRIVATE_USE:
        return (f"U+{ord(char):04X} is a private-use character ({char}): it means nothing "
                f"outside one font, and a PDF/A-3a document may not carry it (ISO 19005-3 "
                f"level A: the text of every glyph must be meaningful Unicode)")
    name = unicodedata.name(char, "unnamed character")
    return (f"U+{ord(char):04X} {name} ({char}) has no glyph in the print fonts "
            f"({', '.join(families)}): it would print as an empty box")


def check_glyphs(composition: Composition, layout: Layout) -> Unfit | None:
    """Why the print PDF cannot carry this document (for the channel plan), or None: what
    stays without a glyph once `printable` has replaced what it may, else text the layout's
    engine cannot write a true text layer for (`unmapped_text`). The reason names the
    first three characters (or scripts) and the first field; its violations are one per
    field."""
    if _all_drawn(composition, layout):
        from server.channels.pdf import engine_of  # pdf imports this module

        engine = engine_of(layout)
        missing = unmapped_text(composition, engine)
        if not missing:
            return None
        scripts = ", ".join(v.description.split(" (", 1)[0] for v in missing[:3])
        return Unfit(f"the print engine {engine} cannot write a true text layer for "
                     f"{scripts} (in {missing[0].field})", tuple(missing))
    by_field = _missing_by_field(printable(composition, layout), layout)
    if not by_field:
        return None
    _, families = layout_coverage(layout)
    first = [char for chars in by_field.values() for char in chars][:3]
    named = ", ".join(_why_one_unprintable(char, families).split(" (", 1)[0]
                      for char in first)
    return Unfit(f"the print fonts cannot draw {named} (in {next(iter(by_field))})",
                 tuple(FieldViolation(field, _why_unprintable(chars, families))
                       for field, chars in by_field.items()))


def refuse_missing_glyphs(composition: Composition, layout: Layout) -> None:
    """`InvalidInput` naming every field and character the print fonts cannot draw."""
    missing = missing_glyphs(composition, layout)
    if missing:
        raise InvalidInput("the print fonts cannot draw characters of this document",
                           missing)


def replaced_fields(layout: Layout) -> Callable[[str], bool]:
    """Whether an input JSON path is one of the layout's `[print] replace_unprintable`
    patterns (`[*]` stands for any index)."""
    patterns = layout.section("print").get("replace_unprintable", ())
    if not patterns:
        return lambda path: False
    pattern = re.compile("|".join(
        re.escape(p).replace(re.escape("[*]"), r"\[\d+\]") for p in patterns))
    return lambda path: pattern.fullmatch(path) is not None


# The last `_all_drawn` answer in this thread: the composer's channel check
# (`check_glyphs`) and the print renderer (`print_composition`) ask it of the same document
# one after the other, each a walk over every string the templates show. A hit needs the
# very same context and campaign objects (the composer's `replace` keeps them) and layout,
# so another document is never answered with this one's.
_last_drawn = threading.local()


def _all_drawn(composition: Composition, layout: Layout) -> bool:
    """Every character shown has a glyph (the usual answer: one walk, no paths)."""
    last = getattr(_last_drawn, "entry", None)
    if last is not None and last[0] is composition.context \
            and last[1] is composition.campaigns and last[2] is layout:
        return last[3]
    covered, _ = layout_coverage(layout)
    drawn = all(ord(char) in covered or not needs_glyph(char)
                for char in _shown_characters(composition))
    _last_drawn.entry = (composition.context, composition.campaigns, layout, drawn)
    return drawn


def print_composition(composition: Composition, layout: Layout) -> Composition:
    """The composition the print templates render: `composition` itself when every
    character has a glyph; else `printable`'s copy, refused (`InvalidInput` naming each
    field and character) if anything outside the replaced fields is still undrawable."""
    if _all_drawn(composition, layout):
        return composition
    replaced, fields = _replaced(composition, layout)
    refuse_missing_glyphs(replaced, layout)
    if fields:
        log.info("print replaced unprintable characters", fields=fields,
                 document_id=composition.document_id)
    return replaced


def printable(composition: Composition, layout: Layout) -> Composition:
    """`composition` with the characters the fonts cannot draw that came from a field of
    `[print] replace_unprintable` dropped (symbols, emoji sequences) or printed as
    `REPLACEMENT` in a copy of its context; `composition` itself when there are none.
    Characters from any other field stay, for `missing_glyphs` to refuse."""
    return _replaced(composition, layout)[0]


def _replaced(composition: Composition, layout: Layout) -> tuple[Composition, list[str]]:
    """`printable`'s composition and the input fields it replaced characters of."""
    covered, _ = layout_coverage(layout)
    replaceable = replaced_fields(layout)
    fields: set[str] = set()

    def fix(text: str) -> str:
        if text.isascii():
            return text
        text = unicodedata.normalize("NFC", text)
        out: list[str] = []
        changed = False
        for char in text:
            if ord(char) in covered or not needs_glyph(char):
                out.append(char)
                continue
            field = source_field(composition, char, text)
            if field is None or not replaceable(field):
                out.append(char)
                continue
            fields.add(field)
            changed = True
            out.append("" if unicodedata.category(char) in DROPPED_CATEGORIES
                       else REPLACEMENT)
        if not changed:
            return text
        kept = " ".join(EMOJI_COMPONENTS.sub("", "".join(out)).split())
        return kept or REPLACEMENT

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return fix(value)
        if isinstance(value, Mapping):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(walk(item) for item in value)
        return value

    context = walk(composition.context)
    if not fields:
        return composition, []
    return replace(composition, context=context), sorted(fields)


def unmapped_text(composition: Composition, engine: str) -> list[FieldViolation]:
    """Every (field, script) of the shown text in a script `engine` cannot write a true
    text layer for (`TEXT_LAYER_UNMAPPED`), the field being the input's JSON path; [] for
    any other engine or text."""
    ranges = TEXT_LAYER_UNMAPPED.get(engine.split(" ", 1)[0])
    if not ranges:
        return []
    def script(char: str) -> str | None:
        point = ord(char)
        return next((name for name, low, high in ranges if low <= point <= high), None)

    if not any(script(char) for char in _shown_characters(composition)):
        return []
    found: dict[tuple[str, str], FieldViolation] = {}
    for path, text in _shown(composition):
        for char in dict.fromkeys(unicodedata.normalize("NFC", text)):
            name = script(char)
            if name is None:
                continue
            field = source_field(composition, char, text) or f"layout {path.lstrip('.')}"
            found.setdefault((field, name), FieldViolation(field, (
                f"{name} text ({char}, U+{ord(char):04X}) prints with the {engine} engine "
                f"but its text layer would read back wrong: {engine} maps each glyph to one "
                f"character, and {name} reorders and joins glyphs, so the PDF would not be "
                f"accessible (PDF/UA-1, ISO 14289-1 7.2); a layout that renders with Typst "
                f"prints it")))
    return list(found.values())[:MAX_REPORTED]


def refuse_unmapped_text(composition: Composition, engine: str) -> None:
    """`InvalidInput` naming each field whose script `engine` writes a wrong text layer for
    (`unmapped_text`)."""
    missing = unmapped_text(composition, engine)
    if missing:
        raise InvalidInput("the print engine cannot write this document's text layer",
                           missing)
