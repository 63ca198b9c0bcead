"""Upper bounds of the width a word can take in a layout's print fonts, per character, in em.

The Typst templates' `fit` (layouts/_shared/fjordbank-2-typst/base.typ) lets a word wider
than its box break anywhere; it measured every word of every value with `context measure`,
and those `context` elements were a quarter of a card invoice's render (issue 14). With a
bound per character it asks Typst to measure only the words that could be too wide: a word
whose bound at its size is at most the box width is kept whole without measuring, exactly
as the measurement would have decided, since the measured width never exceeds the bound.

The bound of a character `c`, in em of the text size, over every font file of the layout's
chain (`[print] fonts`: every weight, and the fallback fonts, whichever one draws it):

* the largest advance (hmtx) of its glyph, of every glyph an OpenType substitution can turn
  it into (GSUB single, alternate, multiple; a ligature's advance counts against its first
  component; closed over chains of substitutions), so contextual alternates, tabular
  figures and ligatures never draw wider than the bound;
* plus the largest widening positioning can give it: the sum over the font's GPOS
  single and pair adjustment lookups of their largest positive x-advance (kerning).

The sum of its characters' bounds is then at least the word's width in any of the fonts and
weights at that size, as the characters are: not under a case transformation (`upper`,
`smallcaps`) or letter-spacing (`tracking`), which `fit` callers never set (a template test
holds them to it). Read with fontTools once per set of font folders and kept.

Which folders count for a document: Typst shapes a run with the first family of the chain,
then shapes again, with the next family, only the clusters that came out as .notdef. A
document whose characters the first k folders all have is therefore drawn with their fonts
alone, and its bounds are taken over those k (`chain_for`): a Latin-only card invoice keeps
the bounds of Inter and Noto Sans, whatever wider digits or kerning the Arabic or
Devanagari fonts have, and costs no extra measuring (characters no folder has are refused
by the glyph check or drawn with nothing, and do not lengthen the prefix).

Reading a folder's GPOS and GSUB with fontTools takes about 1.5 s of CPU for the 2.0.0
layouts' five font files, and every process that renders with Typst paid it again (each
bulk worker and render process when it starts). A font folder can therefore hold its
table, `advance-bounds.json` (`TABLE_NAME`): the folder's fonts by name with their sha256,
and each code point's bound, the largest over those fonts, unrounded. It is used only
while the folder holds exactly those font files with those digests; otherwise the folder is
read with fontTools as before. The `layouts/_shared/fonts/` folders ship theirs (a test
keeps them equal to a fresh reading); write one with

    python -m server.channels.advance_bounds layouts/_shared/fonts/inter-4.1-ttf ...
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import unicodedata
import weakref
from collections.abc import Iterable
from functools import lru_cache, partial
from pathlib import Path

from fontTools.ttLib import TTFont

from server.channels.glyphs import FONT_SUFFIXES
from server.compose.layouts import Layout, font_folders

# Always in the table: the characters the templates add around values (separators,
# parentheses, digits of page numbers), whatever the document holds.
TEMPLATE_CHARACTERS = frozenset(map(chr, range(0x20, 0x7F))) | frozenset("·–—…×")


# The OpenType features Typst (rustybuzz) may apply to a value set as `fit` sets it: the
# ones on by default for Latin, Greek and Cyrillic, and the figure styles a template can
# choose (`number-width`, `number-type`, `slashed-zero`). Not `dlig`, `frac`, `smcp`,
# `sups`, stylistic sets and the like: `fit` callers never switch those on.
# For the fallback fonts' scripts, the features their shapers always apply: Arabic joining
# forms (`isol` `init` `medi` `fina` and Syriac-style `med2` `fin2` `fin3`, `mset`), the
# Indic (Devanagari) reordering and conjunct features; Hebrew and Thai use the common ones.
SUBSTITUTION_FEATURES = frozenset({"ccmp", "locl", "rlig", "rvrn", "calt", "clig", "liga",
                                   "rclt", "tnum", "pnum", "lnum", "onum", "zero",
                                   "isol", "init", "medi", "fina", "med2", "fin2", "fin3",
                                   "mset", "nukt", "akhn", "rphf", "rkrf", "pref", "blwf",
                                   "abvf", "half", "pstf", "vatu", "cjct", "pres", "abvs",
                                   "blws", "psts", "haln"})
POSITIONING_FEATURES = frozenset({"kern", "dist", "curs", "mark", "mkmk", "abvm", "blwm"})
# Characters that get no bound, so a word holding one is always measured: controls (a line
# break), format characters (a soft hyphen draws a hyphen where a line breaks), line and
# paragraph separators, private use, surrogates, unassigned.
UNBOUNDED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})


def _unwrap(lookup: object) -> list[tuple[int, object]]:
    """(type, subtable) of a lookup's subtables, extension subtables unwrapped."""
    out = []
    for sub in lookup.SubTable:
        kind = lookup.LookupType
        if hasattr(sub, "ExtSubTable"):
            kind, sub = sub.ExtensionLookupType, sub.ExtSubTable
        out.append((kind, sub))
    return out


def _feature_lookups(table: object, features: frozenset[str]) -> set[int]:
    return {i for record in table.FeatureList.FeatureRecord
            if record.FeatureTag in features for i in record.Feature.LookupListIndex}


def _nested(sub: object) -> list[int]:
    """The lookups a contextual subtable calls, in any of its formats."""
    found = []

    def records(item: object) -> None:
        for name in ("SubstLookupRecord", "PosLookupRecord"):
            found.extend(r.LookupListIndex for r in getattr(item, name, None) or ())

    records(sub)
    for set_name, rule_name in _RULE_NAMES:
        for rule_set in getattr(sub, set_name, None) or ():
            for rule in getattr(rule_set, rule_name, None) or () if rule_set else ():
                records(rule)
    return found


_RULE_NAMES = (("SubRuleSet", "SubRule"), ("SubClassSet", "SubClassRule"),
               ("ChainSubRuleSet", "ChainSubRule"), ("ChainSubClassSet", "ChainSubClassRule"),
               ("PosRuleSet", "PosRule"), ("PosClassSet", "PosClassRule"),
               ("ChainPosRuleSet", "ChainPosRule"),
               ("ChainPosClassSet", "ChainPosClassRule"))


def _all_lookups(table: object, features: frozenset[str]) -> set[int]:
    """The lookups `features` use and every lookup their contextual lookups call."""
    lookup_list = table.LookupList.Lookup
    pending, seen = _feature_lookups(table, features), set()
    while pending:
        index = pending.pop()
        if index not in seen:
            seen.add(index)
            for _, sub in _unwrap(lookup_list[index]):
                pending.update(_nested(sub))
    return seen


def _substitution_pairs(kind: int, table: object) -> list[tuple[list[str], list[str]]]:
    """(glyphs, what they become) of one single, multiple, alternate, ligature or
    reverse-chaining subtable."""
    if kind == 1:
        return [([g], [s]) for g, s in table.mapping.items()]
    if kind == 2:
        return [([g], list(s)) for g, s in table.mapping.items()]
    if kind == 3:
        return [([g], [a]) for g, alts in table.alternates.items() for a in alts]
    if kind == 4:
        return [([g, *lig.Component], [lig.LigGlyph]) for g, ligs in table.ligatures.items()
                for lig in ligs]
    if kind == 8:
        return [([g], [s]) for g, s in zip(table.Coverage.glyphs, table.Substitute,
                                            strict=False)]
    return []


def _close(bound: dict[str, float], pairs: list[tuple[list[str], list[str]]]) -> None:
    """Raise each glyph's bound to what it may become (a ligature: against its first
    component), until no bound grows. A glyph that keeps growing (substitutions that lead
    back to it with more glyphs, as Noto Sans Devanagari's conjunct lookups do when applied
    everywhere) has no bound: infinity, so words holding it are always measured."""
    glyphs = {g for sources, into in pairs for g in (*sources, *into)}

    def grown(sources: list[str], into: list[str]) -> float | None:
        width = sum(bound.get(g, 0.0) for g in into) - sum(
            b for b in (bound.get(g, 0.0) for g in sources[1:]) if b != math.inf)
        return width if width > bound.get(sources[0], 0.0) else None

    for _ in range(len(glyphs) + 1):  # longest chain without a cycle: every glyph once
        changed = False
        for sources, into in pairs:
            width = grown(sources, into)
            if width is not None:
                bound[sources[0]] = width
                changed = True
        if not changed:
            return
    changed = True
    while changed:  # growing still: a cycle; it and what may become it are unbounded
        changed = False
        for sources, into in pairs:
            if grown(sources, into) is not None:
                bound[sources[0]] = math.inf
                changed = True


def _glyph_bounds(font: TTFont) -> dict[str, float]:
    """Glyph -> bound in font units: its advance plus `_widening`, closed over every
    substitution the lookups of `SUBSTITUTION_FEATURES` make or call, as if each applied
    everywhere (what a contextual rule does in its context, it is allowed anywhere)."""
    widening = _widening(font)
    bound = {name: float(advance) + widening.get(name, 0)
             for name, (advance, _) in font["hmtx"].metrics.items()}
    if "GSUB" in font:
        table = font["GSUB"].table
        _close(bound, [pair for index in _all_lookups(table, SUBSTITUTION_FEATURES)
                       for kind, sub in _unwrap(table.LookupList.Lookup[index])
                       for pair in _substitution_pairs(kind, sub)])
    return bound


def _widening(font: TTFont) -> dict[str, float]:
    """Glyph -> the most positioning (`POSITIONING_FEATURES`) can add to its advance, in
    font units: per lookup the largest positive x-advance it can give the glyph (first or
    second of a kerning pair, or alone), summed over the lookups. A pair class that holds
    every glyph not named (class 0 of the second glyph) widens every glyph."""
    if "GPOS" not in font:
        return {}
    order = font.getGlyphOrder()
    total: dict[str, float] = {}
    lookup_list = font["GPOS"].table.LookupList.Lookup
    for index in _all_lookups(font["GPOS"].table, POSITIONING_FEATURES):
        largest: dict[str, float] = {}  # one lookup adjusts a glyph once: the largest
        widen = partial(_widen, largest)
        for kind, table in _unwrap(lookup_list[index]):
            if kind == 1 and table.Format == 1:
                widen(table.Coverage.glyphs, table.Value)
            elif kind == 1:
                for glyph, value in zip(table.Coverage.glyphs, table.Value, strict=False):
                    widen((glyph,), value)
            elif kind == 2 and table.Format == 1:
                for first, pair_set in zip(table.Coverage.glyphs, table.PairSet, strict=False):
                    for record in pair_set.PairValueRecord:
                        widen((first,), record.Value1)
                        widen((record.SecondGlyph,), record.Value2)
            elif kind == 2:
                firsts = _classes(table.ClassDef1, table.Coverage.glyphs)
                seconds = _classes(table.ClassDef2, order)
                for c1, record1 in enumerate(table.Class1Record):
                    for c2, record2 in enumerate(record1.Class2Record):
                        widen(firsts.get(c1, ()), record2.Value1)
                        widen(seconds.get(c2, ()), record2.Value2)
            elif kind == 3:  # cursive attachment sets advances from anchors: no bound
                largest.update(dict.fromkeys(order, 1.0e6))
        for glyph, advance in largest.items():
            total[glyph] = total.get(glyph, 0) + advance
    return total


def _widen(largest: dict[str, float], glyphs: Iterable[str], value: object) -> None:
    advance = (getattr(value, "XAdvance", 0) or 0) if value is not None else 0
    if advance > 0:
        for glyph in glyphs:
            largest[glyph] = max(largest.get(glyph, 0), advance)


def _classes(class_def: object, glyphs: list[str]) -> dict[int, list[str]]:
    """Class -> glyphs of `glyphs` in it (class 0: those the ClassDef does not name)."""
    named = class_def.classDefs if class_def is not None else {}
    out: dict[int, list[str]] = {}
    for glyph in glyphs:
        out.setdefault(named.get(glyph, 0), []).append(glyph)
    return out


# Where the shaper (HarfBuzz, rustybuzz: the Indic shaper) puts a dotted circle (U+25CC)
# before a mark that has no base to sit on, a word beginning with a vowel sign: Devanagari
# and Devanagari Extended, Vedic Extensions.
DOTTED_CIRCLE = 0x25CC
DOTTED_CIRCLE_RANGES = ((0x0900, 0x097F), (0xA8E0, 0xA8FF), (0x1CD0, 0x1CFF))
MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})


def _dotted_circle_mark(point: int) -> bool:
    return (any(low <= point <= high for low, high in DOTTED_CIRCLE_RANGES)
            and unicodedata.category(chr(point)) in MARK_CATEGORIES)


def _font_bounds(path: Path) -> dict[int, float]:
    """Code point -> bound in em in one font file (`_glyph_bounds` of its glyph); a mark
    the shaper may draw on a dotted circle (`DOTTED_CIRCLE_RANGES`) also counts the
    font's dotted circle."""
    font = TTFont(path, lazy=True)
    try:
        units = font["head"].unitsPerEm
        bound = _glyph_bounds(font)
        cmap = font.getBestCmap() or {}
        circle = bound.get(cmap[DOTTED_CIRCLE], 0.0) if DOTTED_CIRCLE in cmap else 0.0
        return {point: (bound.get(glyph, 0.0)
                        + (circle if _dotted_circle_mark(point) else 0.0)) / units
                for point, glyph in cmap.items()}
    finally:
        font.close()


TABLE_NAME = "advance-bounds.json"


def _font_files(folder: Path) -> list[Path]:
    return [path for path in sorted(folder.iterdir()) if path.suffix.lower() in FONT_SUFFIXES]


def _digests(fonts: list[Path]) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in fonts}


def read_folder(folder: Path) -> dict[int, float]:
    """Code point -> bound in em, the largest over the folder's font files, read with
    fontTools."""
    per_point: dict[int, float] = {}
    for path in _font_files(folder):
        for point, bound in _font_bounds(path).items():
            per_point[point] = max(per_point.get(point, 0.0), bound)
    return per_point


def folder_bounds(folder: Path) -> dict[int, float]:
    """`read_folder`, from the folder's `TABLE_NAME` when it was written for exactly the
    font files the folder holds (names and sha256), else read."""
    table = folder / TABLE_NAME
    if table.is_file():
        stored = json.loads(table.read_text(encoding="utf-8"))
        if stored.get("fonts") == _digests(_font_files(folder)):
            return {int(point): math.inf if bound is None else bound
                    for point, bound in stored["bounds"].items()}
    return read_folder(folder)


def write_table(folder: Path) -> Path:
    """Write the folder's `TABLE_NAME` from its font files as they are now."""
    bounds = read_folder(folder)
    table = folder / TABLE_NAME
    table.write_text(json.dumps({
        "about": "Upper bounds of each character's advance in em over these fonts, for "
                 "Typst's fit: server/channels/advance_bounds.py writes and reads this file.",
        "fonts": _digests(_font_files(folder)),
        "bounds": {str(point): None if bounds[point] == math.inf else bounds[point]
                   for point in sorted(bounds)},
    }, indent=0, sort_keys=False) + "\n", encoding="utf-8")
    return table


@lru_cache(maxsize=32)
def advance_bounds(folders: tuple[Path, ...]) -> dict[str, float]:
    """Character -> upper bound of its width in em in any font file of `folders` (module
    docstring). Characters no font maps, `UNBOUNDED_CATEGORIES`, and characters without a
    bound (`_close`) are absent. Cached per set of folders."""
    per_point: dict[int, float] = {}
    for folder in folders:
        for point, bound in folder_bounds(folder).items():
            per_point[point] = max(per_point.get(point, 0.0), bound)
    # rounded up, and a thousandth more: a word exactly as wide as its box must not come
    # out a rounding error wider in Typst's sum
    return {chr(point): (math.ceil(bound * 1000) + 1) / 1000
            for point, bound in per_point.items()
            if bound != math.inf
            and unicodedata.category(chr(point)) not in UNBOUNDED_CATEGORIES}


_LAYOUT_FOLDERS: weakref.WeakKeyDictionary[Layout, tuple[Path, ...]] = (
    weakref.WeakKeyDictionary())


@lru_cache(maxsize=64)
def _covered(folders: tuple[Path, ...]) -> frozenset[str]:
    """The characters some font of `folders` maps (the union of their cmaps)."""
    return frozenset(chr(point) for folder in folders for point in folder_bounds(folder))


def chain_for(folders: tuple[Path, ...], chars: Iterable[str]) -> tuple[Path, ...]:
    """The shortest start of the font chain `folders` that has every character of `chars`
    the whole chain has: the folders whose fonts Typst can draw those characters with
    (module docstring). The whole chain when `folders` is empty or one folder long."""
    needed = _covered(folders).intersection(chars)
    for end in range(1, len(folders)):
        if needed <= _covered(folders[:end]):
            return folders[:end]
    return folders


def layout_advance_bounds(layout: Layout) -> dict[str, float]:
    """`advance_bounds` of the layout's font chain (`font_folders`)."""
    return advance_bounds(font_folders(layout))


def widest_word(bounds: dict[str, float], text: str) -> float | None:
    """The largest bound in em of the words of `text` (split at spaces, as `fit` splits),
    None when a character has no bound."""
    widest = 0.0
    for word in text.split(" "):
        width = 0.0
        for char in word:
            bound = bounds.get(char)
            if bound is None:
                return None
            width += bound
        widest = max(widest, width)
    return widest


# per font chain: string -> its `values` entry as the JSON text `json.dumps` writes for it
# (`"text":1.234`), or None when a character has no bound (`widest_word`); labels, places
# and descriptors recur. Emptied when it holds MAX_REMEMBERED strings
_WIDEST: dict[tuple[Path, ...], dict[str, str | None]] = {}
MAX_REMEMBERED = 100_000
# per font chain: character -> its `chars` entry as JSON text (`"a":0.612`)
_CHAR_ENTRIES: dict[tuple[Path, ...], dict[str, str]] = {}


def _entry(key: str, value: float) -> str:
    """`key: value` as `json.dumps` writes it inside a dict with `fit_bounds_json`'s
    options (ensure_ascii off, no spaces): the same escapes, the same float text."""
    return json.dumps({key: value}, ensure_ascii=False, separators=(",", ":"))[1:-1]


_ASCII = tuple(map(chr, range(0x80)))
_ASCII_RUNS = re.compile(r"[\x00-\x7f]+")


def characters(text: str) -> set[str]:
    """`set(text)`, found faster: each ASCII character looked for with a C search over
    `text` (128 searches of a few kilobytes), the rest from `text` without its ASCII runs
    (a card invoice's context JSON: 10 KB, a handful of other characters). `set(text)`
    makes a one-character string and a set insertion for each of the 10,000."""
    found = {char for char in _ASCII if char in text}
    if not text.isascii():
        found.update(_ASCII_RUNS.sub("", text))
    return found


def fit_bounds_json(layout: Layout, context_json: str) -> str:
    """What `fit` reads from `/kanal-bounds.json` (typst_engine.BOUNDS_FILE; JSON): `chars`,
    character -> bound in em, for the characters of the context and the templates' own
    (`TEMPLATE_CHARACTERS`), for values a template puts together; and `values`, each string
    of the context -> `widest_word`, so a value from data is decided with one look-up.
    Bounds over the folders the document's characters need (`chain_for`). Characters
    without a bound, and strings holding one, are left out: `fit` measures every word
    holding one.

    The text is `json.dumps` of those two dicts (ensure_ascii off, no spaces), written from
    each entry's JSON text, kept per font chain for the strings and characters that recur
    from document to document (`_WIDEST`, `_CHAR_ENTRIES`): turning some 300 floats into
    text was a third of this function's CPU per card invoice."""
    chain = _LAYOUT_FOLDERS.get(layout)
    if chain is None:
        chain = _LAYOUT_FOLDERS[layout] = font_folders(layout)
    chars = characters(context_json)
    chars.update(TEMPLATE_CHARACTERS)
    folders = chain_for(chain, chars)
    bounds = advance_bounds(folders)
    known = _WIDEST.setdefault(folders, {})
    if len(known) > MAX_REMEMBERED:
        known.clear()
    values: dict[str, str] = {}  # string -> its entry, in first-seen order as dumps keeps it
    stack: list[object] = [json.loads(context_json)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            entry = known.get(item, "")
            if entry == "":
                widest = widest_word(bounds, item)
                # bounds have 3 decimals: rounding drops only the sum's float error
                entry = known[item] = (None if widest is None
                                       else _entry(item, round(widest, 3)))
            if entry is not None:
                values[item] = entry
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    char_entries = _CHAR_ENTRIES.setdefault(folders, {})
    written = []
    for char in sorted(chars):
        entry = char_entries.get(char)
        if entry is None:
            if char not in bounds:
                continue
            entry = char_entries[char] = _entry(char, bounds[char])
        written.append(entry)
    return ('{"chars":{' + ",".join(written) + '},"values":{' + ",".join(values.values())
            + "}}")


if __name__ == "__main__":  # python -m server.channels.advance_bounds FOLDER...
    for name in sys.argv[1:]:
        print(write_table(Path(name)))
