"""Event types: a name -> its JSON Schema (draft 2020-12), and data -> violations with paths.

The shipped types live in `server/events/schemas/<type>.json`; a deployment adds its own
(or replaces one) with `[events] schemas_dir` (same file layout). An event of an unknown
type is refused: a typo must not start (or silently miss) a journey.
"""

from __future__ import annotations

import json
import re
from itertools import islice
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from server.compose.composer import MAX_SCHEMA_ERRORS
from server.compose.data import read_json
from server.compose.schema_errors import schema_violation
from server.errors import FieldViolation, InvalidInput

SHIPPED_DIR = Path(__file__).resolve().parent / "schemas"
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class EventTypes:
    """The known event types and their validators."""

    def __init__(self, *dirs: Path | None):
        self._validators: dict[str, Draft202012Validator] = {}
        for folder in (SHIPPED_DIR, *dirs):
            if folder is None:
                continue
            for path in sorted(Path(folder).glob("*.json")):
                name = path.stem
                if not EVENT_TYPE.match(name):
                    raise ValueError(f"{path}: an event type is [a-z][a-z0-9_]*, not {name!r}")
                try:
                    schema = json.loads(path.read_text(encoding="utf-8"))
                    Draft202012Validator.check_schema(schema)
                except (OSError, ValueError, SchemaError) as exc:
                    raise ValueError(f"{path}: not a JSON Schema (2020-12): {exc}") from exc
                self._validators[name] = Draft202012Validator(schema)

    @property
    def names(self) -> list[str]:
        return sorted(self._validators)

    def __contains__(self, name: object) -> bool:
        return name in self._validators

    def parse(self, event_type: str, data_json: str, where: str = "") -> dict[str, Any]:
        """The event's data as values (numbers as Decimal), or InvalidInput whose field
        paths read `<where>data.$.amount`."""
        if event_type not in self._validators:
            raise InvalidInput.field(f"{where}event_type", f"unknown event type "
                                     f"{event_type[:64]!r}; known: {', '.join(self.names)}")
        data = _json_object(data_json or "{}", f"{where}data")
        errors = sorted(islice(self._validators[event_type].iter_errors(data),
                               MAX_SCHEMA_ERRORS), key=lambda e: list(map(str, e.path)))
        if errors:
            raise InvalidInput(
                f"data does not match the schema of event type {event_type}",
                [schema_violation(e, f"{where}data.") for e in errors])
        return data


def parse_attributes(text: str, where: str = "") -> dict[str, Any]:
    """A customer's attributes (a JSON object, within the same limits as any data)."""
    return _json_object(text or "{}", f"{where}attributes")


def _json_object(text: str, field: str) -> dict[str, Any]:
    """JSON text -> dict (server.compose.data's limits), violations renamed under `field`."""
    try:
        return read_json(text)
    except InvalidInput as exc:
        raise InvalidInput(str(exc).replace("data", field, 1), [
            FieldViolation(field if v.field in ("", "data") else f"{field}.{v.field}",
                           v.description) for v in exc.violations]) from exc
