"""SMS encoding, segments and parts, cross-checked against independent implementations.

`smsutil` (split into parts) and `gsm0338` (codec) are independent PyPI implementations of
GSM 03.38 / 3GPP TS 23.038; `regex` provides UAX #29 grapheme clusters (\\X). Known,
investigated disagreements, all on the libraries' side:
* U+001B: both libraries treat ESC as a 1-septet character; in 23.038 0x1B is the escape
  to the extension table, so we send a text containing it as UCS-2.
* the empty string: smsutil reports one empty UCS-2 part; we report GSM-7, 0 segments.
* smsutil's parts may cut a grapheme cluster where ours don't (same segment count).
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import gsm0338  # noqa: E402,F401  registers the "gsm03.38" codec
import pytest
import regex  # noqa: E402
import smsutil  # noqa: E402
from babel.numbers import format_currency  # noqa: E402
from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from server.channels.sms import (  # noqa: E402
    SmsMessage,
    SmsTooLong,
    check_segments,
    cluster_boundaries,
    encode_gsm7,
    is_gsm7,
    normalise_for_gsm,
    plan_sms,
    shorten_to_fit,
)

FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f467"  # 👩‍👩‍👧, 8 UTF-16 units, 5 code points
assert len(FAMILY.encode("utf-16-be")) // 2 == 8


# --- independent references ---------------------------------------------------------------


def reference(text: str) -> tuple[str, int, int]:
    """(encoding, units, segments) according to smsutil, units re-counted by the codecs."""
    result = smsutil.split(text)
    if result.encoding == "gsm0338":
        units = len(text.encode("gsm03.38"))  # the other library's codec: septets incl. escapes
        assert units == result.total_bytes
        return "GSM-7", units, len(result.parts)
    units = len(text.encode("utf-16-be")) // 2
    assert units * 2 == result.total_bytes
    return "UCS-2", units, len(result.parts)


def part_units(part: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return len(part.encode("gsm03.38"))
    return len(part.encode("utf-16-be")) // 2


def grapheme_boundaries(text: str) -> list[int]:
    ends, pos = [], 0
    for cluster in regex.findall(r"\X", text):
        pos += len(cluster)
        ends.append(pos)
    return ends[:-1]


def assert_invariants(message: SmsMessage) -> None:
    text = message.text
    assert "".join(message.parts) == text
    assert message.segments == len(message.parts)
    assert message.data_coding == {"GSM-7": 0, "UCS-2": 8}[message.encoding]
    assert all(message.parts)
    assert sum(part_units(p, message.encoding) for p in message.parts) == message.units
    limit = {"GSM-7": 160, "UCS-2": 70} if message.segments == 1 else {"GSM-7": 153, "UCS-2": 67}
    for part in message.parts:
        assert part_units(part, message.encoding) <= limit[message.encoding]
        # a part is encodable on its own: no escape pair or surrogate pair is split
        if message.encoding == "GSM-7":
            assert encode_gsm7(part) == part.encode("gsm03.38")
        else:
            part.encode("utf-16-be")  # strict: would fail on a lone surrogate
    if message.encoding == "GSM-7":
        assert b"".join(encode_gsm7(p) for p in message.parts) == encode_gsm7(text)


def assert_matches_reference(text: str) -> SmsMessage:
    message = plan_sms(text)
    assert_invariants(message)
    assert (message.encoding, message.units, message.segments) == reference(text)
    return message


# --- the alphabet -----------------------------------------------------------------------


def test_alphabet_matches_gsm0338_codec_for_every_code_point() -> None:
    for cp in [*range(0x0000, 0xD800), *range(0xE000, 0x10000), 0x1F600, 0x1F469]:
        ch = chr(cp)
        if cp == 0x1B:
            continue  # see module docstring: ESC is not a character
        try:
            theirs = ch.encode("gsm03.38")
        except UnicodeEncodeError:
            assert not is_gsm7(ch), f"U+{cp:04X}"
        else:
            assert is_gsm7(ch), f"U+{cp:04X}"
            assert encode_gsm7(ch) == theirs, f"U+{cp:04X}"
    basic = [ch for ch in map(chr, range(0x10000)) if is_gsm7(ch) and len(encode_gsm7(ch)) == 1]
    extension = [ch for ch in map(chr, range(0x10000)) if is_gsm7(ch) and len(encode_gsm7(ch)) == 2]
    assert len(basic) == 127  # 128 codes minus the escape 0x1B
    assert sorted(extension) == sorted("\f^{}\\[~]|€")


def test_alphabet_matches_smsutil_charset() -> None:
    from smsutil.codecs import GSM_CHARSET

    assert set(GSM_CHARSET) - {"\x1b"} == {chr(cp) for cp in range(0x10000) if is_gsm7(chr(cp))}


def test_escape_character_forces_ucs2_unlike_the_libraries() -> None:
    assert smsutil.split("a\x1bb").encoding == "gsm0338"  # the libraries' view
    message = plan_sms("a\x1bb")
    assert (message.encoding, message.units, message.data_coding) == ("UCS-2", 3, 8)


@pytest.mark.parametrize(
    "text",
    ["æøåÆØÅäöÄÖéÉüÜ£$¥§@", "Ç", "ΔΦΓΛΩΠΨΣΘΞ", "¤¡¿ßÑñàèùìò_\n\r"],
)
def test_nordic_and_other_basic_letters_are_gsm7_one_septet_each(text: str) -> None:
    message = assert_matches_reference(text)
    assert (message.encoding, message.units, message.segments) == ("GSM-7", len(text), 1)


@pytest.mark.parametrize("text", ["€", "[", "]", "{", "}", "^", "~", "\\", "|", "\f"])
def test_extension_characters_take_two_septets(text: str) -> None:
    message = assert_matches_reference(text)
    assert (message.encoding, message.units) == ("GSM-7", 2)
    assert encode_gsm7(text)[0] == 0x1B


@pytest.mark.parametrize(
    "char", ["ç", "š", "ž", "á", "“", "”", "–", "—", "\u00a0", "\u202f", "…", "`", "😀"]
)
def test_characters_outside_the_alphabet_force_ucs2(char: str) -> None:
    message = assert_matches_reference(f"Faktura fra Strøm AS {char}")
    assert (message.encoding, message.data_coding) == ("UCS-2", 8)


def test_typographic_quotes_and_dash_cost_a_segment_until_normalised() -> None:
    text = "Hei Kari! Din “Strøm Fast” faktura – 1 234,50 kr – forfaller 31.03.2025. " * 2
    typographic = assert_matches_reference(text)
    assert (typographic.encoding, typographic.units, typographic.segments) == ("UCS-2", 146, 3)
    plain = assert_matches_reference(normalise_for_gsm(text))
    assert (plain.encoding, plain.units, plain.segments) == ("GSM-7", 146, 1)


# --- segments at the boundaries -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments", "part_lengths"),
    [
        ("a" * 160, 1, [160]),
        ("a" * 161, 2, [153, 8]),
        ("æøå" * 53 + "æ", 1, [160]),
        ("æøå" * 54, 2, [153, 9]),
        ("a" * 306, 2, [153, 153]),
        ("a" * 307, 3, [153, 153, 1]),
        ("€" * 80, 1, [80]),  # 160 septets
        ("€" * 81, 2, [76, 5]),  # 76 * 2 = 152: the 77th € would straddle 153
    ],
)
def test_gsm7_segments(text: str, segments: int, part_lengths: list[int]) -> None:
    message = assert_matches_reference(text)
    assert message.encoding == "GSM-7"
    assert message.segments == segments
    assert [len(p) for p in message.parts] == part_lengths
    assert [p.content for p in smsutil.split(text).parts] == list(message.parts)


@pytest.mark.parametrize("ext", ["€", "[", "]", "{", "}"])
def test_escape_pair_at_153_boundary_moves_whole_to_next_part(ext: str) -> None:
    text = "a" * 152 + ext + "b" * 10  # septets 152..153 would straddle the boundary
    message = assert_matches_reference(text)
    assert message.units == 164
    assert message.parts == ("a" * 152, ext + "b" * 10)
    assert len(encode_gsm7(message.parts[0])) == 152
    # one septet earlier it just fits
    fits = assert_matches_reference("a" * 151 + ext + "b" * 10)
    assert fits.parts == ("a" * 151 + ext, "b" * 10)
    assert len(encode_gsm7(fits.parts[0])) == 153


@pytest.mark.parametrize(
    ("text", "segments", "part_units_expected"),
    [
        ("ç" * 70, 1, [70]),
        ("ç" * 71, 2, [67, 4]),
        ("š" * 134, 2, [67, 67]),
        ("š" * 135, 3, [67, 67, 1]),
        ("😀" * 35, 1, [70]),
        ("😀" * 36, 2, [66, 6]),  # 33 emoji = 66 units; the 34th would straddle 67
        ("a" * 66 + "😀" + "b" * 10, 2, [66, 12]),
        ("a" * 65 + "😀" + "b" * 10, 2, [67, 10]),
    ],
)
def test_ucs2_segments(text: str, segments: int, part_units_expected: list[int]) -> None:
    message = assert_matches_reference(text)
    assert message.encoding == "UCS-2"
    assert message.segments == segments
    assert [part_units(p, "UCS-2") for p in message.parts] == part_units_expected
    assert [p.content for p in smsutil.split(text).parts] == list(message.parts)


def test_empty_text_has_no_segments() -> None:
    message = plan_sms("")
    assert message == SmsMessage("", "GSM-7", 0, 0, (), 0)
    check_segments(message, 1)  # refusing an empty SMS is the renderer's job
    # smsutil disagrees (one empty UCS-2 part); nothing is sent, so 0 is right for billing
    assert len(smsutil.split("").parts) == 1


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        plan_sms("abc\ud83d")


# --- grapheme clusters ------------------------------------------------------------------


def test_zwj_sequence_straddling_67_moves_whole_when_it_costs_nothing() -> None:
    text = "a" * 60 + FAMILY + "b" * 70  # FAMILY occupies units 61..68
    message = assert_matches_reference(text)
    assert message.parts == ("a" * 60, FAMILY + "b" * 59, "b" * 11)
    # smsutil (not cluster aware) cuts the family apart, with the same segment count
    theirs = [p.content for p in smsutil.split(text).parts]
    assert len(theirs) == 3
    assert theirs[0] == "a" * 60 + FAMILY[:4]  # 👩 ZWJ 👩 ZWJ | 👧


def test_zwj_sequence_is_cut_when_keeping_it_would_cost_a_segment() -> None:
    text = "a" * 60 + FAMILY + "b" * 65  # 133 units: 66 + 67 if cut after the second ZWJ
    message = assert_matches_reference(text)
    assert message.segments == 2
    assert message.parts == ("a" * 60 + FAMILY[:4], FAMILY[4:] + "b" * 65)
    # the surrogate pair of 👧 is still whole
    assert FAMILY[4] == "\U0001f467"


SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


@pytest.mark.parametrize("cluster", ["🇳🇴", "👍🏽", "❤️", "e\u0301", "\r\n", SCOTLAND, FAMILY])
def test_clusters_straddling_the_boundary_stay_in_one_part(cluster: str) -> None:
    gsm = is_gsm7(cluster)
    filler, limit = ("a", 153) if gsm else ("ç", 67)
    units = part_units(cluster, "GSM-7" if gsm else "UCS-2")
    for offset in range(1, units):  # every position where the cut would fall inside it
        text = filler * (limit - offset) + cluster + filler * 80
        message = assert_matches_reference(text)
        assert message.parts[0] == filler * (limit - offset)
        assert message.parts[1].startswith(cluster)


CLUSTERS = [
    "a", "å", "€", " ", "ç", "e\u0301", "😀", FAMILY, "👍🏽", "🇳🇴", "🇸🇪", "❤️", "\r\n", "\n",
    "ก\u0e33", "क\u094d\u0937",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(CLUSTERS), max_size=120))
def test_cluster_boundaries_agree_with_regex(clusters: list[str]) -> None:
    text = "".join(clusters)
    assert cluster_boundaries(text) == grapheme_boundaries(text)


# --- invariants over random text ----------------------------------------------------------

ALPHABET = st.sampled_from(
    [*"abcæøåÆØÅ @£$¥§ÄÖéÉüÜ\n\r0123456789.,", *"€[]{}^~\\|\f", "ç", "š", "“", "–", "\u00a0"]
    + ["😀", "\u200d", "\U0001f469", "\U0001f3fd", "\u0301", "\U0001f1f3", "\U0001f1f4", "\ufe0f"]
)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.lists(ALPHABET, max_size=500).map("".join),
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1b")),
        st.lists(st.sampled_from([*"ab€[", "æ"]), min_size=140, max_size=700).map("".join),
        st.lists(st.sampled_from(CLUSTERS), max_size=200).map("".join),
    )
)
@example("")
@example("a" * 161)
def test_plan_matches_smsutil_and_invariants_hold(text: str) -> None:
    if not text:
        assert plan_sms(text).segments == 0
        return
    message = assert_matches_reference(text)
    # parts keep grapheme clusters whole whenever that needs no extra segment
    plain = [p.content for p in smsutil.split(text).parts]
    boundaries = set(grapheme_boundaries(text))
    cuts = [len("".join(message.parts[: i + 1])) for i in range(message.segments - 1)]
    if not set(cuts) <= boundaries:
        # cutting a cluster only happens when smsutil's plain split cuts one too
        theirs = [len("".join(plain[: i + 1])) for i in range(len(plain) - 1)]
        assert not set(theirs) <= boundaries


# --- check_segments -----------------------------------------------------------------------


def test_check_segments() -> None:
    check_segments(plan_sms("a" * 306), 2)
    with pytest.raises(SmsTooLong) as info:
        check_segments(plan_sms("a" * 307), 2)
    assert (info.value.segments, info.value.max_segments) == (3, 2)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError):
        check_segments(plan_sms("a"), 0)


# --- shorten_to_fit -----------------------------------------------------------------------

BEFORE = "Faktura 2025-0012 fra Strøm AS: "
DESCRIPTION = "Nettleie og energi for perioden januar til mars med påslag og fastbeløp. " * 6
AFTER = " Å betale 1 234,50 kr innen 31.03. KID 1234567890"


def test_shorten_returns_the_whole_text_when_it_fits() -> None:
    assert shorten_to_fit("Hei ", "Ola", "!", 1) == "Hei Ola!"


def test_shorten_gsm7_uses_three_dots_and_cuts_at_a_word() -> None:
    result = shorten_to_fit(BEFORE, DESCRIPTION, AFTER, 1)
    message = assert_matches_reference(result)
    assert (message.encoding, message.segments) == ("GSM-7", 1)
    assert result.startswith(BEFORE) and result.endswith("..." + AFTER)
    kept = result[len(BEFORE) : -len("..." + AFTER)]
    assert DESCRIPTION.startswith(kept) and DESCRIPTION[len(kept)] == " "
    # the next word would not have fitted
    next_word_end = DESCRIPTION.index(" ", len(kept) + 1)
    assert plan_sms(BEFORE + DESCRIPTION[:next_word_end] + "..." + AFTER).segments > 1


def test_shorten_keeps_the_given_ellipsis_when_the_rest_is_ucs2() -> None:
    result = shorten_to_fit("Hei 👋 ", DESCRIPTION, AFTER, 1)
    message = assert_matches_reference(result)
    assert (message.encoding, message.segments) == ("UCS-2", 1)
    assert result.endswith("…" + AFTER) and "..." not in result


def test_shorten_prefers_gsm7_when_dropping_the_ucs2_character_keeps_more() -> None:
    shortenable = "ord " * 60 + "ç" + " mer tekst" * 20
    result = shorten_to_fit("", shortenable, "", 1)
    message = plan_sms(result)
    assert (message.encoding, message.segments) == ("GSM-7", 1)
    assert result.endswith("...") and "ç" not in result
    assert message.units > 150


def test_shorten_uses_ucs2_when_the_ucs2_character_fits() -> None:
    shortenable = "Brød ç " + "ordene " * 40
    result = shorten_to_fit("", shortenable, "", 1)
    assert "ç" in result and result.endswith("…")
    assert plan_sms(result).segments == 1


def test_shorten_cuts_a_long_word_in_the_middle() -> None:
    result = shorten_to_fit("Se ", "https://example.com/" + "x" * 400, "", 1)
    assert plan_sms(result).units == 160
    assert result.endswith("x...")


def test_shorten_never_cuts_a_cluster() -> None:
    result = shorten_to_fit("Hei ", FAMILY * 20, "", 1)
    assert result.endswith("…")
    kept = result[len("Hei ") : -1]
    assert kept and kept == FAMILY * (len(kept) // len(FAMILY))
    assert plan_sms(result).segments == 1


def test_shorten_drops_everything_but_the_ellipsis() -> None:
    before = "a" * 157  # + "..." = 160 septets, no room for a single "b"
    assert shorten_to_fit(before, "bbbbbbbbbb", "", 1) == before + "..."
    assert shorten_to_fit("a" * 159, "bbbbbbbbbb", "", 1) == "a" * 159


def test_shorten_raises_when_even_the_fixed_text_does_not_fit() -> None:
    with pytest.raises(SmsTooLong) as info:
        shorten_to_fit("a" * 200, "b", "", 1)
    assert (info.value.segments, info.value.max_segments) == (2, 1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(ALPHABET, max_size=120).map("".join),
    st.lists(st.sampled_from([*"abc æ€", "ç", "😀", FAMILY]), max_size=600).map("".join),
    st.lists(ALPHABET, max_size=120).map("".join),
    st.integers(1, 3),
    st.sampled_from(["…", "..."]),
)
def test_shorten_invariants(
    before: str, shortenable: str, after: str, max_segments: int, ellipsis: str
) -> None:
    try:
        result = shorten_to_fit(before, shortenable, after, max_segments, ellipsis)
    except SmsTooLong:
        assert plan_sms(before + after).segments > max_segments
        return
    assert plan_sms(result).segments <= max_segments
    assert result.startswith(before) and result.endswith(after)
    middle = result[len(before) : len(result) - len(after)]
    if middle in (shortenable, ""):  # whole, or nothing fits, not even the ellipsis
        return
    used = next(e for e in ("...", "…") if middle.endswith(e))
    kept = middle[: -len(used)]
    assert shortenable.startswith(kept)
    assert kept == kept.rstrip()
    # "…" only where the rest needs UCS-2 anyway, "..." only where it's GSM-7 or asked for
    rest_gsm = is_gsm7(before + kept + after)
    assert used == ("..." if rest_gsm or ellipsis == "..." else "…")


@settings(max_examples=200, deadline=None)
@given(
    st.text("abæ€ ", max_size=40),
    st.lists(st.sampled_from([*"abcæ€[", "ç", "😀", FAMILY, "🇳🇴"]), max_size=300).map("".join),
    st.integers(1, 2),
)
def test_shorten_keeps_as_much_as_possible_without_spaces(
    before: str, shortenable: str, max_segments: int
) -> None:
    try:
        result = shorten_to_fit(before, shortenable, "", max_segments)
    except SmsTooLong:
        return
    if result == before + shortenable:
        return
    kept = result[len(before) :].removesuffix("...").removesuffix("…")
    assert shortenable.startswith(kept)
    # no longer cut (at the next cluster boundary) would have fitted, with either ellipsis
    longer = [k for k in cluster_boundaries(shortenable) if k > len(kept)]
    if longer:
        for ellipsis in ("...", "…"):
            candidate = before + shortenable[: longer[0]] + ellipsis
            assert plan_sms(candidate).segments > max_segments


# --- normalise_for_gsm --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "currency"),
    [("nb_NO", "NOK"), ("sv_SE", "SEK"), ("da_DK", "DKK"), ("fi_FI", "EUR"), ("fr_FR", "EUR"),
     ("de_CH", "CHF")],
)  # fmt: skip
def test_babel_amounts_become_gsm7(locale: str, currency: str) -> None:
    # Whatever spaces and signs this Babel release uses (they change between releases: CLDR
    # moved de_CH's CHF to plain spaces), the normalised amount is pure GSM-7, same length.
    for amount in (Decimal("1234.50"), Decimal("-1234567.89")):
        formatted = format_currency(amount, currency, locale=locale)
        text = f"Beløp: {formatted}"
        normalised = normalise_for_gsm(text)
        assert plan_sms(normalised).encoding == "GSM-7", repr(normalised)
        assert len(normalised) == len(text)


def test_normalise_typography() -> None:
    raw = "«Hei» “Ola” ‘x’ – 5 − 3 … 1\u00a0234\u202f5\u00ad `a`\tb"
    assert normalise_for_gsm(raw) == "\"Hei\" \"Ola\" 'x' - 5 - 3 ... 1 234 5 'a' b"
    assert is_gsm7(normalise_for_gsm(raw))


def test_normalise_composes_decomposed_letters_and_keeps_other_letters() -> None:
    decomposed = unicodedata.normalize("NFD", "Blåbær Øst Ærlig")
    assert plan_sms(decomposed).encoding == "UCS-2"
    assert plan_sms(normalise_for_gsm(decomposed)).encoding == "GSM-7"
    # names are not transliterated
    assert normalise_for_gsm("François Šárka 😀") == "François Šárka 😀"
