"""The archive's one hot request: a conditional, retained PutObject built and signed here,
turning (key, bytes, headers) into a stored version id with a fraction of boto3's CPU.

`ArchiveStore.put` sends the same request for every object: `If-None-Match: *`, Object Lock
retention, the sha256 as `x-amz-checksum-sha256` and in the metadata. Through
`client.put_object` boto3 spends 1.0-1.15 ms of CPU on each (load_tests/bench_s3_clients.py,
embedded SeaweedFS, 60 KB objects, four runs on 2026-12-01): event hooks, parameter
serialization, endpoint rules, response parsing, a second sha256 of the body for the SigV4
payload hash, and a `100-continue` round trip (botocore wraps a bytes body in a file
object, and every file body gets `Expect: 100-continue`, which SeaweedFS answers with an
extra interim response). Built here, the same put costs 0.37-0.42 ms on the client
(0.37-0.39x of `put_object`'s 1.0-1.06 in the same runs; 2.2 M instructions per
`ArchiveStore.put` against 4.3 M with botocore's signer, load_tests/count_s3_put.py) and no
more on SeaweedFS. What is left is mostly http.client and urllib3 writing the request and
parsing the response. Sending it over the embedded SeaweedFS's unix socket (`-s3.localSocket`)
instead of loopback TCP measured the same on both sides (six alternating rounds of 300
puts: client 0.47-0.68 ms TCP, 0.48-0.62 unix; SeaweedFS 1.6-2.0 and 1.67-1.9), so the
store keeps one transport for every S3.

The request is signed by archive.sigv4, which computes the Authorization header botocore's
`S3SigV4Auth` computes (held to it header for header in tests/unit/test_archive_sigv4.py)
at a seventh of its instructions (0.25 M against 1.87 M per put, the signed and prepared
request, load_tests/count_s3_put.py --what sign: botocore copies the headers into
`email.message` maps twice and derives the signing key with four HMACs every time; here the
key is derived once a day). Nothing else is reimplemented: the request is sent over the
boto3 client's own HTTP session (the same connection pool,
timeouts, TLS verification and proxies as every other call of the store), retried by
botocore's standard retry policy (`botocore.retries.standard`: the same retryable errors and
the same backoff as the client's `retries={"mode": "standard"}`), and an error response is
parsed by botocore's rest-xml parser into the `ClientError` that `client.put_object` raises,
so `archive.s3_errors` translates it as before.

The body's sha256 is computed once (by the renderer that made the bytes when the caller
passes it to `ArchiveStore.put`, else by the store): it goes into the metadata and into the
signed `x-amz-checksum-sha256` header, and the payload is signed as `UNSIGNED-PAYLOAD` (what
botocore itself does over HTTPS when a checksum header is present). Integrity does not
depend on the payload hash: S3 (AWS, and SeaweedFS as tested in
tests/integration/test_archive_put_request.py and test_archive_put_sha256.py) refuses a body
whose sha256 does not match the checksum header with `BadDigest`, and the header cannot be
changed without breaking the signature. (SeaweedFS does not compare a signed payload hash
with the body at all.)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import create_parser
from botocore.retries.standard import (
    ExponentialBackoff,
    RetryContext,
    RetryEventAdapter,
    RetryPolicy,
    StandardRetryConditions,
    ThrottlingErrorDetector,
)
from botocore.utils import percent_encode

from archive.sigv4 import SigningKeys, amz_date, host_header, sign

__all__ = ["SignedPut", "put_headers"]

_RETAIN_UNTIL_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # botocore's ISO 8601 header form, whole seconds


def put_headers(
    *,
    media_type: str,
    metadata: Mapping[str, str],
    checksum_sha256: str,
    retain_until: datetime | None,
    legal_hold: bool,
) -> dict[str, str]:
    """The headers of a conditional, retained PutObject (the names and value forms botocore
    serializes `put_object(...)` to).

    `metadata`: user metadata already ASCII (archive.metadata.encode_metadata), sent as
    `x-amz-meta-<key>`; `checksum_sha256`: base64 of the body's sha256 digest;
    `retain_until`: UTC, whole seconds (archive.objects.retention_instant), None for no
    retention. Retention is COMPLIANCE mode (S3 Object Lock)."""
    headers = {
        "Content-Type": media_type,
        "If-None-Match": "*",
        "x-amz-checksum-sha256": checksum_sha256,
    }
    if retain_until is not None:
        headers["x-amz-object-lock-mode"] = "COMPLIANCE"
        headers["x-amz-object-lock-retain-until-date"] = retain_until.strftime(
            _RETAIN_UNTIL_FORMAT)
    if legal_hold:
        headers["x-amz-object-lock-legal-hold"] = "ON"
    for key, value in metadata.items():
        headers[f"x-amz-meta-{key}"] = value
    return headers


class SignedPut:
    """PutObject requests for one boto3 S3 client (path-style addressing), sharing its
    credentials, region, HTTP session and retry budget (`total_max_attempts`)."""

    def __init__(self, client: Any, credentials: Any, region: str) -> None:
        self._endpoint = client.meta.endpoint_url.rstrip("/")
        self._path_prefix = urlsplit(self._endpoint).path  # "" unless the endpoint has one
        self._host = host_header(self._endpoint)
        self._keys = SigningKeys(region)  # the derived signing key, once a day
        # the client's transport: its pool, timeouts, TLS and proxy settings
        self._http = client._endpoint.http_session
        self._credentials = credentials  # botocore Credentials (maybe refreshable) or None
        self._region = region
        self._operation = client.meta.service_model.operation_model("PutObject")
        self._parser = create_parser("rest-xml")
        attempts = int(client.meta.config.retries.get("total_max_attempts", 3))
        self._retry = RetryPolicy(
            retry_checker=StandardRetryConditions(max_attempts=attempts),
            retry_backoff=ExponentialBackoff(
                service_name="s3",
                throttling_detector=ThrottlingErrorDetector(RetryEventAdapter())),
        )

    def __call__(self, bucket: str, key: str, body: bytes, headers: Mapping[str, str]) -> str:
        """PUT `body` at `bucket/key` with `headers` (see `put_headers`). -> the new version
        id ("" when the bucket is not versioned). Raises ClientError for an S3 error
        response (a taken key: code PreconditionFailed, status 412) and botocore's
        connection errors, each after the standard retries."""
        path = f"/{bucket}/{percent_encode(key, safe='/~')}"
        attempt = 0
        while True:
            attempt += 1
            response: AWSResponse | None = None
            parsed: dict[str, Any] | None = None
            caught: Exception | None = None
            try:
                response = self._http.send(self._signed(path, body, headers))
            except (BotoConnectionError, HTTPClientError) as exc:
                caught = exc
            if response is not None:
                if response.status_code < 300:
                    return str(response.headers.get("x-amz-version-id") or "")
                parsed = self._parser.parse(
                    {"status_code": response.status_code, "headers": response.headers,
                     "body": response.content}, self._operation.output_shape)
            context = RetryContext(attempt_number=attempt, operation_model=self._operation,
                                   parsed_response=parsed, http_response=response,
                                   caught_exception=caught)
            if not self._retry.should_retry(context):
                if caught is not None:
                    raise caught
                assert parsed is not None
                raise ClientError(parsed, "PutObject")
            time.sleep(self._retry.compute_retry_delay(context))

    def _signed(self, path: str, body: bytes, headers: Mapping[str, str]) -> AWSPreparedRequest:
        """The request as botocore's `AWSRequest.prepare()` makes it after `S3SigV4Auth`
        signed it, signed by archive.sigv4 (the same headers, a fifth of the CPU)."""
        if self._credentials is None:
            raise NoCredentialsError()
        signed = sign(self._keys, self._credentials.get_frozen_credentials(), "PUT",
                      self._host, self._path_prefix + path, headers, amz_date())
        signed["Content-Length"] = str(len(body))
        return AWSPreparedRequest("PUT", self._endpoint + path, signed, body,
                                  stream_output=False, context={})
