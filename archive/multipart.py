"""Large objects -> S3 multipart uploads: one conditional, retained object from parts.

`ArchiveStore.put` sends an object larger than `MULTIPART_THRESHOLD` here instead of its one
signed PutObject (archive.put_request). The upload carries the same metadata and Object Lock
retention; every part carries the sha256 of its own bytes (`ChecksumSHA256`), which S3
verifies per part; the completion is conditional (`If-None-Match: *`), so a key taken while
the parts went up aborts the upload instead of adding a version. An upload that fails or is
refused is aborted, best effort (a bucket lifecycle rule removes any left behind).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from archive.digests import checksum_base64
from archive.s3_errors import PRECONDITION_CODES, error_code

__all__ = ["MULTIPART_THRESHOLD", "PART_SIZE", "put_multipart"]

MULTIPART_THRESHOLD = 16 * 1024 * 1024  # larger objects are uploaded in parts
PART_SIZE = 8 * 1024 * 1024

Call = Callable[..., Any]  # ArchiveStore._call: a request run within the call's time budget


def put_multipart(
    call: Call,
    client: Any,
    bucket: str,
    key: str,
    content: bytes,
    media_type: str,
    headers: dict[str, str],
    lock: dict[str, Any],
) -> str | None:
    """Upload `content` to `bucket/key` in parts of `PART_SIZE` bytes, each request through
    `call` on boto3 S3 `client`. `headers`: the encoded user metadata; `lock`: put_object's
    Object Lock arguments. -> the new version id ("" if unversioned), None if the key is
    taken (the upload is aborted then)."""
    upload = call(client.create_multipart_upload,
        Bucket=bucket,
        Key=key,
        ContentType=media_type,
        Metadata=headers,
        ChecksumAlgorithm="SHA256",
        **lock,
    )
    upload_id = upload["UploadId"]
    try:
        parts = []
        for number, offset in enumerate(range(0, len(content), PART_SIZE), start=1):
            chunk = content[offset : offset + PART_SIZE]
            checksum = checksum_base64(hashlib.sha256(chunk).digest())
            response = call(client.upload_part,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
            parts.append(
                {"ETag": response["ETag"], "PartNumber": number, "ChecksumSHA256": checksum}
            )
        try:
            response = call(client.complete_multipart_upload,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if error_code(exc) in PRECONDITION_CODES:
                _abort(call, client, bucket, key, upload_id)
                return None
            raise
    except BaseException:
        _abort(call, client, bucket, key, upload_id)
        raise
    return str(response.get("VersionId") or "")


def _abort(call: Call, client: Any, bucket: str, key: str, upload_id: str) -> None:
    # Best effort: an upload left behind is removed by a bucket lifecycle rule, not by us.
    with suppress(ClientError, BotoCoreError):
        call(client.abort_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id)
