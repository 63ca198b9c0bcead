"""A layout's JSON Schema compiled to Python code: a fast yes/no check of composing data.

jsonschema (the reference validator, `Layout.validator`) interprets the schema for every
document: about 3-4 ms for a card invoice with 60 transactions, most of the non-render cost
of composing. fastjsonschema compiles the same schema once per process into plain Python,
which answers the common case (valid data) in a fraction of that. Data it refuses goes on
to jsonschema, which finds every violation with its JSON path, so error messages never
change; the only requirement is that it never accepts what jsonschema refuses:

- only schemas whose keywords mean the same in draft 7 (what fastjsonschema implements)
  and in 2020-12 (what the layouts declare) are compiled; any other keyword (e.g.
  `prefixItems`, `unevaluatedProperties`, `$dynamicRef`) leaves the layout on jsonschema
  alone (`compile_fast_check` returns None);
- `format` is an annotation for jsonschema here (no format checker), so it is not
  asserted either (`use_formats=False`); defaults are never written into the data
  (`use_default=False`);
- integers: a Decimal is never an integer for either (the data's numbers with a fraction
  part or an exponent are Decimals, whole numbers are ints);
- number bounds bind numeric strings too (server.compose.schema_bounds), which
  fastjsonschema's own keywords do not: each subschema with a bound gets a `format` of its
  own whose check is `schema_bounds.string_in_bounds` (fastjsonschema checks a format on
  strings only, and leaves numbers to its `minimum` ... code). The schema's own `format`s
  are dropped from the compiled copy (annotations, as above). A bound that is not a whole
  number, or any `multipleOf`, leaves the layout on jsonschema alone: fastjsonschema
  compares a Decimal with a float bound in binary and divides for `multipleOf` at 28
  digits, where the validator compares and divides exactly.
tests/unit/test_fast_schema.py holds both validators to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema

from server.compose.schema_bounds import KEYWORDS as BOUND_KEYWORDS
from server.compose.schema_bounds import admits_strings, string_in_bounds

# Keywords that mean the same in draft 7 and draft 2020-12 (and annotations).
SAME_IN_BOTH = frozenset({
    "$schema", "$id", "$ref", "$defs", "definitions", "$comment", "title", "description",
    "examples", "default", "deprecated", "readOnly", "writeOnly", "type", "enum", "const",
    "properties", "patternProperties", "additionalProperties", "required", "propertyNames",
    "minProperties", "maxProperties", "items", "minItems", "maxItems", "uniqueItems",
    "contains", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "format", "allOf", "anyOf", "oneOf", "not",
    "if", "then", "else",
})
# Keywords whose value maps names to subschemas (the names are not keywords).
_NAMED_SUBSCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_DRAFT_7 = "http://json-schema.org/draft-07/schema#"


def _keywords_known(schema: Any) -> bool:
    if isinstance(schema, list):
        return all(_keywords_known(item) for item in schema)
    if not isinstance(schema, Mapping):
        return True
    for key, value in schema.items():
        if key not in SAME_IN_BOTH:
            return False
        if key in _NAMED_SUBSCHEMAS:
            if not all(_keywords_known(sub) for sub in value.values()):
                return False
        elif key in {"enum", "const", "examples", "default", "required"}:
            continue  # values, not schemas
        elif key == "items" and isinstance(value, list):
            return False  # tuple validation: draft 7 and 2020-12 disagree
        elif not _keywords_known(value):
            return False
    return True


class _NotCompiled(Exception):
    """The schema has a bound the compiled check would not read as the validator does."""


def _with_bound_formats(schema: Any, formats: dict[str, Callable[[str], bool]]) -> Any:
    """A copy of `schema` whose subschemas with number bounds check numeric strings against
    them through a `format` of their own (registered in `formats`), without the schema's
    own `format`s; _NotCompiled for a bound that is no whole number, or a `multipleOf`."""
    if isinstance(schema, list):
        return [_with_bound_formats(item, formats) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _NAMED_SUBSCHEMAS and isinstance(value, Mapping):
            out[key] = {name: _with_bound_formats(sub, formats) for name, sub in value.items()}
        elif key in {"enum", "const", "examples", "default", "required", "format"}:
            if key != "format":  # values, not schemas; `format` is an annotation here
                out[key] = value
        else:
            out[key] = _with_bound_formats(value, formats)
    bounds = {key: schema[key] for key in BOUND_KEYWORDS if key in schema}
    if bounds:
        if "multipleOf" in bounds or not all(
                type(bound) is int or (type(bound) is float and bound.is_integer())
                for bound in bounds.values()):
            raise _NotCompiled
        if admits_strings(schema):
            name = f"kanal-number-bounds-{len(formats)}"
            formats[name] = string_in_bounds(bounds)
            out["format"] = name
    return out


def compile_fast_check(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """`check(data) -> True` when `data` is valid against `schema`, False when it may not
    be (ask jsonschema); None when the schema needs jsonschema alone."""
    if not _keywords_known(schema):
        return None
    formats: dict[str, Callable[[str], bool]] = {}
    try:
        compiled = _with_bound_formats(schema, formats)
    except _NotCompiled:
        return None
    validate = fastjsonschema.compile({**compiled, "$schema": _DRAFT_7}, formats=formats,
                                      use_default=False, use_formats=True,
                                      detailed_exceptions=False)

    def check(data: Any) -> bool:
        try:
            validate(data)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return check
