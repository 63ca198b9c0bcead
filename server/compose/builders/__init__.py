"""Document builders, one per kind of input data a layout can declare (`builder = ...`).

Each module exposes `build(data, request) -> Content` (see `base.py`).
"""

from __future__ import annotations

import importlib

from server.compose.builders.base import Builder

# manifest `builder` name -> module in this package
KNOWN_BUILDERS = ("card_statement", "reminder", "letter", "invoice")


def get_builder(name: str) -> Builder:
    if name not in KNOWN_BUILDERS:
        raise LookupError(f"unknown builder {name!r} (known: {', '.join(KNOWN_BUILDERS)})")
    return importlib.import_module(f"{__name__}.{name}").build
