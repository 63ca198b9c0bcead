"""S3 error responses -> the archive's typed errors (archive.errors).

A closed port, a timeout or a 5xx becomes `ArchiveUnavailable` (retryable); a missing key
`ObjectNotFound`; refused credentials `AccessDenied`; bytes refused for not matching their
checksum header (`BadDigest`) `IntegrityError`; a failed `If-None-Match` is a precondition
the store handles itself (the key is taken).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from archive.errors import (
    AccessDenied,
    ArchiveError,
    ArchiveUnavailable,
    IntegrityError,
    ObjectNotFound,
)

NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
DENIED_CODES = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
}
UNAVAILABLE_CODES = {
    "500",
    "502",
    "503",
    "504",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
}
# the body's sha256 is not the one its (signed) checksum header gives: AWS S3, SeaweedFS
DIGEST_CODES = {"BadDigest"}
PRECONDITION_CODES = {"412", "PreconditionFailed", "ConditionalRequestConflict"}
NO_HOLD_CODES = frozenset(
    # AWS S3; MinIO; SeaweedFS (for an object that never had a hold)
    {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError",
     "NoSuchObjectLegalHold"}
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def from_client_error(exc: ClientError, where: str) -> ArchiveError:
    code = error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = exc.response.get("Error", {}).get("Message") or code
    if code == "NoSuchBucket":
        return ArchiveError(f"{where}: bucket does not exist (run ensure_bucket)")
    if code in NOT_FOUND_CODES:
        return ObjectNotFound(f"{where}: not found")
    if code in DIGEST_CODES:
        return IntegrityError(f"{where}: {code}: the bytes do not match their sha256: {message}")
    if code in DENIED_CODES:
        return AccessDenied(f"{where}: {code}: {message}")
    if code in UNAVAILABLE_CODES or (isinstance(status, int) and status >= 500):
        return ArchiveUnavailable(f"{where}: {code}: {message}")
    return ArchiveError(f"{where}: {code}: {message}")


@contextmanager
def translated(bucket: str, endpoint_url: str | None, key: str | None = None
               ) -> Iterator[None]:
    """Any botocore error raised inside -> its `ArchiveError` (naming s3://bucket/key); an
    `ArchiveError` passes as it is."""
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    try:
        yield
    except ArchiveError:
        raise
    except ClientError as exc:
        raise from_client_error(exc, where) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        endpoint = endpoint_url or "AWS S3"
        raise ArchiveUnavailable(f"{endpoint} unreachable ({where}): {exc}") from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise AccessDenied(f"no usable S3 credentials: {exc}") from exc
    except BotoCoreError as exc:
        raise ArchiveError(f"S3 request for {where} failed: {exc}") from exc
