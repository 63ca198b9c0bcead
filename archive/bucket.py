"""The archive's bucket: a bucket name -> a bucket that exists with Object Lock enabled, or
an `ArchiveError` saying why it cannot be used.

Object Lock can only be switched on when a bucket is created (S3 has no way to add it later
to a bucket that holds objects), and the archive's retention and legal holds need it on
every object, so a missing bucket is created with it and an existing one without it is
refused rather than written to. Creating is idempotent: a bucket that another process
created meanwhile (`BucketAlreadyOwnedByYou`) is taken as it is, then checked like any other.

`call` runs each request as `ArchiveStore` runs all of them (archive.bounded_calls: bounded
in time and number); botocore's errors are left to the caller to translate
(archive.s3_errors.translated).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from archive.bounded_calls import BoundedCalls
from archive.errors import ArchiveError
from archive.s3_errors import error_code

__all__ = ["ensure_locked_bucket"]

_MISSING_CODES = {"404", "NoSuchBucket", "NotFound"}


def ensure_locked_bucket(call: BoundedCalls, client: Any, bucket: str, region: str) -> None:
    """Create `bucket` with Object Lock in `region` if it is missing; raise ArchiveError when
    it exists without Object Lock. botocore's ClientError for anything else S3 refuses."""
    if not _exists(call, client, bucket):
        kwargs: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            call(client.create_bucket, **kwargs)
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise
    try:
        config = call(client.get_object_lock_configuration, Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) != "ObjectLockConfigurationNotFoundError":
            raise
        config = {}
    if config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
        raise ArchiveError(
            f"bucket {bucket!r} exists without Object Lock; archived documents need "
            "a bucket created with Object Lock enabled"
        )


def _exists(call: BoundedCalls, client: Any, bucket: str) -> bool:
    try:
        call(client.head_bucket, Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) not in _MISSING_CODES:
            raise
        return False
    return True
