"""The caller's JSON text -> Python values, within the limits every layout can rely on.

A layout's JSON Schema says what its data means (fields, lengths, ranges); this module
says what any data may be at all, before a schema or a builder sees it, so that no input
can crash, stall or poison what comes after (Decimal arithmetic, lxml, the PDF engine):

- **Nesting** at most MAX_DEPTH objects/arrays deep (JSON nested 1,000 deep would blow
  Python's recursion limit in the parser or the validator), refused at the path of the
  first array or object that deep, also when the parser itself gave up (`deep_path`).
- **Size**: at most MAX_VALUES values in all, MAX_STRING_CHARS characters per string and
  MAX_KEY_CHARS per object key (schemas set each field's own, smaller maxLength). A string
  of base64 only may be longer, up to MAX_BASE64_CHARS: a file carried in the data (an
  invoice's supporting document, EN 16931 BG-24 / BT-125) is no text to lay out, and the
  layout's schema sets its own maxLength for it.
- **Text** is Unicode scalar values only: no lone surrogate escapes (`"\\ud800"` cannot be
  encoded as UTF-8, so it could never be archived or rendered) and no control characters
  other than tab, line feed and carriage return, nor U+FFFE/U+FFFF (XML 1.0 forbids them,
  and the e-invoice and PDF channels are XML underneath).
- **Invisible text** is refused in every string (`INVISIBLE`), naming the character:
  the bidi embedding, override and isolate controls U+202A..U+202E and U+2066..U+2069
  (UAX #9 sections 2.1-2.5: explicit formatting that reorders the text around it; an RLO
  printed "\\u202eRLO override gnirts" reversed, a merchant name or an address that reads
  other than it is stored: the "Trojan Source" spoofing of CVE-2021-42574), and ZERO
  WIDTH SPACE U+200B, WORD JOINER U+2060 and ZERO WIDTH NO-BREAK SPACE (BOM) U+FEFF,
  which show nothing and make "Kari" and "Ka\\u200bri" two names to search, sort and
  de-duplicate. UTS #39 (IdentifierType.txt)
  types all of them Default_Ignorable, restricted in anything that identifies.
  Kept, because real text needs them: ZERO WIDTH NON-JOINER and JOINER U+200C/U+200D
  (Persian and Indic words are spelt with them, emoji ZWJ sequences are made of them;
  UTS #39 types them Inclusion, UAX #31 section 2.3 allows them in those contexts) and
  LEFT-TO-RIGHT / RIGHT-TO-LEFT MARK U+200E/U+200F (UAX #9 section 2.6, implicit marks:
  they place a number or a Latin word correctly in Arabic or Hebrew text and override
  nothing).
- **Numbers** are exact decimals (`Decimal`, never float) with at most
  MAX_INTEGER_DIGITS digits before the decimal point and MAX_FRACTION_DIGITS after it,
  so every sum, product and rounding a builder makes stays within Decimal's 28-digit
  precision. `NaN` and `Infinity` are not JSON and are refused.

Every violation is an `InvalidInput` naming its JSON path (`$.transactions[2].amount`)
and quoting at most a short prefix of the value. A string is one violation however many
refused characters it holds ("text holds 7 characters not allowed: U+202E RIGHT-TO-LEFT
OVERRIDE at 4, U+0007 at 10, ... and 2 more (...)"), so a bulk job's error report has one
line per field.
"""

from __future__ import annotations

import json
import re
import unicodedata
from decimal import Decimal
from typing import Any

from server.errors import QUOTE_CHARS, FieldViolation, InvalidInput, listed, quote

MAX_DEPTH = 20
MAX_VALUES = 200_000
MAX_STRING_CHARS = 20_000
MAX_BASE64_CHARS = 4_000_000  # within the 16 MiB gRPC message (server/grpc_server.py)
MAX_KEY_CHARS = 100
MAX_INTEGER_DIGITS = 18
MAX_FRACTION_DIGITS = 10
MAX_VIOLATIONS = 20
MAX_NAMED_CHARACTERS = 5  # the refused characters of one string named one by one

_BASE64 = re.compile(r"[A-Za-z0-9+/=\r\n]*")

# The invisible characters refused in any text (module docstring): bidi embeddings and
# overrides (LRE, RLE, PDF, LRO, RLO), bidi isolates (LRI, RLI, FSI, PDI), ZWSP, WJ, BOM.
INVISIBLE = "\u202a-\u202e\u2066-\u2069\u200b\u2060\ufeff"
# Lone surrogates; C0 controls except tab, LF, CR; the noncharacters XML 1.0 forbids; INVISIBLE.
_BAD_CHARACTER = re.compile(
    f"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff{INVISIBLE}]")
_INVISIBLE = re.compile(f"[{INVISIBLE}]")
_BIDI = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


class _Refused:
    """A number the parser would not turn into a value (kept for its path)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _integer(text: str) -> int | _Refused:
    # int() of 4,300+ digits raises inside the parser, where the path is unknown
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_INTEGER_DIGITS else _Refused(text)


def _decimal(text: str) -> Decimal | _Refused:
    if len(text) > 2 * (MAX_INTEGER_DIGITS + MAX_FRACTION_DIGITS):
        return _Refused(text)
    return Decimal(text)


def _constant(text: str) -> _Refused:
    return _Refused(text)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) < len(pairs):  # the first key seen twice is the one named
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {quote(key)}")
            seen.add(key)
    return result


def read_json(text: str | bytes) -> dict[str, Any]:
    """JSON text (str, or UTF-8 bytes) -> a dict within the limits above.

    Raises InvalidInput (field `data` for text that is no JSON at all, a JSON path per value
    outside the limits, `$` for JSON that is not an object)."""
    data = _parse(text)
    violations = check_limits(data)
    if violations:
        raise InvalidInput("data is outside the limits of any layout", violations)
    return data


def read_stored_json(text: str | bytes) -> dict[str, Any]:
    """JSON that Kanal accepted and stored (an event's data, read again by a journey) -> the
    dict `read_json` made of it then, numbers as Decimal, without checking the limits
    again: data accepted under older limits (a character refused since) is still read, as
    what was accepted is never lost."""
    return _parse(text)


def _parse(text: str | bytes) -> dict[str, Any]:
    try:
        if isinstance(text, bytes):  # json.loads would guess UTF-16/32 from the bytes
            text = text.decode("utf-8")
        if text.startswith("\ufeff"):  # json.loads: "decode using utf-8-sig", Python's words
            raise InvalidInput.field("data", "the text starts with a byte-order mark (U+FEFF); "
                                     "send UTF-8 without a BOM (RFC 8259 section 8.1)")
        data = json.loads(text, parse_float=_decimal, parse_int=_integer,
                          parse_constant=_constant, object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise InvalidInput.field("data", f"not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput.field(
            "data", f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:  # deeper than the interpreter's stack: named as any depth
        raise InvalidInput("data is outside the limits of any layout", [FieldViolation(
            deep_path(text), f"nested deeper than {MAX_DEPTH} levels")]) from exc
    except ValueError as exc:  # duplicate key
        raise InvalidInput.field("data", f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):  # JSON, but not an object: its path is the root
        raise InvalidInput("data is not a JSON object", [
            FieldViolation("$", f"must be a JSON object, not {_json_kind(data)}")])
    return data


# A JSON string (escapes included) or one structural character; numbers, literals and
# white space between them are skipped
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]')


def deep_path(text: str) -> str:
    """The JSON path of the first array or object nested MAX_DEPTH deep in `text`, as
    `check_limits` names it (`$.transactions[0][0]...`), or `$`. For JSON the parser gave
    up on (RecursionError, nested past the interpreter's stack): a scan of the text with a
    list of the open containers, which needs no recursion however deep the text goes."""
    containers: list[list[Any]] = []  # per open container: [is an object, its key or index]
    expect_key = False
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            if len(containers) == MAX_DEPTH:
                return "$" + "".join(f".{at}" if is_object else f"[{at}]"
                                     for is_object, at in containers)
            containers.append([token == "{", "" if token == "{" else 0])
            expect_key = token == "{"
        elif token in "]}":
            if containers:
                containers.pop()
            expect_key = False
        elif token == ",":
            if containers and containers[-1][0]:
                expect_key = True
            elif containers:
                containers[-1][1] += 1
        elif token == ":":
            expect_key = False
        elif expect_key and containers:  # an object's key
            try:
                containers[-1][1] = json.loads(token)
            except ValueError:
                containers[-1][1] = token[1:-1]
            expect_key = False
    return "$"


def _json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's own words (RFC 8259 section 3)."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return "a number"  # int, Decimal, or a number refused by the limits


def check_limits(data: Any) -> list[FieldViolation]:
    """Every value outside the limits, by JSON path (at most MAX_VIOLATIONS of them).
    Iterative, so the depth check itself cannot run out of stack."""
    if _plainly_within(data):
        return []
    violations: list[FieldViolation] = []
    stack: list[tuple[Any, str, int]] = [(data, "$", 0)]
    seen = 0
    while stack and len(violations) < MAX_VIOLATIONS:
        value, path, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            violations.append(FieldViolation("$", f"has more than {MAX_VALUES} values"))
            break
        problem = _problem(value)
        if problem:
            violations.append(FieldViolation(path, problem))
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                violations.append(FieldViolation(path, f"nested deeper than {MAX_DEPTH} levels"))
                continue
            if isinstance(value, dict):
                for key, item in reversed(value.items()):
                    key_problem = _text_problem(key, MAX_KEY_CHARS, "key")
                    if key_problem:
                        violations.append(FieldViolation(path, f"key {quote(key)}: {key_problem}"))
                        continue
                    stack.append((item, f"{path}.{key}", depth + 1))  # as jsonschema
            else:
                stack.extend((item, f"{path}[{n}]", depth + 1)
                             for n, item in reversed(list(enumerate(value))))
    return violations


def _plainly_within(data: Any) -> bool:
    """True when no value is outside the limits: the common answer, found without a path
    per value (a bulk document has ~500 values) and with one search for bad characters over
    all its text. False when a value may be: the walk of `check_limits` then finds and
    names it. Stops at MAX_DEPTH, so it recurses no deeper."""
    strings: list[str] = []
    keys: list[str] = []
    count = 0

    def within(value: Any, depth: int) -> bool:
        nonlocal count
        count += 1
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            if depth >= MAX_DEPTH:
                return False
            keys.extend(value)
            for item in value.values():
                if not within(item, depth + 1):
                    return False
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                return False
            for item in value:
                if not within(item, depth + 1):
                    return False
        elif isinstance(value, Decimal):
            exponent = value.as_tuple().exponent
            return (isinstance(exponent, int) and exponent >= -MAX_FRACTION_DIGITS
                    and value.adjusted() < MAX_INTEGER_DIGITS)
        elif isinstance(value, _Refused):
            return False
        return True

    return (within(data, 0) and count <= MAX_VALUES
            and max(map(len, keys), default=0) <= MAX_KEY_CHARS
            and max(map(len, strings), default=0) <= MAX_STRING_CHARS
            and _BAD_CHARACTER.search("".join(keys) + "".join(strings)) is None)


def _problem(value: Any) -> str | None:
    if isinstance(value, str):
        if (MAX_STRING_CHARS < len(value) <= MAX_BASE64_CHARS
                and _BASE64.fullmatch(value) is not None):
            return None  # a file in base64 (module docstring)
        return _text_problem(value, MAX_STRING_CHARS, "text")
    if isinstance(value, _Refused):
        return _number_problem(value.text)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return f"{quote(value)} is not a number"
        digits = value.adjusted() + 1  # digits before the decimal point
        if digits > MAX_INTEGER_DIGITS:
            return (f"{quote(value)} has more than {MAX_INTEGER_DIGITS} digits before "
                    "the decimal point")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > MAX_FRACTION_DIGITS:
            return (f"{quote(value)} has more than {MAX_FRACTION_DIGITS} digits after "
                    "the decimal point")
    return None


def _number_problem(text: str) -> str:
    if text in ("NaN", "Infinity", "-Infinity"):
        return f"{text} is not a JSON number"
    shown = text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"  # a JSON number
    return (f"{shown} has more digits than a number may have "
            f"({MAX_INTEGER_DIGITS} before and {MAX_FRACTION_DIGITS} after the decimal point)")


def _text_problem(text: str, limit: int, what: str) -> str | None:
    """What is wrong with one string (a value or a key), or None: one message however many
    characters it holds that no text may (`_BAD_CHARACTER`), so a field is one violation
    (one error line of a job's report), naming the first MAX_NAMED_CHARACTERS of them with
    their positions and counting the rest."""
    if len(text) > limit:
        return f"{what} longer than {limit} characters"
    bad = _BAD_CHARACTER.search(text)
    if bad is None:
        return None
    found = list(_BAD_CHARACTER.finditer(text, bad.start()))
    if len(found) == 1:
        return _character_problem(bad, what)
    named = [f"{_code_point(m.group())} at {m.start()}" for m in found[:MAX_NAMED_CHARACTERS]]
    kinds = dict.fromkeys(_kind(m.group()) for m in found)
    return (f"{what} holds {len(found)} characters not allowed: "
            f"{listed(named, len(found))} ({', '.join(kinds)})")


def _code_point(char: str) -> str:
    """U+202E RIGHT-TO-LEFT OVERRIDE; a control character or a surrogate has no name: U+0007."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}" if name else f"U+{ord(char):04X}"


def _kind(char: str) -> str:
    """What a character of `_BAD_CHARACTER` is, in a word or two (the message of one
    character explains more: `_character_problem`); short, so that a field's message with
    MAX_NAMED_CHARACTERS named stays within the 300 characters gRPC's details keep of a
    field violation (server/api/errors.py)."""
    if "\ud800" <= char <= "\udfff":
        return "lone surrogate escape"
    if char in _BIDI:
        return "bidi control"
    if _INVISIBLE.match(char):
        return "invisible"
    return "control character"


def _character_problem(bad: re.Match[str], what: str) -> str:
    """The one character of a string that no text may hold, named and explained."""
    char = bad.group()
    if "\ud800" <= char <= "\udfff":
        return f"{what} holds a lone surrogate escape (\\u{ord(char):04x}) at {bad.start()}"
    if _INVISIBLE.match(char):
        return (f"{what} holds the invisible character U+{ord(char):04X} "
                f"{unicodedata.name(char)} at {bad.start()}: "
                + ("it reorders the text around it (bidi control)" if char in _BIDI
                   else "it shows nothing and makes equal-looking text differ"))
    return f"{what} holds the control character U+{ord(char):04X} at {bad.start()}"
