"""Event types: a name -> its JSON Schema (draft 2020-12), and data -> violations with paths.

The shipped types live in `server/events/schemas/<type>.json`; a deployment adds its own
(or replaces one) with `[events] schemas_dir` (same file layout). An event of an unknown
type is refused: a typo must not start (or silently miss) a journey.

Schemas are read as the standard writes them: `pattern` as ECMA-262
(server.compose.schema_regex) and `format` asserted, not only annotated (JSON Schema
2020-12 validation, section 7.2.2 allows either): a `date` must exist (RFC 3339 full-date:
2026-02-30 is refused), a `date-time` is RFC 3339 section 5.6 with its offset. A journey
hands these values on to Compose; a date that does not exist would fail there, far from
the caller who sent it.

Attributes (what an event tells about the customer, merged into the profile the journeys
and the contact policy read: server.journeys.profiles) are open, since journeys' conditions
may name any attribute (`segment`, ...), but the ones the contact policy acts on have a
shape (`attributes.json`): `time_zone` an IANA tz database name, `country` ISO 3166-1
alpha-2, `consents` and `opt_outs` arrays of words. Before, `"Mars/Olympus"` fell back to
the country's zone and `"consents": "email"` read as no consent at all, both silently.
A `recipient.customer_id` must be the event's customer (`recipient_of_another`): the
recipient is whom a journey's document is filed under, so a profile naming another customer
put one customer's communication in another's archive.

Money is checked as Compose checks it (`check_money`): a `currency` is an ISO 4217 code
one can pay in (`formatting.check_currency`: "XYZ", "XXX" refused), and an `amount` (or
`<name>_amount`) beside it has no more decimals than that currency's minor unit
(`builders.base.money_decimals`: "100.0001" NOK, "100.5" JPY refused). Before, such an
event was accepted and the journey's document was refused when it composed, far from the
caller.

Stored events are read back without these checks (server.compose.data.read_stored_json):
an event accepted by an older server still replays.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from server.compose.builders.base import money_decimals
from server.compose.composer import MAX_SCHEMA_ERRORS
from server.compose.data import read_json
from server.compose.formatting import check_currency
from server.compose.schema_errors import schema_violation
from server.compose.schema_regex import DataValidator
from server.errors import FieldViolation, InvalidInput, quote

SHIPPED_DIR = Path(__file__).resolve().parent / "schemas"
ATTRIBUTES_SCHEMA = Path(__file__).resolve().parent / "attributes.json"
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

FORMATS = FormatChecker([])  # the formats below, asserted; an unknown format is annotation
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
                        r"([Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z", re.ASCII)


@FORMATS.checks("date-time", raises=ValueError)
def is_date_time(instance: object) -> bool:
    """RFC 3339 section 5.6 `date-time`: full-date "T" full-time with its offset (Z or
    +hh:mm), every field in range; a leap second (:60) is allowed as RFC 3339 allows it."""
    if not isinstance(instance, str):
        return True
    match = _DATE_TIME.match(instance)
    if match is None:
        return False
    text = instance.upper()
    if match[3] == "60":  # datetime knows no leap second; the rest must still be in range
        text = text[:17] + "59" + text[19:]
    datetime.fromisoformat(text)
    return True


@FORMATS.checks("date", raises=ValueError)
def is_date(instance: object) -> bool:
    """RFC 3339 `full-date` (YYYY-MM-DD, ASCII digits) of a day that exists."""
    if not isinstance(instance, str):
        return True
    if not _DATE.match(instance):
        return False
    date.fromisoformat(instance)
    return True


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@FORMATS.checks("time-zone")
def is_time_zone(instance: object) -> bool:
    """An IANA tz database name this server knows (`zoneinfo.available_timezones`), so
    `ZoneInfo(name)` finds it; a name is never read as a path."""
    return not isinstance(instance, str) or instance in _time_zones()


def data_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for event data or attributes: ECMA-262 `pattern`, asserted `format`."""
    return DataValidator(schema, format_checker=FORMATS)


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
                self._validators[name] = data_validator(schema)

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
        money = check_money(data, f"{where}data.$")
        if money:
            raise InvalidInput(f"data of event type {event_type} holds money Compose refuses",
                               money)
        return data


def check_money(value: Any, path: str) -> list[FieldViolation]:
    """Every object in `value` (event data, already schema-valid) with a text `currency`:
    the code checked by `formatting.check_currency`, and each `amount` / `<name>_amount`
    beside it (a decimal as text or a number) by `money_decimals` for that currency, as
    Compose checks a document's money. Violations at `<path>.currency`, `<path>.amount`
    (`data.$.amount`, `events[2].data.$.lines[0].amount`); [] when all is well."""
    found: list[FieldViolation] = []
    if isinstance(value, list):
        for index, item in enumerate(value):
            found += check_money(item, f"{path}[{index}]")
        return found
    if not isinstance(value, dict):
        return found
    currency = value.get("currency")
    if isinstance(currency, str):
        try:
            check_currency(currency, f"{path}.currency")
        except InvalidInput as exc:
            found += exc.violations
            currency = None
    for key, item in value.items():
        if currency and (key == "amount" or key.endswith("_amount")) and \
                isinstance(item, (str, int, Decimal)) and not isinstance(item, bool):
            try:
                money_decimals(Decimal(str(item)), f"{path}.{key}", currency)
            except InvalidOperation:
                pass  # not a decimal: the schema's to say
            except InvalidInput as exc:
                found += exc.violations
        elif isinstance(item, (dict, list)):
            found += check_money(item, f"{path}.{key}")
    return found


@cache
def _attributes_validator() -> Draft202012Validator:
    return data_validator(json.loads(ATTRIBUTES_SCHEMA.read_text(encoding="utf-8")))


def parse_attributes(text: str, where: str = "", customer_id: str | None = None
                     ) -> dict[str, Any]:
    """A customer's attributes: a JSON object (within the same limits as any data) whose
    known keys match `attributes.json`, or InvalidInput naming every violation at
    `<where>attributes.$.time_zone` ... `customer_id`: the event's customer, whose profile
    the attributes go to; a `recipient.customer_id` naming anyone else is refused
    (`recipient_of_another`)."""
    attributes = _json_object(text or "{}", f"{where}attributes")
    errors = sorted(islice(_attributes_validator().iter_errors(attributes), MAX_SCHEMA_ERRORS),
                    key=lambda e: list(map(str, e.path)))
    found = [schema_violation(e, f"{where}attributes.") for e in errors]
    if customer_id is not None:
        found += recipient_of_another(attributes, customer_id, f"{where}attributes.")
    if found:
        raise InvalidInput("attributes do not match what the journeys read", found)
    return attributes


def recipient_of_another(attributes: dict[str, Any], customer_id: str, where: str
                         ) -> list[FieldViolation]:
    """[] unless the profile's `recipient` (the `customer` object a journey's send gives its
    layout: `customer = "$customer.recipient"`) has a `customer_id` that is not
    `customer_id`, the customer the event is about; else the violation at
    `<where>$.recipient.customer_id`. The document's customer id is the archive folder, the
    portal listing and the mailbox it is delivered to: customer A's profile naming B would
    put A's communication in B's archive (server.journeys.engine checks it again when the
    journey sends, for profiles stored before this check)."""
    recipient = attributes.get("recipient")
    if not isinstance(recipient, dict) or "customer_id" not in recipient:
        return []
    named = recipient["customer_id"]
    if named == customer_id:
        return []
    return [FieldViolation(f"{where}$.recipient.customer_id", (
        f"{quote(named)} is not the event's customer_id {quote(customer_id)}: the profile's "
        "recipient is the customer a journey's document is archived, listed and delivered "
        "under; publish the event for that customer, or give the recipient this one's id"))]


def _json_object(text: str, field: str) -> dict[str, Any]:
    """JSON text -> dict (server.compose.data's limits), or InvalidInput whose message and
    violations name `field` (`attributes`, `events[2].attributes.$.segment`), never the
    `data` read_json names: the attributes' refusal must not send the caller to data_json."""
    try:
        return read_json(text)
    except InvalidInput as exc:  # its message names `data` ("invalid data", "data is ...")
        raise InvalidInput(exc.message.replace("data", field, 1), [
            FieldViolation(field if v.field in ("", "data") else f"{field}.{v.field}",
                           v.description) for v in exc.violations]) from exc
