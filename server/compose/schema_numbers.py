"""Which fields of a layout's data are numbers, by the layout's own JSON Schema.

A field is a number when its schema admits a JSON number (`"type": ["string", "number"]`,
`"number"` or `"integer"`): the caller may write it as a JSON number or as a numeric string
kept exact as Decimal (`"100000000"`, `"1234.50"`), and the builders read it as an amount,
a quantity, a rate or a count. A reference, an account, a phone number or an id is a string
only (however many digits it has), so it is never one of these. This is the schema's own
description of the field, which names (amount, price, quantity) and patterns only suggest.

Used by the print preflight (server/channels/preflight.py) to name an outsized amount or
quantity written without decimals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["numeric_field"]

_NUMBER_TYPES = {"number", "integer"}
_BRANCHES = ("oneOf", "anyOf", "allOf")


def _resolve(schema: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    """A local `$ref` (`#/$defs/amount`, JSON Pointer) -> the schema it names, or None."""
    if not ref.startswith("#/"):
        return None
    node: Any = schema
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


def numeric_paths(schema: Mapping[str, Any]) -> list[str]:
    """The JSON paths (as regular expressions over `$.lines[0].quantity`-style paths, the
    form `server.compose.validation.text.text_fields` writes) whose schema admits a number."""
    found: set[str] = set()

    def walk(node: Any, path: str, refs: frozenset[str]) -> None:
        if not isinstance(node, Mapping):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in refs:  # a recursive schema ends here
            walk(_resolve(schema, ref), path, refs | {ref})
        types = node.get("type")
        if _NUMBER_TYPES & set(types if isinstance(types, list) else [types]):
            found.add(path)
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            for key, sub in properties.items():
                step = (r"\." + re.escape(key) if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)
                        else re.escape(f"[{key!r}]"))
                walk(sub, path + step, refs)
        walk(node.get("items"), path + r"\[\d+\]", refs)
        for branch in _BRANCHES:
            for sub in node.get(branch) or ():
                walk(sub, path, refs)

    walk(schema, r"\$", frozenset())
    return sorted(found)


def numeric_field(schema: Mapping[str, Any]) -> Callable[[str], bool]:
    """`path -> bool`: whether the JSON path (`$.lines[0].unit_price`) is a number field of
    data valid against `schema` (see the module docstring)."""
    paths = numeric_paths(schema)
    if not paths:
        return lambda path: False
    pattern = re.compile("|".join(f"(?:{p})" for p in paths))
    return lambda path: pattern.fullmatch(path) is not None
