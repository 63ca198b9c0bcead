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
    failing with INTERNAL: the last resort, at `data`. An invoice line's amount too large
    for any amount is refused before, at the JSON path of the line's quantity (or of an
    allowance's percentage), with this message (`server.compose.invoice._check_sizes`), and
    its products are exact; what can still get here is a sum no single field made."""

    @functools.wraps(build)
    def checked(data: Mapping[str, Any], request: BuildRequest) -> Content:
        try:
            return build(data, request)
        except ArithmeticError as exc:  # decimal.InvalidOperation, Overflow, DivisionByZero
            raise InvalidInput.field("data", "amounts too large to compute exactly") from exc
    return checked
