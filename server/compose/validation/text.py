"""Every string of the input data with its JSON path (`text_fields`): what the print checks
use to name the field behind a character no font draws or a line that leaves its box.

Characters no document syntax can carry (XML 1.0's forbidden controls, lone surrogates) are
refused earlier, when the JSON text is read (server.compose.data), so no check here repeats it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any


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
