"""SMS planning: encoding, unit count, segments and the exact parts a text is sent as.

Pure functions, no I/O. The SMS channel renderer renders `sms.txt`, passes the result
through `normalise_for_gsm` (always: it only replaces typography that would otherwise
force UCS-2, see below), refuses an empty text, then calls `plan_sms` and
`check_segments`; `shorten_to_fit` is for templates that mark one field (e.g. the
invoice description) as shortenable. Delivery (SMPP 3.4 `submit_sm` with a UDH, or an
HTTP gateway) sends `SmsMessage.parts` with `SmsMessage.data_coding`.

What turns into what (3GPP TS 23.038, formerly GSM 03.38):

* GSM-7, SMPP data_coding 0. Used when every character is in the default alphabet
  (128 characters, 1 septet each, incl. æøåÆØÅäöÄÖéÉüÜ£$¥§@ and capital Ç) or in its
  extension table (form feed ^ { } \\ [ ~ ] | €: 2 septets each, escape 0x1B + code).
  `units` counts septets. Only the default alphabet and its default extension table are
  used: the national language shift tables (23.038 6.2.1.2) need a UDH element that
  Nordic operators and handsets don't reliably support, and no Nordic language needs them.
* UCS-2, SMPP data_coding 8. Any other character (ç, š, ž, á, typographic quotes and
  dashes, no-break spaces, emoji ...) forces it for the whole message: one message
  has one data coding. What handsets actually decode is UTF-16BE, so a character
  outside the BMP (most emoji) takes two units, a surrogate pair. `units` counts UTF-16
  code units. A lone surrogate in the text cannot be sent and raises ValueError.
* U+001B (ESC) is not a character of the alphabet - 0x1B is the escape to the
  extension table - so a literal ESC forces UCS-2. (The `smsutil` and `gsm0338` PyPI
  packages both accept it as a 1-septet character; on the air it would be read as an
  escape and swallow the next character, so they are wrong there.)

Segments: a single message holds 160 septets or 70 UCS-2 units. A longer text is
concatenated: each part carries a 6-octet UDH (8-bit reference), leaving 153 septets
(140 octets * 8 / 7 = 160, minus 7 septets for UDH + fill bits) or 67 units (134 octets).
An extension character's escape pair and a surrogate pair are never split: the whole
character moves to the next part. `units` of an empty text is 0 and it has 0 segments
and no parts (nothing can be sent; the renderer refuses it before planning).

Grapheme clusters (decision): parts are preferably cut between user-perceived characters,
so that a ZWJ family 👩‍👩‍👧, a flag 🇳🇴, a skin-tone emoji or a letter + combining mark
stays in one part - which matters when a handset shows parts separately (failed
reassembly, some old phones). Operators don't require it, so it must not cost money:
the cluster-respecting split is used only when it needs no more segments than the plain
split by characters; otherwise the plain split (still never splitting an escape or a
surrogate pair) is used. Either way `segments` is the minimum any gateway would need.
Cluster boundaries follow UAX #29 without the Hangul and Prepend rules (irrelevant here)
and with one conservative simplification: no break directly after a ZWJ.

Parts and the 160/70 single limit: the text of each part is given as sent; joined they are
exactly the text. GSM-7 septet packing and the CR padding of 23.038 6.1.2.3.1 are the
SMSC's or the delivery layer's concern and do not change the counts.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# 3GPP TS 23.038 6.2.1 default alphabet in code order 0x00..0x7F. 0x1B is the escape to the
# extension table, not a character, hence None.
_GSM7_BASIC: tuple[str | None, ...] = (
    *"@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ",
    None,
    *"ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?",
    *"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§",
    *"¿abcdefghijklmnopqrstuvwxyzäöñüà",
)
# 23.038 6.2.1.1 default extension table: sent as 0x1B + code. 0x0D (CR2) and 0x1B (SS2)
# are control codes without a Unicode character.
_GSM7_EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_ESC = 0x1B
assert len(_GSM7_BASIC) == 128

# character -> its septets as sent (1 for the basic set, 2 for escape + extension code)
_GSM7_CODES: dict[str, bytes] = {
    **{ch: bytes((code,)) for code, ch in enumerate(_GSM7_BASIC) if ch is not None},
    **{ch: bytes((_ESC, code)) for ch, code in _GSM7_EXTENSION.items()},
}

SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
PART_LIMIT = {GSM7: 153, UCS2: 67}
DATA_CODING = {GSM7: 0, UCS2: 8}
# The concatenation UDH (8-bit reference) numbers parts with one octet.
MAX_CONCATENATED_PARTS = 255


@dataclass(frozen=True, slots=True)
class SmsMessage:
    text: str
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text
    segments: int
    parts: tuple[str, ...]  # the text of each part as sent
    data_coding: int  # SMPP data_coding: 0 for GSM-7 default alphabet, 8 for UCS-2


class SmsTooLong(ValueError):
    """The text needs more segments than the template / tenant allows."""

    def __init__(self, segments: int, max_segments: int, message: str | None = None) -> None:
        super().__init__(message or f"SMS needs {segments} segments, at most {max_segments}")
        self.segments = segments
        self.max_segments = max_segments


# --- encoding -----------------------------------------------------------------------------


def is_gsm7(text: str) -> bool:
    """True if every character is in the default alphabet or its extension table."""
    return all(ch in _GSM7_CODES for ch in text)


def encode_gsm7(text: str) -> bytes:
    """The unpacked septets (one per octet, escape pairs included) as SMPP data_coding 0
    carries them. Raises ValueError for a character outside the alphabet."""
    try:
        return b"".join(_GSM7_CODES[ch] for ch in text)
    except KeyError as exc:
        raise ValueError(f"not in the GSM 03.38 alphabet: {exc.args[0]!r}") from None


_GSM7_BY_CODE = {code: ch for code, ch in enumerate(_GSM7_BASIC) if ch is not None}
_GSM7_EXTENSION_BY_CODE = {code: ch for ch, code in _GSM7_EXTENSION.items()}


def decode_gsm7(octets: bytes) -> str:
    """GSM-7 septets, one an octet as SMPP carries them (data_coding 0) -> text: the
    inverse of `encode_gsm7`, for mobile-originated messages. An escape before an unknown
    code reads as a space (23.038 6.2.1.1: the receiver shows the basic-set character's
    place as a space when it has no extension character)."""
    text, escaped = [], False
    for octet in octets:
        code = octet & 0x7F
        if escaped:
            text.append(_GSM7_EXTENSION_BY_CODE.get(code, " "))
            escaped = False
        elif code == _ESC:
            escaped = True
        else:
            text.append(_GSM7_BY_CODE.get(code, "?"))
    return "".join(text)


def _weights(text: str, encoding: str) -> list[int]:
    """Units each code point takes: septets for GSM-7, UTF-16 code units for UCS-2."""
    if encoding == GSM7:
        return [len(_GSM7_CODES[ch]) for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _check_no_lone_surrogate(text: str) -> None:
    for i, ch in enumerate(text):
        if 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError(f"lone surrogate U+{ord(ch):04X} at index {i} cannot be sent")


# --- grapheme cluster boundaries ------------------------------------------------------------

_ZWJ = 0x200D
# Indic_Conjunct_Break=Linker: the viramas of Devanagari, Bengali, Gujarati, Oriya, Telugu,
# Malayalam
_INDIC_LINKERS = frozenset((0x094D, 0x09CD, 0x0ACD, 0x0B4D, 0x0C4D, 0x0D4D))


def _is_control(ch: str) -> bool:
    # UAX #29 Control: Cc, Zl, Zp and Cf except ZWNJ/ZWJ and the tag characters (Extend).
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Zl", "Zp"):
        return True
    cp = ord(ch)
    return cat == "Cf" and cp not in (0x200C, _ZWJ) and not 0xE0020 <= cp <= 0xE007F


def _is_extend(ch: str) -> bool:
    # Extend, ZWJ and SpacingMark (GB9, GB9a): never the start of a cluster. Emoji modifiers
    # (skin tones) are Extend by UAX #29 although their category is Sk; Thai and Lao AM
    # are SpacingMark although their category is Lo.
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or cp in (0x200C, _ZWJ, 0x0E33, 0x0EB3)
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def cluster_boundaries(text: str) -> list[int]:
    """Indices 1..len-1 between two grapheme clusters (simplified UAX #29, see module doc)."""
    out: list[int] = []
    ri_run = 0  # regional indicators in a row ending at i-1 (GB12/13 pair them)
    for i in range(1, len(text)):
        prev, cur = text[i - 1], text[i]
        ri_run = ri_run + 1 if _is_regional_indicator(prev) else 0
        if prev == "\r" and cur == "\n":  # GB3
            continue
        if _is_control(prev) or _is_control(cur):  # GB4, GB5
            out.append(i)
            continue
        if _is_extend(cur):  # GB9, GB9a
            continue
        if ord(prev) == _ZWJ:  # GB11, simplified: whatever follows a ZWJ is joined
            continue
        if ord(prev) in _INDIC_LINKERS and unicodedata.category(cur) == "Lo":
            continue  # GB9c, simplified: a virama joins the next consonant (क्ष)
        if _is_regional_indicator(cur) and ri_run % 2 == 1:  # GB12, GB13
            continue
        out.append(i)
    return out


# --- splitting ------------------------------------------------------------------------------


def _greedy_split(prefix: Sequence[int], allowed: Sequence[int], limit: int) -> list[int] | None:
    """Cut positions of the greedy split: each part as long as `limit` allows, cut only at
    `allowed` (sorted indices). Greedy gives the fewest parts for a given set of allowed
    cuts. None if some stretch between allowed cuts is longer than `limit`."""
    allowed_units = [prefix[p] for p in allowed]
    cuts: list[int] = []
    start = 0
    n = len(prefix) - 1
    while prefix[n] - prefix[start] > limit:
        # the last allowed cut whose part still fits
        j = bisect.bisect_right(allowed_units, prefix[start] + limit) - 1
        if j < 0 or allowed[j] <= start:
            return None
        start = allowed[j]
        cuts.append(start)
    return cuts


def plan_sms(text: str) -> SmsMessage:
    """Encoding, units, segments and parts of `text` exactly as it would be sent."""
    _check_no_lone_surrogate(text)
    encoding = GSM7 if is_gsm7(text) else UCS2
    weights = _weights(text, encoding)
    prefix = [0]
    for w in weights:
        prefix.append(prefix[-1] + w)
    units = prefix[-1]

    if not text:
        parts: tuple[str, ...] = ()
    elif units <= SINGLE_LIMIT[encoding]:
        parts = (text,)
    else:
        limit = PART_LIMIT[encoding]
        # Any code point boundary keeps escape pairs (one code point) and surrogate pairs
        # (one code point in a Python str) whole, and every code point fits a part.
        by_char = _greedy_split(prefix, range(1, len(text)), limit)
        assert by_char is not None
        by_cluster = _greedy_split(prefix, cluster_boundaries(text), limit)
        # Keep clusters whole only when it costs no extra segment (see module docstring).
        cuts = by_cluster if by_cluster is not None and len(by_cluster) == len(by_char) else by_char
        bounds = [0, *cuts, len(text)]
        parts = tuple(text[a:b] for a, b in pairwise(bounds))

    return SmsMessage(
        text=text,
        encoding=encoding,
        units=units,
        segments=len(parts),
        parts=parts,
        data_coding=DATA_CODING[encoding],
    )


def _check_max(max_segments: int) -> None:
    if not 1 <= max_segments <= MAX_CONCATENATED_PARTS:
        raise ValueError(f"max_segments must be 1..{MAX_CONCATENATED_PARTS}, not {max_segments}")


def check_segments(message: SmsMessage, max_segments: int) -> None:
    """Raise SmsTooLong if the message needs more than `max_segments` segments.

    An empty message (0 segments) passes; refusing it is the renderer's job."""
    _check_max(max_segments)
    if message.segments > max_segments:
        raise SmsTooLong(message.segments, max_segments)


# --- shortening -----------------------------------------------------------------------------

_GSM_ELLIPSIS = "..."


def _fits(text: str, max_segments: int) -> bool:
    return plan_sms(text).segments <= max_segments


def _last_fitting(candidates: Sequence[int], fits: Callable[[int], bool]) -> int | None:
    """Largest k in the sorted `candidates` with fits(k), assuming fits is monotone
    (true up to some k, false after). Binary search: shortenable text can be long."""
    lo, hi = 0, len(candidates)  # invariant: candidates[:lo] fit, candidates[hi:] don't
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(candidates[mid]):
            lo = mid + 1
        else:
            hi = mid
    return candidates[lo - 1] if lo else None


def shorten_to_fit(
    fixed_before: str,
    shortenable: str,
    fixed_after: str,
    max_segments: int,
    ellipsis: str = "…",
) -> str:
    """fixed_before + shortenable + fixed_after, with shortenable cut (and the ellipsis
    appended) as little as needed to fit `max_segments`.

    * Nothing is cut if the whole text fits.
    * The cut keeps as many characters as possible, then moves back to the last word
      boundary if that keeps at least half of them (a long URL or account number is cut
      mid-word instead of being dropped); whitespace before the ellipsis is dropped.
      Cuts are never inside a grapheme cluster (so never inside a surrogate pair).
    * The ellipsis must not force UCS-2: when the rest of the result is GSM-7 and the
      ellipsis isn't, "..." is used instead.
    * If nothing of `shortenable` fits, the result is fixed_before + ellipsis + fixed_after,
      or without the ellipsis if even that doesn't fit.
    * Raises SmsTooLong if fixed_before + fixed_after alone doesn't fit.
    """
    _check_max(max_segments)
    whole = fixed_before + shortenable + fixed_after
    if _fits(whole, max_segments):
        return whole
    fixed = fixed_before + fixed_after
    if not _fits(fixed, max_segments):
        raise SmsTooLong(plan_sms(fixed).segments, max_segments)

    fixed_gsm = is_gsm7(fixed)
    n = len(shortenable)
    # kept_len[k]: length of shortenable[:k] without trailing whitespace (which is dropped
    # before the ellipsis), computed once because the search below tries many k.
    kept_len = [0] * (n + 1)
    for i, ch in enumerate(shortenable):
        kept_len[i + 1] = kept_len[i] if ch.isspace() else i + 1
    # First character of shortenable outside GSM-7: text kept before it stays GSM-7.
    gsm_end = next((i for i, ch in enumerate(shortenable) if ch not in _GSM7_CODES), n)

    def kept_is_gsm(k: int) -> bool:
        return kept_len[k] <= gsm_end

    def ellipsis_for(k: int) -> str:
        rest_gsm = fixed_gsm and kept_is_gsm(k)
        return _GSM_ELLIPSIS if rest_gsm and not is_gsm7(ellipsis) else ellipsis

    def build(k: int) -> str:
        return fixed_before + shortenable[: kept_len[k]] + ellipsis_for(k) + fixed_after

    def fits(k: int) -> bool:
        return _fits(build(k), max_segments)

    # Cut positions: cluster boundaries only (k = 0, nothing kept, is handled below; the
    # whole text didn't fit, so k = len(shortenable) is not a candidate either).
    cuts = cluster_boundaries(shortenable)
    # Segments grow with k while the ellipsis (and so the encoding) stays the same, but the
    # switch from "..." (GSM-7) to the given ellipsis (UCS-2) breaks monotonicity: search
    # the ranges on either side of the switch separately, the longer one first.
    if fixed_gsm and not is_gsm7(ellipsis):
        ranges = [[k for k in cuts if not kept_is_gsm(k)], [k for k in cuts if kept_is_gsm(k)]]
    else:
        ranges = [cuts]
    best: int | None = None
    for candidates in ranges:
        best = _last_fitting(candidates, fits)
        if best is not None:
            break

    if best is None:
        # Nothing of shortenable fits: the ellipsis alone still shows something was left out.
        with_ellipsis = fixed_before + ellipsis_for(0) + fixed_after
        return with_ellipsis if _fits(with_ellipsis, max_segments) else fixed

    # Prefer a word boundary: the last whitespace at or before the cut.
    if not shortenable[best].isspace() and not shortenable[best - 1].isspace():
        space = next((i for i in range(best - 1, 0, -1) if shortenable[i].isspace()), 0)
        boundaries = set(cuts)
        if space * 2 >= best and space in boundaries and kept_len[space] > 0 and fits(space):
            return build(space)
    return build(best)


# --- normalisation --------------------------------------------------------------------------

# Typography that Babel, CLDR and word processors produce and that has a GSM-7 equivalent
# a reader can't tell apart on a phone. Letters are deliberately not transliterated here
# (François, Šárka): changing a name is the layout's decision, not ours; they stay and force
# UCS-2 unless the layout lists the field for `transliterate_to_gsm` (see sms_channel.py).
_GSM_REPLACEMENTS: dict[int, str] = {
    # spaces: Babel groups digits and separates the currency with U+00A0 (nb, sv, da, fi)
    # or U+202F (fr); tab is not in the alphabet either
    **dict.fromkeys((0x0009, 0x00A0, 0x2007, 0x2009, 0x202F, 0x205F, 0x3000), " "),
    **dict.fromkeys(range(0x2000, 0x200B), " "),  # en quad .. hair space
    # invisible: soft hyphen, zero-width space, word joiner, BOM, bidi marks
    **dict.fromkeys((0x00AD, 0x200B, 0x2060, 0xFEFF, 0x200E, 0x200F), ""),
    # single quotes and primes; U+2019 is also the de_CH / fr_CH digit grouping mark
    **dict.fromkeys((0x2018, 0x2019, 0x201A, 0x201B, 0x2032, 0x2039, 0x203A, 0x00B4), "'"),
    0x0060: "'",  # grave accent: 0x60 in GSM-7 is ¿, the backtick itself is not in it
    # double quotes, incl. «» which Norwegian typography uses
    **dict.fromkeys((0x201C, 0x201D, 0x201E, 0x201F, 0x2033, 0x00AB, 0x00BB), '"'),
    # hyphens, dashes and the minus sign CLDR uses for negative numbers in some locales
    **dict.fromkeys((0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212), "-"),
    0x2026: "...",  # horizontal ellipsis
}


def normalise_for_gsm(text: str) -> str:
    """Replace typography (no-break and thin spaces, typographic quotes, dashes, minus,
    ellipsis, invisible characters) by GSM-7 equivalents, after NFC composition.

    NFC first: a decomposed "å" (a + U+030A, common in text from macOS) is one GSM-7
    character once composed, but forces UCS-2 as two code points. The renderer applies
    this to every SMS text before `plan_sms`; characters with no faithful GSM-7
    equivalent (ç, š, emoji) are kept and the message is sent as UCS-2.
    """
    return unicodedata.normalize("NFC", text).translate(_GSM_REPLACEMENTS)


# Latin letters without a canonical decomposition, written as the letters a reader of that
# language uses when the diacritic is not available (Polish ł -> l, Icelandic þ -> th ...).
_LATIN_FALLBACKS: dict[str, str] = {
    "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Ħ": "H", "ħ": "h",
    "ı": "i", "ĸ": "k", "Ŀ": "L", "ŀ": "l", "Ŋ": "N", "ŋ": "n", "Œ": "OE", "œ": "oe",
    "Ŧ": "T", "ŧ": "t", "Þ": "Th", "þ": "th", "Ə": "E", "ə": "e", "Ɨ": "I", "ɨ": "i",
}


def _to_gsm_letter(ch: str) -> str:
    if ch in _GSM7_CODES:
        return ch
    if ch in _LATIN_FALLBACKS:
        return _LATIN_FALLBACKS[ch]
    # Compatibility decomposition, then drop the combining marks: ą -> a, Ż -> Z, á -> a,
    # ǆ -> dž -> dz, ﬁ -> fi. Used only when every remaining character is GSM-7.
    base = "".join(c for c in unicodedata.normalize("NFKD", ch)
                   if not unicodedata.combining(c))
    base = "".join(_LATIN_FALLBACKS.get(c, c) for c in base)
    return base if base and all(c in _GSM7_CODES for c in base) else ch


def transliterate_to_gsm(text: str) -> str:
    """Latin letters outside GSM 03.38 written without their diacritics, so that a name such
    as "Łucja Wałęsa-Żółkiewska" or "Siobhán" can go as GSM-7 ("Lucja Walesa-Zolkiewska",
    "Siobhan"). Letters the alphabet has (æøå, äöü, é, ñ ...) are kept; letters of other
    scripts (Cyrillic, Greek lower case, CJK) and emoji are kept too: they have no faithful
    GSM-7 spelling, so the text stays UCS-2 and the layout's shorter variant must fit.
    Typography is normalised first (`normalise_for_gsm`)."""
    return "".join(_to_gsm_letter(ch) for ch in normalise_for_gsm(text))
