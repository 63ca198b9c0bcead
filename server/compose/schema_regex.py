"""JSON Schema `pattern` with the regular-expression semantics the standard names.

JSON Schema (2020-12, section 6.3.3) says a `pattern` is an ECMA-262 regular expression.
jsonschema runs it with Python's `re.search`, which differs where it matters for identifiers:

- `$` in Python also matches before a trailing newline, so `^\\+[1-9][0-9]{6,14}$` let
  "+4791234567\\n" through; in ECMA-262 (without the m flag) `$` is the end of the input;
- `\\d` in Python matches any Unicode decimal digit (Arabic-Indic, Devanagari ...); in
  ECMA-262 it is [0-9].

`DataValidator` is Draft 2020-12 with `pattern` translated to those semantics (`$` ->
`\\Z`, `\\d` -> `[0-9]`, outside and inside character classes), so every layout's schema is
read as written, without editing any of them; and with the number bounds (`minimum`,
`maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`) binding a numeric string
as the number it spells, compared as Decimals (server.compose.schema_bounds).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from server.compose.schema_bounds import BOUNDS


def ecma_to_python(pattern: str) -> str:
    """An ECMA-262 pattern (no flags) -> the Python pattern that matches the same strings
    for `$` and `\\d`/`\\D`."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            escape = pattern[i + 1]
            if escape == "d":
                out.append("0-9" if in_class else "[0-9]")
            elif escape == "D" and not in_class:
                out.append("[^0-9]")
            else:
                out.append(c + escape)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            out.append(c)
            if pattern[i + 1:i + 2] == "^":  # a leading ^ (and ] after it) is literal-ish
                out.append("^")
                i += 1
            if pattern[i + 1:i + 2] == "]":
                out.append("\\]")
                i += 1
            i += 1
            continue
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return "".join(out)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_to_python(pattern))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any
             ) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


DataValidator = validators.extend(Draft202012Validator, {"pattern": _pattern, **BOUNDS})
