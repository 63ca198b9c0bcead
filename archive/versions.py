"""A key's retained original: the version Kanal wrote, found again when someone wrote around
the archive.

Kanal writes every key once, conditionally (`If-None-Match: *`, archive.store), so the object
Kanal archived is always the *first* version of its key. Object Lock needs a versioned
bucket, so a writer holding S3 credentials who puts over a key (or deletes it) adds a newer
version (or a delete marker) and leaves that first version in place, under its COMPLIANCE
retention, until it expires. Reading only the current version then showed the forgery: the
portal answered DATA_LOSS for a document whose original is intact, and an index rebuilt from
the bucket dropped the output, or the document (QA 2026-12-02). So the archive reads, holds,
presigns and reindexes a key's first version, and says when a key has newer ones.

Shape: `key_versions(client, bucket, prefix)` -> `KeyVersions` per key, in key order, from
S3's ListObjectVersions (AWS S3 API reference: versions of one key are listed newest first,
keys in UTF-8 binary order; pages may split one key's versions, which is handled here).
`first_version(client, bucket, key)` is the same for one exact key. Both raise botocore's
errors; archive.store translates them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["KeyVersions", "first_version", "key_versions"]


@dataclass(frozen=True)
class KeyVersions:
    """One key's versions: `first` is the oldest version id (Kanal's object); `newer` counts
    the versions and delete markers written over it (0 for an untouched key)."""

    key: str
    first: str
    newer: int


def key_versions(client: Any, bucket: str, prefix: str = "") -> Iterator[KeyVersions]:
    """Every key under `prefix` that still has a stored version, in key order. A key with
    only delete markers left (its versions expired and were removed) is skipped."""
    current: str | None = None
    first: str | None = None
    seen = 0
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        # one page's versions and delete markers, merged in S3's order: key, newest first
        entries = [(v["Key"], v["VersionId"], True) for v in page.get("Versions", [])]
        entries += [(m["Key"], m["VersionId"], False) for m in page.get("DeleteMarkers", [])]
        entries.sort(key=lambda entry: entry[0])  # stable: each list is newest first already
        for key, version, stored in entries:
            if key != current:
                if current is not None and first is not None:
                    yield KeyVersions(current, first, seen - 1)
                current, first, seen = key, None, 0
            seen += 1
            if stored:
                first = version  # the last stored version listed is the oldest
    if current is not None and first is not None:
        yield KeyVersions(current, first, seen - 1)


def first_version(client: Any, bucket: str, key: str) -> KeyVersions | None:
    """`key`'s versions (None when no version of it is stored)."""
    for found in key_versions(client, bucket, key):
        if found.key == key:
            return found
        if found.key > key:
            break
    return None
