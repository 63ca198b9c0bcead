"""Every string of the input data with its JSON path (`text_fields`), and every number
(`input_fields`): what the print checks
use to name the field behind a character no font draws or a line that leaves its box.

Characters no document syntax can carry (XML 1.0's forbidden controls, lone surrogates) are
refused earlier, when the JSON text is read (server.compose.data), so no check here repeats it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from functools import lru_cache
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def text_fields(data: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """(JSON path, string) of every string value in `data`, in document order.

    One walk that writes a path only where a string is below it (a bulk document has some
    300 strings among its numbers), object keys' path steps kept (keys repeat)."""
    return iter(input_fields(data, path)[0])


def input_fields(data: Any, path: str = "$") -> tuple[list[tuple[str, str]],
                                                      list[tuple[str, Decimal]]]:
    """`text_fields`, and in the same walk (JSON path, Decimal) of every JSON number (not
    booleans): an amount or quantity the caller wrote as a number rather than a string."""
    found: list[tuple[str, str]] = []
    numbers: list[tuple[str, Decimal]] = []

    def walk(value: Any, at: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str):
                    found.append((at + _step(key), item))
                elif isinstance(item, (dict, list)):
                    walk(item, at + _step(key))
                elif isinstance(item, (int, float, Decimal)) and not isinstance(item, bool):
                    numbers.append((at + _step(key), Decimal(str(item))))
        else:
            for i, item in enumerate(value):
                if isinstance(item, str):
                    found.append((f"{at}[{i}]", item))
                elif isinstance(item, (dict, list)):
                    walk(item, f"{at}[{i}]")
                elif isinstance(item, (int, float, Decimal)) and not isinstance(item, bool):
                    numbers.append((f"{at}[{i}]", Decimal(str(item))))

    if isinstance(data, str):
        found.append((path, data))
    elif isinstance(data, (dict, list)):
        walk(data, path)
    return found, numbers


@lru_cache(maxsize=4096)
def _step(key: Any) -> str:
    """`.name` for a key that is an identifier, else `['key']`."""
    return f".{key}" if _NAME.fullmatch(str(key)) else f"[{key!r}]"
