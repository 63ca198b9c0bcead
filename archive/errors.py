"""The archive's exceptions: what went wrong with S3 or the index, in words a caller can act on.

Every failure leaves the archive as one of these, never as a raw botocore, SQLAlchemy or
psycopg exception, so that `server/api` can map them to gRPC status codes without knowing
which backend raised them:

- `ArchiveUnavailable`  -> UNAVAILABLE (retryable: the endpoint or database is down or slow)
- `ArchiveDeadline`     -> DEADLINE_EXCEEDED (the call's deadline left S3 no time to answer)
- `ObjectNotFound`      -> NOT_FOUND
- `IntegrityError`      -> DATA_LOSS / INTERNAL (bytes do not match their sha256)
- `ObjectConflict`      -> ALREADY_EXISTS (a key is immutable once written)
- `DuplicateDocument`   -> ALREADY_EXISTS (document id or idempotency key already indexed)
- `AlreadyCorrected`    -> FAILED_PRECONDITION (a second correction of one document)
- `AccessDenied`        -> the archive's own credentials are wrong: an operator problem
- `EmbeddedS3Error`     -> the embedded SeaweedFS could not be started or found

All derive from `ArchiveError`, so `except ArchiveError` catches everything the package raises
on purpose (a `ValueError` for a malformed argument is a programming error, not an archive one).
"""

from __future__ import annotations


class ArchiveError(Exception):
    """Base class of everything the archive raises deliberately."""


class ArchiveUnavailable(ArchiveError):
    """The S3 endpoint or the index database cannot be reached, or timed out. Retry later."""


class ArchiveDeadline(ArchiveUnavailable):
    """The current call's deadline (archive.deadline) left a request to S3 less time than
    any answer takes: the caller's deadline is too short, S3 is not known to be down. A
    kind of ArchiveUnavailable, so whatever retries an unavailable archive retries this."""


class ObjectNotFound(ArchiveError):
    """No object (no current version) under that key."""


class IntegrityError(ArchiveError):
    """Bytes do not match their sha256: read back against the one recorded when they were
    archived, or put with a sha256 that is not theirs (refused by S3 or the store; nothing
    is stored then)."""


class ObjectConflict(ArchiveError):
    """The key already holds an object with different content; archived objects are immutable."""


class AccessDenied(ArchiveError):
    """S3 refused the request: wrong credentials, or an action the identity may not perform."""


class DuplicateDocument(ArchiveError):
    """The index already holds this (tenant, document id) or (tenant, idempotency key).

    `field` names which one ("document_id" or "idempotency_key", None if unknown);
    for an idempotency key, `existing_document_id` is the document that already holds it.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        existing_document_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.existing_document_id = existing_document_id


class AlreadyCorrected(ArchiveError):
    """A document already corrected was corrected again: a correction chain stays linear
    (one current document), so the caller must correct `corrected_by`, the correction that
    replaced `document_id`, instead."""

    def __init__(self, document_id: str, corrected_by: str) -> None:
        super().__init__(f"document {document_id} was already corrected by document "
                         f"{corrected_by}: correct {corrected_by} instead")
        self.document_id = document_id
        self.corrected_by = corrected_by


class EmbeddedS3Error(ArchiveError):
    """The embedded SeaweedFS server could not be found, started or stopped."""


class DataDirInUse(EmbeddedS3Error):
    """Another process runs an embedded SeaweedFS on this data directory (it holds the lock)."""
