"""Every string of the input data with its JSON path (`text_fields`): what the print checks
use to name the field behind a character no font draws or a line that leaves its box.

Characters no document syntax can carry (XML 1.0's forbidden controls, lone surrogates) are
refused earlier, when the JSON text is read (server.compose.data), so no check here repeats it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def text_fields(data: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """(JSON path, string) of every string value in `data`, in document order.

    One walk that writes a path only where a string is below it (a bulk document has some
    300 strings among its numbers), object keys' path steps kept (keys repeat)."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, at: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str):
                    found.append((at + _step(key), item))
                elif isinstance(item, (dict, list)):
                    walk(item, at + _step(key))
        else:
            for i, item in enumerate(value):
                if isinstance(item, str):
                    found.append((f"{at}[{i}]", item))
                elif isinstance(item, (dict, list)):
                    walk(item, f"{at}[{i}]")

    if isinstance(data, str):
        found.append((path, data))
    elif isinstance(data, (dict, list)):
        walk(data, path)
    return iter(found)


@lru_cache(maxsize=4096)
def _step(key: Any) -> str:
    """`.name` for a key that is an identifier, else `['key']`."""
    return f".{key}" if _NAME.fullmatch(str(key)) else f"[{key!r}]"
