"""Domain errors: what went wrong, in words a caller can act on.

`server/api` maps each class to one gRPC status code; nothing below the API layer knows
about gRPC. A `FieldViolation` names the offending field as a JSON path into the request
data (e.g. `$.transactions[3].amount`) or a request field (e.g. `layout_id`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

QUOTE_CHARS = 40


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """How an error names a caller's value: as JSON writes it (RFC 8259: strings in double
    quotes, `true`/`false`/`null`, numbers as the caller wrote them, objects and arrays),
    never a Python repr (`True`, `None`, `'a'`, `Decimal('1E-7')`), cut to about `limit`
    characters. A 1 MB field must never come back as 1 MB of error text (gRPC caps the
    trailers a client accepts at 8 KB), so every message that shows a value shows it
    through this. Characters stay as they are (`ensure_ascii=False`); control characters
    are escaped as JSON escapes them."""
    if isinstance(value, str) and len(value) > limit:  # cut inside its quotes
        return json.dumps(value[:limit] + "…", ensure_ascii=False)
    text = _json(value, limit + 2)
    return text if len(text) <= limit + 2 else text[:limit] + "…"


def listed(named: Sequence[str], total: int | None = None) -> str:
    """Items an error names one by one, as a sentence lists them: "a", "a and b",
    "a, b and c"; with `total` (more items than `named` holds) the rest counted, "a, b and
    4 more", so a message naming a few of many stays short."""
    rest = (len(named) if total is None else total) - len(named)
    if rest > 0:
        return f"{', '.join(named)} and {rest} more"
    if len(named) < 2:
        return "".join(named)
    return f"{', '.join(named[:-1])} and {named[-1]}"


def quote_printed(text: str, limit: int = QUOTE_CHARS) -> str:
    """Text read back from a printed page, quoted as the reader sees it: line breaks,
    no-break and other spaces as one space (`100 000 000`, not `100\\xa0000\\xa0000`)."""
    return quote(" ".join(text.replace("\x02", "").split()), limit)


def _json(value: object, budget: int) -> str:
    """`value` in JSON's notation, built only as far as `budget` characters need."""
    if isinstance(value, Decimal):  # as the caller wrote it in JSON, not Decimal('1E-7')
        exponent = value.as_tuple().exponent
        return (format(value, "f") if isinstance(exponent, int) and abs(exponent) <= 40
                else str(value))
    if isinstance(value, str):
        return json.dumps(value[: budget + 1], ensure_ascii=False)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, Mapping | list | tuple):
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        parts: list[str] = []
        used = 0
        for key, item in items:
            part = _json(item, budget - used)
            if isinstance(value, Mapping):
                part = f"{json.dumps(str(key), ensure_ascii=False)}: {part}"
            parts.append(part)
            used += len(part) + 2
            if used > budget:
                break
        inner = ", ".join(parts)
        return f"{{{inner}}}" if isinstance(value, Mapping) else f"[{inner}]"
    if isinstance(value, bytes):
        return repr(value[: budget + 1])
    return json.dumps(str(value)[: budget + 1], ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


class KanalError(Exception):
    """Base of every error Kanal reports to a caller."""


class InvalidInput(KanalError):
    """The caller sent data that can never succeed as sent (INVALID_ARGUMENT)."""

    def __init__(self, message: str, violations: list[FieldViolation] | None = None):
        self.message = message
        self.violations = list(violations or [])
        # A violation of the field the message already names ("invalid <field>", as `field`
        # and the stream renaming in server/api/wire.py write it) says only why: the path
        # once ("invalid $.x: why"), not "invalid $.x: $.x: why".
        detail = "; ".join(v.description if message == f"invalid {v.field}" else str(v)
                           for v in self.violations[:20])
        super().__init__(f"{message}: {detail}" if detail else message)

    def __reduce__(self) -> tuple[type, tuple[str, list[FieldViolation]]]:
        # Raised in a worker process, it must arrive with its field violations intact.
        return (type(self), (self.message, self.violations))

    @classmethod
    def field(cls, field: str, description: str) -> InvalidInput:
        return cls(f"invalid {field}", [FieldViolation(field, description)])


class Gathered:
    """The `InvalidInput`s of a list's items gathered, so one refusal names every bad item
    (a statement of 60 transactions sent with 3-decimal amounts: all 60, up to
    `MAX_GATHERED`), not only the first, each item's checks still stopping at its own
    first error. `raise_any()` after the loop: one error is raised as it was; several as
    one `InvalidInput` with `message` and their violations in order.

        gathered = Gathered("invalid transactions")
        for i, row in enumerate(rows):
            with gathered:
                ...
        gathered.raise_any()
    """

    def __init__(self, message: str):
        self.message = message
        self.errors: list[InvalidInput] = []

    def __enter__(self) -> Gathered:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, _: object) -> bool:
        if isinstance(error, InvalidInput):
            self.errors.append(error)
            return True  # gathered: the next item is read
        return False

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            violations = [v for error in self.errors for v in error.violations]
            raise InvalidInput(self.message, violations[:MAX_GATHERED])


MAX_GATHERED = 20  # violations in one refusal (the preflight's MAX_REPORTED)


class NotFound(KanalError):
    """An unknown layout, layout version or document (NOT_FOUND)."""


class Conflict(KanalError):
    """The request contradicts something already accepted, e.g. an idempotency key reused
    with different data (ALREADY_EXISTS)."""


class FailedPrecondition(KanalError):
    """The system is not in a state where the request can run (FAILED_PRECONDITION).
    `violations` (optional) name the request fields whose state failed, as the API's
    `google.rpc.PreconditionFailure` (type `kind`, subject the field); most name none."""

    kind = "STATE"  # the PreconditionFailure violations' type; subclasses name theirs

    def __init__(self, message: str, violations: Sequence[FieldViolation] = ()):
        super().__init__(message)
        self.violations = list(violations)


class TooLarge(KanalError):
    """The request exceeds a configured size limit (RESOURCE_EXHAUSTED)."""


class Overloaded(KanalError):
    """A concurrency or time limit is reached: the render queue is full, this API key holds
    its share of calls, a stream stayed idle or open too long (RESOURCE_EXHAUSTED).
    `retry_after` (seconds) is the server's estimate of when a retry can succeed."""

    def __init__(self, message: str, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, float | None]]:
        return (type(self), (str(self), self.retry_after))


class Unauthenticated(KanalError):
    """No or unknown credentials (UNAUTHENTICATED)."""


class PermissionDenied(KanalError):
    """Known caller, but not allowed to do this (PERMISSION_DENIED)."""


class Unavailable(KanalError):
    """A backend (S3, index) is down; the caller may retry (UNAVAILABLE)."""


class DeadlineExceeded(KanalError):
    """The caller's deadline passed before the work could finish (DEADLINE_EXCEEDED): a
    retry with the same short deadline fails the same way, unlike UNAVAILABLE."""


class DataLoss(KanalError):
    """Archived bytes no longer match their recorded sha256, or are gone (DATA_LOSS)."""
