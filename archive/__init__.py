"""The e-archive: S3 object store and the document index. Knows nothing of gRPC or layouts.

Public names are re-exported here lazily (PEP 562), so `import archive.keys` in a render
worker does not pay for boto3 and SQLAlchemy:

- `archive.store`     ArchiveStore, StoredObject: immutable, retained, verified S3 objects
- `archive.index`     DocumentIndex: the portal's lookup tables (schema: `archive.tables`)
- `archive.records`   DocumentRecord, OutputRecord: what the index knows of a document
- `archive.keys`      document_key: where each channel output is stored
- `archive.retention` RetentionPolicy: how long each kind of document is locked
- `archive.embedded`  EmbeddedS3: SeaweedFS as Kanal's own S3 server
- `archive.errors`    ArchiveError and its subclasses
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ArchiveStore": "archive.store",
    "StoredObject": "archive.store",
    "DocumentIndex": "archive.index",
    "DocumentRecord": "archive.records",
    "OutputRecord": "archive.records",
    "document_key": "archive.keys",
    "RetentionPolicy": "archive.retention",
    "EmbeddedS3": "archive.embedded",
    "find_weed_binary": "archive.embedded",
    "ArchiveError": "archive.errors",
    "ArchiveUnavailable": "archive.errors",
    "AccessDenied": "archive.errors",
    "AlreadyCorrected": "archive.errors",
    "DuplicateDocument": "archive.errors",
    "EmbeddedS3Error": "archive.errors",
    "IntegrityError": "archive.errors",
    "ObjectConflict": "archive.errors",
    "ObjectNotFound": "archive.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'archive' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
