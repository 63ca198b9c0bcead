"""Document builders, one per kind of input data a layout can declare (`builder = ...`).

Each module exposes `build(data, request) -> Content` (see `base.py`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from server.compose.builders.base import Builder, BuildRequest, Content
from server.errors import InvalidInput

# manifest `builder` name -> module in this package
KNOWN_BUILDERS = ("card_statement", "reminder", "letter", "invoice", "survey")


def get_builder(name: str) -> Builder:
    if name not in KNOWN_BUILDERS:
        raise LookupError(f"unknown builder {name!r} (known: {', '.join(KNOWN_BUILDERS)})")
    return _within_precision(importlib.import_module(f"{__name__}.{name}").build)


def input_path(name: str) -> Callable[[str], str]:
    """The builder's map from an EN 16931 model path (`number`, `buyer.name`) to the JSON
    path of its own input data (`$.invoice.number`, `$.customer.name`): the module's
    `INPUT_PATH`, else the model path itself (the invoice builder's input is the model's).
    For findings made after composing (the channel plan's e-invoice checks), which no longer
    know the builder's per-document `where`."""
    module = importlib.import_module(f"{__name__}.{name}")
    return getattr(module, "INPUT_PATH", lambda path: f"$.{path}")


def _within_precision(build: Builder) -> Builder:
    """The builder, refusing data whose amounts overflow Decimal arithmetic (a product or
    sum beyond 28 digits that no schema range caught) instead of failing with INTERNAL."""

    @functools.wraps(build)
    def checked(data: Mapping[str, Any], request: BuildRequest) -> Content:
        try:
            return build(data, request)
        except ArithmeticError as exc:  # decimal.InvalidOperation, Overflow, DivisionByZero
            raise InvalidInput.field("data", "amounts too large to compute exactly") from exc
    return checked
