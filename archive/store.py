"""The object store: turns a channel Output's bytes into an immutable, retained S3 object and
back into verified bytes.

Why it looks like this:

- **Immutable keys.** A key is written once. Uploads are conditional (`If-None-Match: *`), so a
  second writer can never add a version silently: re-putting the *same* bytes (a retried
  request) returns the object that is already there, different bytes raise `ObjectConflict`.
- **Retention.** Each object carries its own Object Lock retention in COMPLIANCE mode (nobody,
  not even the root account, can shorten it or delete the version before `retain_until`) and
  optionally a legal hold. The bucket must have Object Lock enabled (`ensure_bucket`,
  archive.bucket).
- **Integrity.** The sha256 of the bytes is sent with the upload (`x-amz-checksum-sha256`, so
  the server refuses a corrupted upload: `IntegrityError`), recorded in the object's metadata
  (`sha256`) and verified on every `get()`: bytes that no longer match raise `IntegrityError`.
  Together with the caller's metadata this makes the object self-describing: the index can be
  rebuilt from `iter_objects()` alone. A caller that hashed the bytes already (the renderers)
  passes its digest to `put`, which then hashes only where S3 checks no whole-object
  checksum (multipart uploads, a key already taken): each archived document is hashed once.
- **Metadata is ASCII on the wire.** S3 user metadata travels as HTTP headers. Values that are
  not plain printable ASCII ("Åse Østby") are sent as RFC 2047 encoded words
  (`=?utf-8?b?...?=`, the form AWS itself uses) and decoded on read, so callers see their
  strings unchanged. Keys must be lowercase `[a-z0-9-]` (S3 lowercases them anyway).
- **Failures are typed.** A closed port, a timeout or a 5xx becomes `ArchiveUnavailable`
  (retryable); a missing key `ObjectNotFound`; refused credentials `AccessDenied`. The client
  connects with a 3 s timeout and makes up to 3 attempts (`max_attempts` counts the retries,
  as in botocore's retry config), so an outage is reported within a few
  seconds (a closed port: about 1-2.5 s); callers retry `ArchiveUnavailable` at their level.
- **A store that refuses writes is down.** 3 puts in a row refused by S3 itself (5xx) make
  `ping` fail, naming the last error, until a put succeeds; `on_write_failures` is told
  (the server restarts an embedded SeaweedFS): archive.write_health.
- **A hung S3 never hangs the caller.** Every request runs in the store's own threads, for
  at most the call's time left or `call_timeout` s, at most `max_inflight` at once
  (archive.bounded_calls); a put that lands after its caller gave up leaves an object
  without an index row, which `archive.rebuild` reconciles.
- **Kanal's version is the key's first.** Object Lock keeps a version written over a key
  (by someone going around the archive) from replacing Kanal's: reads, holds, presigned URLs
  and `iter_objects` fall back to or name the first version (archive.versions).

One `ArchiveStore` may be shared by threads: it owns its own boto3 session and client, and
boto3 clients are thread-safe.

**Why boto3 and not the `minio` SDK** (load_tests/bench_s3_clients.py, embedded SeaweedFS,
60 KB objects, 15 metadata keys, COMPLIANCE retention, sha256 checksum; two runs each,
2026-12-01): minio's put costs less client CPU than boto3's `put_object` (0.46-0.53 ms
against 1.0-1.06; HEAD 0.33 against 0.78-0.80), but its public API cannot send
`If-None-Match` (nor any conditional write): every put would overwrite silently, or need a
HEAD first, which leaves a race in which two writers both "create" the key. Immutable keys
are this store's first promise, so boto3 stays; it runs with `parameter_validation` off
(the store builds every request itself) and one client per store (a new boto3 client per
request costs ~100 ms of CPU).
The put itself, the archive's hot path, does not go through `put_object`: archive.put_request
builds the one conditional, retained request, signs it with archive.sigv4 (botocore's
SigV4, header for header, with the signing key derived once a day) and sends it over this
client's own connections with its retry policy: 0.37-0.42 ms of client CPU per put, below
minio's 0.46-0.53 for the same headers (`_put_object`, its private API) and 0.37-0.39x of
`put_object`'s; 0.48-0.50 ms through `ArchiveStore.put` (its bounded threads and metadata
encoding included). SeaweedFS spends 1.5-1.8 ms on each either way; `If-None-Match` is
about 0.3 of it (a lookup and a filer lock per put: minio's unconditional put 1.25-1.38).
The encodings live beside this module: archive.metadata (header values), archive.objects
(StoredObject from headers), archive.s3_errors (error responses -> typed errors),
archive.digests (sha256 forms, the check of every read); objects over `MULTIPART_THRESHOLD`
go up in parts through archive.multipart.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from archive.bounded_calls import BoundedCalls
from archive.bucket import ensure_locked_bucket
from archive.digests import checksum_base64, digest_from_hex, hashed, verified
from archive.errors import (
    ArchiveError,
    ArchiveUnavailable,
    IntegrityError,
    ObjectConflict,
    ObjectNotFound,
)
from archive.metadata import (
    decode_metadata,
    decode_metadata_value,
    encode_metadata,
    encode_metadata_value,
)
from archive.multipart import MULTIPART_THRESHOLD, put_multipart
from archive.objects import StoredObject, retention_instant, stored_object
from archive.put_request import SignedPut, put_headers
from archive.s3_errors import (
    NO_HOLD_CODES,
    PRECONDITION_CODES,
    error_code,
    translated,
)
from archive.versions import KeyVersions, first_version, key_versions
from archive.write_health import THRESHOLD as WRITE_FAILURE_THRESHOLD
from archive.write_health import WriteFailures, probe_write

__all__ = ["MULTIPART_THRESHOLD", "ArchiveStore", "StoredObject", "decode_metadata_value",
           "encode_metadata_value"]

log = logging.getLogger(__name__)

_MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit
_HEAD_CONCURRENCY = 16  # HEADs in flight while listing (the client pools 32 connections)


# --- the store --------------------------------------------------------------------------


class ArchiveStore:
    """Immutable, retained, verified objects in one S3 bucket."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        bucket: str,
        access_key: str | None,
        secret_key: str | None,
        region: str = "us-east-1",
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        max_attempts: int = 2,
        call_timeout: float = 15.0,
        max_inflight: int = 32,
        on_write_failures: Callable[[], None] | None = None,
        write_failure_threshold: int = WRITE_FAILURE_THRESHOLD,
    ) -> None:
        """`on_write_failures`: called (from the put's thread; it must return at once) when
        `write_failure_threshold` consecutive puts have failed on S3's side, and on each
        failure after that (archive.write_health), e.g. to restart an embedded S3."""
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.write_failures = WriteFailures(write_failure_threshold, on_write_failures)
        # every request runs through `_call`: bounded in time and in number (see there)
        self._call = BoundedCalls(endpoint_url or "AWS S3", call_timeout, max_inflight)
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
        )
        self._client: Any = session.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"max_attempts": max_attempts, "mode": "standard"},
                max_pool_connections=max(32, max_inflight),
                tcp_keepalive=True,
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                parameter_validation=False,  # requests are built here (see the docstring)
                # the store sends the sha256 of every upload and verifies every download
                # against its recorded sha256 itself: no second checksum of the same bytes
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        # the hot path, PutObject, is built and signed by archive.put_request over this
        # client's own connections (see there: about half the CPU of put_object)
        self._signed_put = SignedPut(self._client, session.get_credentials(), region)

    # --- bucket ---------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock if it is missing; refuse one without it
        (ArchiveError; archive.bucket)."""
        with self._errors():
            ensure_locked_bucket(self._call, self._client, self.bucket, self.region)

    # --- writing --------------------------------------------------------------------------

    def put(
        self,
        key: str,
        content: bytes,
        *,
        media_type: str,
        metadata: dict[str, str],
        retain_until: datetime | None,
        legal_hold: bool = False,
        sha256: str | None = None,
    ) -> StoredObject:
        """Store `content` under `key` once, retained in COMPLIANCE mode until `retain_until`.

        Re-putting identical bytes returns the stored object unchanged (its original metadata
        and retention); different bytes raise `ObjectConflict`.

        `sha256`: the hex sha256 of `content` when the caller has it already (a renderer's
        `Output.sha256`), so a one-request put does not hash the bytes again: S3 verifies it
        (the signed `x-amz-checksum-sha256`; AWS and SeaweedFS refuse other bytes with
        `BadDigest`). Where S3 checks no checksum of the whole object, the store hashes the
        bytes itself: objects over `MULTIPART_THRESHOLD` (S3 checks each part) and a key that
        is taken (the stored sha256 is compared with the bytes' own). Either way a `sha256`
        that is not the content's raises `IntegrityError` and nothing is stored; one that is
        not 64 hex digits raises ValueError.
        """
        if not key or key.startswith("/"):
            raise ValueError(f"invalid object key {key!r}")
        claimed = digest_from_hex(sha256) if sha256 is not None else None
        multipart = len(content) > MULTIPART_THRESHOLD
        if claimed is not None and not multipart:  # one request: S3 checks the claim
            digest, unchecked = claimed, True
        else:
            digest, unchecked = hashed(content, claimed), False
        headers = encode_metadata(metadata, digest.hex())
        instant = retention_instant(retain_until) if retain_until is not None else None
        if instant is not None and instant <= datetime.now(UTC):
            raise ValueError(f"retain_until {instant.isoformat()} is not in the future")
        lock: dict[str, Any] = {}
        if instant is not None:
            lock["ObjectLockMode"] = "COMPLIANCE"
            lock["ObjectLockRetainUntilDate"] = instant
        if legal_hold:
            lock["ObjectLockLegalHoldStatus"] = "ON"

        # S3's own failures (5xx) in a row mark the archive unhealthy (archive.write_health);
        # a key found taken wrote nothing and returns before the reset
        try:
            with self._errors(key):
                if multipart:
                    existing = self._head_or_none(key)
                    if existing is not None:
                        return self._same_or_conflict(existing, digest.hex())
                    created = put_multipart(self._call, self._client, self.bucket, key, content,
                                            media_type, headers, lock)
                else:
                    created = self._put_single(key, content, put_headers(
                        media_type=media_type, metadata=headers,
                        checksum_sha256=checksum_base64(digest), retain_until=instant,
                        legal_hold=legal_hold))
                if created is None:  # the key was taken between our check and our write
                    # S3 refused on the precondition, maybe before checking the checksum: compare
                    # the stored sha256 with the bytes' own, never with an unchecked claim
                    if unchecked:
                        digest = hashed(content, claimed)
                    return self._same_or_conflict(self.head(key), digest.hex())
        except ArchiveError as exc:
            self.write_failures.failed(exc)
            raise
        self.write_failures.succeeded()
        return StoredObject(
            key=key,
            sha256=digest.hex(),
            size=len(content),
            media_type=media_type,
            metadata=dict(metadata),
            retain_until=instant,
            version_id=created or None,
            legal_hold=legal_hold,
        )

    def _put_single(self, key: str, content: bytes, headers: dict[str, str]) -> str | None:
        """PutObject if-none-match (archive.put_request); the new version id ("" if
        unversioned), None if the key is taken."""
        try:
            return self._call(self._signed_put, self.bucket, key, content, headers)
        except ClientError as exc:
            if error_code(exc) in PRECONDITION_CODES:
                return None
            raise

    @staticmethod
    def _same_or_conflict(existing: StoredObject, sha256: str) -> StoredObject:
        if existing.sha256 == sha256:
            return existing
        raise ObjectConflict(
            f"{existing.key!r} is already archived with different content "
            f"(sha256 {existing.sha256[:12]}..., not {sha256[:12]}...)"
        )

    # --- reading --------------------------------------------------------------------------

    def get(self, key: str, *, expected_sha256: str | None = None,
            current_only: bool = False) -> bytes:
        """The bytes Kanal archived under `key`, verified against the sha256 in their metadata
        (and against `expected_sha256`, e.g. the one in the index, when given).

        The current version is read first. When it fails its check or is gone because someone
        wrote or deleted around the archive, the key's first version, Kanal's own
        (archive.versions), is read and verified instead, and the forgery logged.
        IntegrityError or ObjectNotFound when that fails too, or at once with
        `current_only` (archive.rebuild `verify` tells the two cases apart)."""
        try:
            return self._verified(key, None, expected_sha256)
        except (IntegrityError, ObjectNotFound) as exc:
            if current_only:
                raise
            versions = self.versions(key)
            if versions is None or not versions.newer:
                raise
            try:
                content = self._verified(key, versions.first, expected_sha256)
            except (IntegrityError, ObjectNotFound):
                raise exc from None
            log.warning("%s: %d newer version(s) written around the archive (%s); read the "
                        "retained original, version %s", key, versions.newer, exc,
                        versions.first)
            return content

    def _verified(self, key: str, version_id: str | None, expected_sha256: str | None
                  ) -> bytes:
        with self._errors(key):
            response, content = self._call(self._get_object, key, version_id)
        recorded, _ = decode_metadata(response.get("Metadata") or {})
        return verified(key, content, recorded, expected_sha256)

    def _get_object(self, key: str, version_id: str | None) -> tuple[Any, bytes]:
        version = {"VersionId": version_id} if version_id else {}
        response = self._client.get_object(Bucket=self.bucket, Key=key, **version)
        return response, response["Body"].read()

    def versions(self, key: str) -> KeyVersions | None:
        """`key`'s first version (Kanal's object) and how many were written over it; None
        when no version of it is stored (archive.versions)."""
        with self._errors(key):
            return self._call(first_version, self._client, self.bucket, key)

    def _original(self, key: str) -> dict[str, str]:
        """The request parameter that names Kanal's version of `key` (ObjectNotFound when
        none is stored)."""
        versions = self.versions(key)
        if versions is None:
            raise ObjectNotFound(f"s3://{self.bucket}/{key}: not found")
        return {"VersionId": versions.first}

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Place (on=True) or release a legal hold on Kanal's version of `key` (its first,
        archive.versions). A held object cannot be deleted even after its retention ends;
        releasing the hold never shortens the COMPLIANCE retention."""
        with self._errors(key):
            self._call(self._client.put_object_legal_hold, Bucket=self.bucket, Key=key,
                       LegalHold={"Status": "ON" if on else "OFF"}, **self._original(key))

    def legal_hold(self, key: str) -> bool:
        """Whether Kanal's version of `key` is under a legal hold."""
        with self._errors(key):
            try:
                response = self._call(self._client.get_object_legal_hold, Bucket=self.bucket,
                                      Key=key, **self._original(key))
            except ClientError as exc:
                if error_code(exc) in NO_HOLD_CODES:
                    return False
                raise
        return response.get("LegalHold", {}).get("Status") == "ON"

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        """What S3 knows about the current version of `key`, or of `version_id` (no body
        transferred)."""
        version = {"VersionId": version_id} if version_id else {}
        with self._errors(key):
            response = self._call(self._client.head_object, Bucket=self.bucket, Key=key,
                                  **version)
        return stored_object(key, response)

    def presigned_url(self, key: str, expires_seconds: int, version_id: str | None = None
                      ) -> str:
        """A time-limited GET URL for the current version of `key`, or for `version_id`.
        Computed locally (no request is made), so it neither checks that the key exists nor
        verifies the bytes the holder downloads."""
        if not 1 <= expires_seconds <= _MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_seconds must be within 1..{_MAX_PRESIGN_SECONDS}")
        params = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        with self._errors(key):
            url: str = self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_seconds)
        return url

    def iter_objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """Kanal's object of every key under `prefix` (its first version, archive.versions)
        in key order, with its metadata and `newer_versions`: the input for rebuilding the
        index from the archive alone. A listing carries no user metadata, so each object
        needs a HEAD; up to 1,000 run concurrently, since one at a time a large archive is
        mostly waiting on round trips."""
        with self._errors(prefix), ThreadPoolExecutor(_HEAD_CONCURRENCY) as heads:
            listed = key_versions(self._client, self.bucket, prefix)
            while batch := list(itertools.islice(listed, 1000)):
                for obj in heads.map(self._first_or_none, batch):  # map keeps the key order
                    if obj is not None:  # None: its version expired since the listing
                        yield obj

    def _first_or_none(self, versions: KeyVersions) -> StoredObject | None:
        found = self._head_or_none(versions.key, versions.first)
        return found and dataclasses.replace(found, newer_versions=versions.newer)

    def _head_or_none(self, key: str, version_id: str | None = None) -> StoredObject | None:
        try:
            return self.head(key, version_id)
        except ObjectNotFound:
            return None

    def ping(self, timeout: float = 2.0) -> None:
        """One cheap request (HEAD of the bucket) within `timeout` s, or ArchiveUnavailable
        / AccessDenied: how health checks ask whether the archive answers. Also
        ArchiveUnavailable (naming the last error) while the last puts all failed on S3's
        side (`write_failures`, archive.write_health): an S3 that answers a HEAD but refuses
        every write is down for the archive. While so, each ping also tries one write
        itself (archive.write_health.probe_write), so the archive is reported up again as
        soon as S3 takes writes, even when nobody sends documents to an archive reported
        down."""
        with self._errors():
            self._call(self._client.head_bucket, Bucket=self.bucket, _timeout=timeout)
        if self.write_failures.failing:
            probe_write(self._call, self._client, self.bucket, self._errors,
                        self.write_failures, timeout)
        reason = self.write_failures.reason
        if reason:
            raise ArchiveUnavailable(f"{self.endpoint_url or 'AWS S3'}: {reason}")

    @property
    def call_timeout(self) -> float:
        """Seconds a caller without a deadline waits for one S3 request (archive.bounded_calls)."""
        return self._call.call_timeout

    @call_timeout.setter
    def call_timeout(self, seconds: float) -> None:
        self._call.call_timeout = seconds

    @property
    def requests_in_flight(self) -> int:
        """Requests sent to S3 and not answered yet (including abandoned ones)."""
        return self._call.in_flight

    def _errors(self, key: str | None = None) -> AbstractContextManager[None]:
        """botocore's errors inside -> the archive's typed errors (archive.s3_errors)."""
        return translated(self.bucket, self.endpoint_url, key)
