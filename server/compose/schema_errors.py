"""JSON Schema errors (jsonschema's `ValidationError`) -> `FieldViolation`s in JSON's terms.

jsonschema words its messages with Python reprs (`True is not of type 'string'`, `None`,
`{'days': -14} is not valid under any of the given schemas`). A caller sent JSON, so the
violations here show values as JSON writes them (`server.errors.quote`: `true`, `null`,
`"text"`, `{"days": -14}`), and an error under `oneOf`/`anyOf` descends to the alternative
that came closest (`jsonschema.exceptions.best_match`: the deepest error of the most
relevant branch), so it names the field at fault and why (`$.reminder.interest.days: -14
is less than the minimum of 1`), not the object that matched no branch.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import ValidationError
from jsonschema.exceptions import best_match

from server.errors import FieldViolation, quote

MAX_MESSAGE = 300
# `format` names as a reader knows them (with the standard each one follows); the reason a
# checker gave (a day out of range) follows after a colon
FORMATS = {
    "date": "date (YYYY-MM-DD, RFC 3339 full-date)",
    "date-time": "date-time (RFC 3339, e.g. 2026-03-04T09:00:00Z or +01:00)",
    "time-zone": "time zone (an IANA tz database name, e.g. Europe/Oslo)",
}


def schema_violation(error: ValidationError, prefix: str = "") -> FieldViolation:
    """The violation for one jsonschema error: its deepest relevant error's JSON path
    (`$.a.b[2]`, after `prefix`) and why, in JSON's notation, at most MAX_MESSAGE
    characters."""
    if error.context:  # oneOf / anyOf / allOf ...: the branch that came closest
        error = best_match([error])
    # best_match stops at the oneOf/anyOf itself when its branches came equally close
    # ({"rate_percent", "days", "amount"}: each branch has one property too many): each
    # branch's reason, not jsonschema's "is not valid under any of the given schemas"
    message = _no_form(error) if error.context else _message(error)
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return FieldViolation(f"{prefix}{error.json_path}", message)


# The schema's count limits: (what is counted, one and many, "at most" or "at least").
# jsonschema says only "[...] is too long" (the array cut to a few items), so a caller who
# sent 5,000 transactions learnt neither the limit nor the count.
_COUNTS = {"maxItems": ("item", "items", "at most"), "minItems": ("item", "items", "at least"),
           "maxProperties": ("property", "properties", "at most"),
           "minProperties": ("property", "properties", "at least")}


def _count_message(keyword: str, limit: int, count: int) -> str:
    """'has 5000 items; at most 2000 are allowed': the count and the schema's limit."""
    one, many, bound = _COUNTS[keyword]
    has = f"has {count} {one if count == 1 else many}"
    if limit == 0:
        return f"{has}; it must be empty"
    return (f"{has}; {bound} {limit} {'is' if limit == 1 else 'are'} "
            f"{'allowed' if bound == 'at most' else 'required'}")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _message(error: ValidationError) -> str:
    keyword, expected, instance = error.validator, error.validator_value, error.instance
    if keyword == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        return f"{quote(instance)} is not of type {' or '.join(map(_json, types))}"
    if keyword == "required" and isinstance(instance, dict):
        missing = [name for name in expected if name not in instance]
        named = next((n for n in missing if repr(n) in error.message), None)
        if named is not None:
            return f"{_json(named)} is a required property"
    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in instance if k not in allowed]
        if extra:
            were = "was" if len(extra) == 1 else "were"
            return (f"additional properties are not allowed "
                    f"({', '.join(quote(k) for k in extra[:5])} {were} unexpected)")
    if keyword == "maxLength" and isinstance(instance, str):
        return f"{quote(instance)} is longer than {expected} characters"
    if keyword == "minLength" and isinstance(instance, str):
        return (f"{quote(instance)} is shorter than {expected} character"
                f"{'s' if expected != 1 else ''}")
    if keyword in _COUNTS and isinstance(instance, list | dict):
        return _count_message(keyword, expected, len(instance))
    if keyword == "enum":
        return f"{quote(instance)} is not one of {_json(expected)}"
    if keyword == "const":
        return f"{quote(instance)} should be {_json(expected)}"
    if keyword in ("oneOf", "anyOf") and not error.context:
        return f"{quote(instance)} matches more than one of the allowed forms{_both(error)}"
    if keyword == "not":
        return f"{quote(instance)} is not allowed here"
    if keyword == "format" and isinstance(expected, str):
        why = f": {error.cause}" if error.cause is not None else ""
        return f"{quote(instance)} is not a {FORMATS.get(expected, expected)}{why}"
    # the other keywords (pattern, minimum, maximum, multipleOf, ...) name the instance and
    # the schema's value: shown as JSON instead of their Python reprs
    message = error.message.replace(repr(instance), quote(instance))
    if isinstance(expected, str | list | bool) or expected is None:
        message = message.replace(repr(expected), _json(expected))
    return message


def _no_form(error: ValidationError) -> str:
    """'{...} matches none of the allowed forms: form 1: ...; form 2: ...': why each branch
    of a oneOf/anyOf refused the value, its closest error each (a path below the value
    named)."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    reasons = []
    for n, subs in sorted(branches.items()):
        closest = best_match(subs)
        below = list(closest.absolute_path)[len(error.absolute_path):]
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in below)
        reasons.append(f"form {n + 1}: {'$' + at + ': ' if at else ''}{_message(closest)}")
    return f"{quote(error.instance)} matches none of the allowed forms: {'; '.join(reasons)}"


def _both(error: ValidationError) -> str:
    """': it has "reference" and "reference_base"; give only one of them' when the forms are
    told apart by the properties they require; '' otherwise."""
    forms, instance = error.validator_value, error.instance
    if not isinstance(instance, dict) or not isinstance(forms, list):
        return ""
    met = [form["required"] for form in forms if isinstance(form, dict)
           and form.get("required") and all(name in instance for name in form["required"])]
    if len(met) < 2:
        return ""
    names = [_json(name) for name in dict.fromkeys(n for names in met for n in names)]
    return f": it has {', '.join(names[:-1])} and {names[-1]}; give only one of them"
