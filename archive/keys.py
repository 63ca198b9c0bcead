"""Object keys: turn a document's identity into the S3 key its channel output is stored under.

The scheme is

    {tenant}/{customer_id}/{yyyy}/{document_id}/{channel}.{extension}

for example `sparebank-vest/10020030/2025/01JD4W8ZQ7M3V6T0X2N5B9K1RC/print.pdf`.

Why this shape:

- **Tenant first** so that one prefix holds everything a tenant owns (bucket policies, lifecycle
  rules, exports and deletion after retention all work per tenant prefix).
- **Customer next** so that a portal listing or a data-subject request ("everything for this
  customer") is one prefix listing, without the index.
- **Year** (of `created_at`, in UTC) keeps customer prefixes short and lets retention tooling
  work year by year, matching how retention periods are counted.
- **Document id, then one object per channel** (`print.pdf`, `email.html`, `einvoice.xml`):
  all renditions of one document sit together.

Tenant and customer ids come from callers, so they are made safe: every byte outside
`[A-Za-z0-9._-]` is percent-encoded (UTF-8, `%XX` upper-case; `%` itself becomes `%25`), and a
segment that would read `.` or `..` has its dots encoded. No id can therefore contain `/` or
climb out of its prefix, and the encoding is reversible (`parse_document_key`). Document ids,
channels and extensions are produced by Kanal itself and are validated instead of encoded.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import unquote

__all__ = ["DocumentKey", "customer_prefix", "document_key", "encode_segment", "parse_document_key"]

_SAFE = frozenset(string.ascii_letters + string.digits + "._-")
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_EXTENSION = re.compile(r"^[a-z0-9]{1,10}$")


class DocumentKey(NamedTuple):
    """The parts of a document key, decoded."""

    tenant: str
    customer_id: str
    year: int
    document_id: str
    channel: str
    extension: str


def encode_segment(value: str) -> str:
    """Percent-encode `value` so that it is one safe key segment (never `/`, `.` or `..`)."""
    if not value:
        raise ValueError("a key segment must not be empty")
    out: list[str] = []
    for char in value:
        if char in _SAFE:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    encoded = "".join(out)
    if encoded in {".", ".."}:
        encoded = encoded.replace(".", "%2E")
    return encoded


def customer_prefix(tenant: str, customer_id: str) -> str:
    """The prefix (ending in `/`) under which all of a customer's documents are stored."""
    return f"{encode_segment(tenant)}/{encode_segment(customer_id)}/"


def document_key(
    tenant: str,
    customer_id: str,
    created_at: datetime,
    document_id: str,
    channel: str,
    extension: str,
) -> str:
    """The S3 key of one channel output of one document (see the module docstring)."""
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise ValueError("created_at must be timezone-aware")
    if not _DOCUMENT_ID.match(document_id):
        raise ValueError(f"invalid document id {document_id!r}")
    if not _CHANNEL.match(channel):
        raise ValueError(f"invalid channel {channel!r}")
    extension = extension.lower().lstrip(".")
    if not _EXTENSION.match(extension):
        raise ValueError(f"invalid file extension {extension!r}")
    year = created_at.astimezone(UTC).year
    return f"{customer_prefix(tenant, customer_id)}{year:04d}/{document_id}/{channel}.{extension}"


def parse_document_key(key: str) -> DocumentKey:
    """Inverse of `document_key`; raises ValueError for a key not of that shape."""
    parts = key.split("/")
    if len(parts) != 5 or not parts[2].isdigit() or len(parts[2]) != 4:
        raise ValueError(f"not a document key: {key!r}")
    tenant, customer, year, document_id, leaf = parts
    channel, dot, extension = leaf.rpartition(".")
    if not dot or not _CHANNEL.match(channel) or not _EXTENSION.match(extension):
        raise ValueError(f"not a document key: {key!r}")
    if not _DOCUMENT_ID.match(document_id):
        raise ValueError(f"not a document key: {key!r}")
    return DocumentKey(
        tenant=unquote(tenant, errors="strict"),
        customer_id=unquote(customer, errors="strict"),
        year=int(year),
        document_id=document_id,
        channel=channel,
        extension=extension,
    )
