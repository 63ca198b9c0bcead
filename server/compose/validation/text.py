"""Text that would break a syntax: XML 1.0 forbidden characters, refused with the field path.

XML 1.0 allows tab, line feed and carriage return and every character from U+0020 up,
except the surrogates and U+FFFE/U+FFFF; anything else (U+0000-U+0008, U+000B, U+000C,
U+000E-U+001F, a lone surrogate that JSON's `\\ud800` escapes can carry) cannot be written
into an e-invoice, an HTML e-mail or a PDF's metadata. Checked once on the whole input data
of every layout, right after the schema, so no renderer ever meets one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from server.errors import FieldViolation

FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def check_text(data: Any, path: str = "$") -> list[FieldViolation]:
    """Every string in `data` (keys included) holding a character XML 1.0 forbids."""
    return list(_walk(data, path))


def text_fields(data: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """(JSON path, string) of every string value in `data`, in document order."""
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, item in data.items():
            yield from text_fields(item, _child(path, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from text_fields(item, f"{path}[{i}]")


def _child(path: str, key: Any) -> str:
    return (f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(key))
            else f"{path}[{key!r}]")


def _walk(value: Any, path: str) -> Iterator[FieldViolation]:
    if isinstance(value, str):
        match = FORBIDDEN.search(value)
        if match:
            char = match.group()
            yield FieldViolation(path, f"contains the control character U+{ord(char):04X} at "
                                 f"position {match.start() + 1}, which no document syntax "
                                 "(XML, HTML, PDF text) can carry")
    elif isinstance(value, dict):
        for key, item in value.items():
            child = _child(path, key)
            if isinstance(key, str) and FORBIDDEN.search(key):
                yield FieldViolation(child, "the key contains a control character")
            yield from _walk(item, child)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
