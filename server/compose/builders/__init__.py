"""Document builders, one per kind of input data a layout can declare (`builder = ...`).

Each module exposes `build(data, request) -> Content` (see `base.py`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

from server.compose.builders.base import Builder, BuildRequest, Content
from server.errors import InvalidInput

# manifest `builder` name -> module in this package
KNOWN_BUILDERS = ("card_statement", "reminder", "letter", "invoice", "survey")


def get_builder(name: str) -> Builder:
    if name not in KNOWN_BUILDERS:
        raise LookupError(f"unknown builder {name!r} (known: {', '.join(KNOWN_BUILDERS)})")
    return _within_precision(importlib.import_module(f"{__name__}.{name}").build)


def _within_precision(build: Builder) -> Builder:
    """The builder, refusing data whose amounts overflow Decimal arithmetic instead of
    failing with INTERNAL: the last resort, at `data`. An invoice's computed amounts too
    large for any amount are refused before, with this message, at the JSON path they came
    from (`server.compose.amount_sizes`): a line's at its quantity (or an allowance's
    percentage), a sum of lines each within the limit (BT-106, BT-112, ...) at `lines`; its
    products are exact. What can still get here is arithmetic no invoice check covers."""

    @functools.wraps(build)
    def checked(data: Mapping[str, Any], request: BuildRequest) -> Content:
        try:
            return build(data, request)
        except ArithmeticError as exc:  # decimal.InvalidOperation, Overflow, DivisionByZero
            raise InvalidInput.field("data", "amounts too large to compute exactly") from exc
    return checked
