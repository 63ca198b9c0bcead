"""No payment identifier of the printed b2b invoice breaks inside itself (QA; fixed in 2.7.0,
the default), with both engines, in every locale of the layout.

QA printed the da-DK sample of 2.6.0: its facts box set the FIK code line (the "Betalings-id
(FIK)") over two lines, "+71<000300245026012+854" and "61234<" (Typst; WeasyPrint broke it
after "+8"), inside the creditor number; its de-DE and de-AT payment sentences broke the RF
reference ("RF96 5002" / "8826 0"). A payer keys in an identifier as one string: broken, it
reads as two. 2.7.0 keeps each whole: the account (IBAN, Norwegian account, bankgiro, Polish
NRB, a UK sort code and account number), the payment reference of every scheme but free text
(KID, OCR, FIK code line, Finnish, RF, UK reference), the FIK code line under the payment
sentence and the digits of the Finnish virtual bar code; a reference too long to stand beside
its label in the facts box goes on a line of its own under it. Free text (a Polish transfer
title, a German Verwendungszweck) wraps between its words as before.

Read from the rendered PDF's first page (tests/pdf_inspect.py): pdfium starts a new line
where the baseline changes, so an identifier broken over two lines is whole on none of them.
Where a sample's sentence fits its line anyway, print.html's markup says whether it could
break: each identifier in a span that never wraps.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import cache
from html import unescape

import pytest

from server.channels.pdf import render_print
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_inspect import normalise, pages_lines
from tests.print_engines import print_engines

LAYOUTS = shipped()
VERSION, OLD = "2.7.0", "2.6.0"
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ENGINES = ("typst", "weasyprint")
LOCALES = LAYOUTS.get("b2b-invoice", VERSION).sample_locales
CASES = [(locale, engine) for locale in LOCALES for engine in ENGINES]
# The longest payment reference each locale's scheme takes (server/compose/references.py),
# for the facts box, where it cannot stand beside its label: KID 25 digits, OCR 25 with its
# length and check digits, FIK's fixed 29 characters, a Finnish reference of 20 digits, an
# RF reference of 25 characters (its body 21 digits), a UK reference of 18 characters.
# pl-PL pays by a transfer title: free text, which may wrap.
LONGEST = {
    "nb-NO": {"reference_base": "1" * 24},
    "sv-SE": {"reference_base": "1" * 23},
    "da-DK": {},
    "fi-FI": {"reference_base": "1" * 19},
    "sv-FI": {"reference_base": "1" * 19},
    "de-DE": {"reference_base": "1" * 21},
    "de-AT": {"reference_base": "1" * 21},
    "en-GB": {"reference": "WWW 2026/000123456"},
}


def test_the_default_is_the_version_with_the_fix():
    # 2.8.0, the default: 2.7.0 whose return line fits its box (tests/unit/
    # test_b2b_return_line.py); its samples print as 2.7.0's
    assert LAYOUTS.get("b2b-invoice").version == "2.8.0"
    assert tuple(LOCALES) == ("nb-NO", "sv-SE", "da-DK", "fi-FI", "sv-FI", "de-DE", "de-AT",
                              "pl-PL", "en-GB")
    assert tuple(LONGEST) == tuple(locale for locale in LOCALES if locale != "pl-PL")


@cache
def printed(version: str, locale: str, engine: str, payment: str = "{}") -> tuple[dict, list]:
    """The context and the first page's lines of the locale's sample, its `payment` updated
    with the JSON object `payment`, through the print channel (glyphs and preflight)."""
    layout = LAYOUTS.get("b2b-invoice", version)
    data = json.loads(layout.sample_data(locale))
    data["payment"].update(json.loads(payment))
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JB2BIDS", now=NOW,
        locale=locale, channels=(Channel.PRINT,)))
    pdf = render_print(composition, layout, print_engines(engine, layout)).content
    return composition.context, pages_lines(pdf)[0]


def identifiers(context: dict) -> dict[str, tuple[str, int]]:
    """name: (identifier as printed, how often the first page shows it at least)."""
    payment = context["payment"]
    slip = payment["slip"] or {}
    found = {"account": (payment["account"], 1),  # the payment sentence
             "sort code": (payment["sort_code"], 1),
             "FIK code line": (slip.get("code_line"), 1),  # under the sentence
             "virtual bar code": (slip.get("barcode_text"), 1)}
    if payment["reference_label"] != context["labels"]["reference_text"]:  # not free text
        found["reference"] = (payment["reference"], 2)  # the facts box and the sentence
    return {name: (normalise(value), least) for name, (value, least) in found.items() if value}


def broken(context: dict, lines: list[str]) -> dict[str, tuple[int, int]]:
    """name: (times whole on a line, times broken over two lines) of each identifier broken
    or shown less often than it should be. Broken: found in two consecutive lines put
    together, at one of its spaces ("RF96 5002" / "8826 0") or between two characters
    ("+71<000300245026012+854" / "61234<"), but in neither line alone."""
    faults = {}
    for name, (value, least) in identifiers(context).items():
        whole = sum(line.count(value) for line in lines)
        split = sum((first + joint + second).count(value) - first.count(value)
                    - second.count(value)
                    for first, second in zip(lines, lines[1:], strict=False) for joint in ("", " "))
        if split or whole < least:
            faults[name] = (whole, split)
    return faults


@pytest.mark.parametrize(("locale", "engine"), CASES)
def test_no_identifier_of_a_sample_breaks(locale, engine):
    context, lines = printed(VERSION, locale, engine)
    assert {"account", "reference"} <= set(identifiers(context)) or locale == "pl-PL"
    assert broken(context, lines) == {}, lines


@pytest.mark.parametrize(("locale", "engine"),
                         [(locale, engine) for locale in LONGEST for engine in ENGINES])
def test_the_longest_reference_of_each_scheme_stays_whole(locale, engine):
    context, lines = printed(VERSION, locale, engine, json.dumps(LONGEST[locale]))
    reference = context["payment"]["reference"]
    assert len(reference) >= (18 if locale == "en-GB" else 23), reference
    assert broken(context, lines) == {}, lines
    # in the facts box beside its label or, when too long for that, under it
    label = normalise(context["payment"]["reference_label"])
    [at] = [i for i, line in enumerate(lines) if line.startswith(label)]
    assert normalise(reference) in (lines[at], lines[at + 1]) or \
        lines[at] == f"{label} {normalise(reference)}", lines[at:at + 2]


@pytest.mark.parametrize(("locale", "reference"), [*((locale, None) for locale in LOCALES),
                                                   ("en-GB", "FJB & CO/1")])
def test_the_html_sentence_holds_each_identifier_in_a_span_that_never_wraps(locale, reference):
    # where a sample's sentence fits its line the PDF cannot tell: print.html's markup does
    # (print.css .whole: white-space nowrap); "&" and the FIK code line's "<" are escaped
    layout = LAYOUTS.get("b2b-invoice", VERSION)
    data = json.loads(layout.sample_data(locale))
    if reference:
        data["payment"]["reference"] = reference
    composition = compose(ComposeRequest(
        tenant="t", layout=layout, data=json.dumps(data), document_id="01JB2BIDS", now=NOW,
        locale=locale, channels=(Channel.PRINT,)))
    html = print_engines("weasyprint", layout).engine("weasyprint").render_html(
        layout, composition)
    [sentence] = re.findall(r'<div class="pay">(.*?)</div>', html, re.S)
    whole = {unescape(span) for span in re.findall(r'<span class="whole">(.*?)</span>', sentence)}
    expected = {value for name, (value, _) in identifiers(composition.context).items()
                if name in ("account", "sort code", "reference")}
    assert expected and expected <= {normalise(span) for span in whole}, sentence


@pytest.mark.parametrize(("locale", "engine"),
                         [(locale, engine) for locale in LOCALES for engine in ENGINES
                          if locale not in ("da-DK", "de-DE", "de-AT")])
def test_the_other_samples_read_line_by_line_as_in_2_6_0(locale, engine):
    # where 2.6.0 broke no identifier, 2.7.0 sets every line as it did; pl-PL's transfer
    # title (free text, not an identifier) wraps between its words as before
    assert printed(VERSION, locale, engine)[1] == printed(OLD, locale, engine)[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_2_6_0_broke_the_fik_code_line_and_the_rf_reference(engine):
    # what QA saw, which 2.6.0 (released, immutable) still prints
    context, lines = printed(OLD, "da-DK", engine)
    assert broken(context, lines) == {"reference": (1, 1)}, lines
    for locale in ("de-DE", "de-AT"):
        context, lines = printed(OLD, locale, engine)
        assert broken(context, lines) == {"reference": (1, 1)}, lines
