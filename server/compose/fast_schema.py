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
  part or an exponent are Decimals, whole numbers are ints).
tests/unit/test_fast_schema.py holds both validators to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema

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


def compile_fast_check(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """`check(data) -> True` when `data` is valid against `schema`, False when it may not
    be (ask jsonschema); None when the schema needs jsonschema alone."""
    if not _keywords_known(schema):
        return None
    validate = fastjsonschema.compile({**schema, "$schema": _DRAFT_7}, use_default=False,
                                      use_formats=False, detailed_exceptions=False)

    def check(data: Any) -> bool:
        try:
            validate(data)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return check
