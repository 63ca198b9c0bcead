"""What the archive knows about a stored object, from its S3 headers alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from archive.metadata import decode_metadata


@dataclass(frozen=True)
class StoredObject:
    """What the archive knows about one stored object (from its S3 headers alone)."""

    key: str
    sha256: str
    size: int
    media_type: str
    metadata: dict[str, str]
    retain_until: datetime | None
    version_id: str | None = None
    legal_hold: bool = field(default=False)
    # versions (and delete markers) written over this one under its key, by someone going
    # around the archive (archive.versions); 0 for an untouched key, as Kanal writes a key once
    newer_versions: int = 0


def retention_instant(retain_until: datetime) -> datetime:
    """UTC, rounded *up* to whole seconds: S3 keeps seconds, and rounding down would shorten
    a legal retention period."""
    if retain_until.tzinfo is None or retain_until.utcoffset() is None:
        raise ValueError("retain_until must be timezone-aware")
    instant = retain_until.astimezone(UTC)
    if instant.microsecond:
        instant = instant.replace(microsecond=0) + timedelta(seconds=1)
    return instant


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def stored_object(key: str, response: Mapping[str, Any]) -> StoredObject:
    recorded, metadata = decode_metadata(response.get("Metadata") or {})
    return StoredObject(
        key=key,
        sha256=(recorded or "").lower(),
        size=int(response.get("ContentLength", 0)),
        media_type=str(response.get("ContentType") or "application/octet-stream"),
        metadata=metadata,
        retain_until=as_utc(response.get("ObjectLockRetainUntilDate")),
        version_id=response.get("VersionId"),
        legal_hold=response.get("ObjectLockLegalHoldStatus") == "ON",
    )
