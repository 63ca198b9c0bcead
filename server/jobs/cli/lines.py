"""`kanal submit`'s records, exactly as written: a JSON Lines file -> (record key, data JSON)
per line. Each line is either a JSON object `{"record_key": "...", "data": {...}}` or any
other JSON object, which is then the data and gets its line number as record key (a
byte-order mark at the start of the file, as Windows exports often write, is dropped).
Numbers keep the digits they were written with (never through a float); a line that cannot
be carried exactly (not JSON, a key twice in one object, NaN or Infinity, not UTF-8, a
record key the server would refuse) is `RecordRefused`, naming its line; `RecordLines`
turns the server's `records[n]` back into the file's line."""

from __future__ import annotations

import bisect
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server.client import ClientError
from server.errors import quote


class _Number(str):
    """A JSON number literal exactly as written in the file."""


class RecordRefused(ValueError):
    """A line that cannot be carried to the server exactly."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise RecordRefused(f"key {quote(key)} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def _not_a_number(name: str) -> Any:
    raise RecordRefused(f"{name} is not a JSON number")


def _string(text: str) -> str:
    # A lone surrogate (written as a "\\ud800" escape) has no UTF-8: send the escape itself.
    if any("\ud800" <= c <= "\udfff" for c in text):
        return json.dumps(text)
    return json.dumps(text, ensure_ascii=False)


def exact_json(value: Any) -> str:
    """JSON text of a value parsed by `parse_record`: numbers as their original literals."""
    if isinstance(value, _Number):
        return str.__str__(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(k)}:{exact_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(exact_json(v) for v in value) + "]"
    return json.dumps(value)  # true, false, null


def parse_record(line: str) -> Any:
    """A JSON line -> values with every number kept as its literal; RecordRefused if the
    line cannot be carried exactly."""
    try:
        return json.loads(line, parse_float=_Number, parse_int=_Number,
                          parse_constant=_not_a_number, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise RecordRefused("nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise RecordRefused(f"not JSON: {exc.msg} at column {exc.colno}") from None


def _record_key(item: dict[str, Any]) -> str:
    """`record_key` as sent: a string, or a number's digits as written; RecordRefused without
    "data" (was sent as the data) and for null, true, an object or an array (was str(): "None")."""
    if "data" not in item:
        raise RecordRefused('has "record_key" but no "data": a record is '
                            '{"record_key": ..., "data": {...}} or only the data')
    value = item["record_key"]
    if isinstance(value, str):  # numbers are kept as their literal (_Number, a str)
        return str(value)
    kind = ("null" if value is None else "a boolean" if isinstance(value, bool)
            else "an object" if isinstance(value, dict) else "an array")
    raise RecordRefused(f"record_key must be a string or a number, not {kind}")


def _check_key(key: str) -> None:
    """RecordRefused for a record key the server would refuse (server.api.wire's limits):
    said here, with the file's line, not by the server, which can only count records."""
    from server.api.wire import field_problem

    problem = "is empty" if not key else field_problem("kanal.v1.JobRecord.record_key", key)
    if problem:
        raise RecordRefused(f"record_key {quote(key)} {problem}")


class RecordLines:
    """The line of the file each record came from, for the server's errors, which name a
    record by its place (`records[n]`, n from 0). Kept as the few places where blank lines
    were skipped, not a number per record: a file of millions of records costs nothing."""

    def __init__(self) -> None:
        self._gaps: list[tuple[int, int]] = []  # (record n, lines skipped before it)

    def note(self, n: int, line: int) -> None:
        skipped = line - 1 - n
        if skipped != (self._gaps[-1][1] if self._gaps else 0):
            self._gaps.append((n, skipped))

    def line(self, n: int) -> int:
        """The line (from 1) of record n, as noted by `records`."""
        at = bisect.bisect_right(self._gaps, (n, sys.maxsize)) - 1
        return n + 1 + (self._gaps[at][1] if at >= 0 else 0)



def records(path: Path, lines: RecordLines | None = None) -> Iterator[tuple[str, str]]:
    """(record key, data JSON) per non-empty line; RecordRefused naming the line. `lines`:
    notes the line of every record yielded."""
    try:
        file = path.open("rb")  # decoded line by line, so an error names its line
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from None
    count = 0  # records yielded
    with file:
        for number, raw in enumerate(file, start=1):
            try:
                # a byte-order mark starts many files exported on Windows: dropped on the
                # first line only (the server refuses one in a record's JSON text)
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                if not line.strip():
                    continue
                item = parse_record(line)
                if isinstance(item, dict) and "record_key" in item:
                    key, data = _record_key(item), item["data"]
                    _check_key(key)
                else:
                    key, data = str(number), item
                carried = exact_json(data)
            except UnicodeDecodeError:
                raise RecordRefused(f"{path} line {number}: not UTF-8") from None
            except RecursionError:
                raise RecordRefused(f"{path} line {number}: nested too deeply") from None
            except RecordRefused as exc:
                raise RecordRefused(f"{path} line {number}: {exc}") from None
            if lines is not None:
                lines.note(count, number)
            count += 1
            yield key, carried

