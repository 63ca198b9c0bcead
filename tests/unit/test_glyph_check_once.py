"""The plan asks the print fonts once per document: print, the mailbox copy, the e-mail with
its PDF and Factur-X carry the same print PDF (server/channels/__init__.py `_print_glyphs`),
and the answer kept is never another document's."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import server.channels as channels
from server.channels import channel_unfit
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _composed(name: str, channels_: tuple[Channel, ...] = (Channel.SMS,)):
    layout = LAYOUTS.get("card-invoice")
    data = json.loads((layout.path / "sample.json").read_text(encoding="utf-8"))
    data["customer"]["name"] = name
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="d", now=NOW, channels=channels_)), layout


def test_one_glyph_check_for_every_channel_that_carries_the_print_pdf(monkeypatch) -> None:
    composition, layout = _composed("Kari Nordmann")
    calls = []
    real = channels.check_glyphs
    monkeypatch.setattr(channels, "check_glyphs",
                        lambda c, lay: calls.append(c) or real(c, lay))
    for channel in (Channel.PRINT, Channel.MAILBOX, Channel.EMAIL, Channel.EINVOICE):
        assert channel_unfit(composition, layout, channel) is None
    assert calls == [composition]


def test_another_document_gets_its_own_answer() -> None:
    fine, layout = _composed("Kari Nordmann")
    boxes, _ = _composed("李小龍")
    for _ in range(2):
        assert channel_unfit(fine, layout, Channel.PRINT) is None
        unfit = channel_unfit(boxes, layout, Channel.PRINT)
        assert unfit is not None and "U+674E" in unfit.reason
        assert channel_unfit(fine, layout, Channel.MAILBOX) is None
        assert channel_unfit(boxes, layout, Channel.EINVOICE) is not None


def test_a_character_the_fonts_lack_is_one_violation_whatever_channels_carry_the_pdf() -> None:
    # print and the e-mail's attached PDF are refused for the same three letters: the caller
    # reads the field once (naming its three characters), not once per channel or letter
    try:
        _composed("李小龍", (Channel.PRINT, Channel.EMAIL))  # no CJK font (Arabic has one)
    except InvalidInput as error:
        violations = error.violations
    else:
        raise AssertionError("a Chinese name was printed without a CJK font")
    [violation] = violations
    assert violation.field == "$.customer.name"
    assert violation.description.startswith(
        "3 characters cannot be printed: U+674E (李), U+5C0F (小) and U+9F8D (龍): no glyph in "
        "the print fonts ("), violation


def test_the_renderer_does_not_walk_the_strings_the_plan_walked(monkeypatch) -> None:
    """The composer's channel check and the print renderer ask `_all_drawn` of the same
    document one after the other: the shown strings are walked once for both, and a
    document whose context is another object (`printable`'s copy, the next document) is
    walked again."""
    import server.channels.glyphs as glyphs

    fine, layout = _composed("Kari Nordmann")
    other, _ = _composed("Ola Nordmann")
    walks = []
    real = glyphs._shown_characters
    monkeypatch.setattr(glyphs, "_shown_characters",
                        lambda c: walks.append(c.context) or real(c))
    assert glyphs.check_glyphs(fine, layout) is None
    assert glyphs.print_composition(fine, layout) is fine
    assert walks == [fine.context]
    assert glyphs.print_composition(other, layout) is other  # not the last one's answer
    assert walks == [fine.context, other.context]
    boxes, _ = _composed("李小龍")
    with pytest.raises(InvalidInput, match="U\\+674E"):
        glyphs.print_composition(boxes, layout)


def test_the_walk_reads_text_under_any_mapping_sequence_or_str_subclass() -> None:
    """`_shown_characters` takes plain dicts, lists and tuples by their exact type and skips
    numbers, dates and None unread; text under other mappings and in str subclasses (a
    template's Markup) is still read."""
    from dataclasses import replace
    from datetime import date
    from decimal import Decimal
    from types import MappingProxyType

    from markupsafe import Markup

    import server.channels.glyphs as glyphs

    fine, _ = _composed("Kari Nordmann")
    context = MappingProxyType({
        "a": ["Å", ("é", {"b": MappingProxyType({"c": Markup("Ø<b>")})})],
        "d": [Decimal("1.5"), date(2026, 1, 2), None, True, 3, 2.5, "plain ascii"],
        "e": "\u0041\u030a",  # A + combining ring: NFC-composed as the fonts are asked
    })
    assert glyphs._shown_characters(replace(fine, context=context, campaigns=())) == {
        "Å", "é", "Ø", "<", "b", ">"}
