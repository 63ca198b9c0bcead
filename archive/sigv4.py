"""AWS Signature Version 4 for the archive's own S3 requests: turns (credentials, method,
path, headers, instant) into the headers botocore's `S3SigV4Auth` adds, byte for byte, at
a seventh of its instructions.

botocore signs a request by copying its headers into an `email.message`-backed map twice
(once for the canonical request, once for the Authorization header), lowercasing every
name several times, and deriving the signing key with four HMACs for every request
(1.87 M instructions per archive put for signing and preparing the request, of 4.3 M
for the whole `ArchiveStore.put`; here 0.25 M: load_tests/count_s3_put.py). The derived
key depends only on the secret, the day (UTC), the region and the service, so it is kept
per day here (`SigningKeys`), and the canonical request is built once from the headers
the caller already has in a dict.

What is signed is what botocore signs for a PutObject with payload signing off
(`Config(s3={"payload_signing_enabled": False})`, as archive.put_request sent it before):
every header given (names lowercased, values trimmed and inner whitespace collapsed, the
values of names that differ only in case joined by ","), `host` (lowercase, the port only
when not the scheme's default), `x-amz-date`, `x-amz-content-sha256: UNSIGNED-PAYLOAD`,
`x-amz-security-token` for temporary credentials; the path as sent (S3 paths are not
normalized); no query string. tests/unit/test_archive_sigv4.py holds it to botocore's own
Authorization header for the same instant. Source: AWS, "Create a signed AWS API request"
(Signature Version 4), and botocore.auth.SigV4Auth / S3SigV4Auth.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SIGNED_HEADERS_BLACKLIST

__all__ = ["UNSIGNED_PAYLOAD", "SigningKeys", "amz_date", "host_header", "sign"]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_ALGORITHM = "AWS4-HMAC-SHA256"
_UNSIGNED = frozenset(name.lower() for name in SIGNED_HEADERS_BLACKLIST)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def amz_date(epoch: float | None = None) -> str:
    """`x-amz-date` of `epoch` (seconds since 1970, UTC; now when None): "20261201T074500Z"."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def host_header(endpoint_url: str) -> str:
    """The `host` value botocore signs for requests to `endpoint_url`: the host lowercased
    (IPv6 in brackets), `:port` only when it is not the scheme's default."""
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


class SigningKeys:
    """The SigV4 signing key of one region and service, derived once per secret and day.

    Thread-safe: the one cached entry is replaced as a whole."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region = region
        self.service = service
        self._cached: tuple[str, str, bytes] | None = None  # (secret, yyyymmdd, key)

    def key(self, secret: str, day: str) -> bytes:
        """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service),
        "aws4_request") for `day` (yyyymmdd)."""
        cached = self._cached
        if cached is not None and cached[0] == secret and cached[1] == day:
            return cached[2]
        key = _hmac(("AWS4" + secret).encode(), day)
        for part in (self.region, self.service, "aws4_request"):
            key = _hmac(key, part)
        self._cached = (secret, day, key)
        return key


def sign(keys: SigningKeys, credentials: Any, method: str, host: str, path: str,
         headers: Mapping[str, str], date: str) -> dict[str, str]:
    """`headers` plus the SigV4 headers of a request with an unsigned payload: X-Amz-Date,
    X-Amz-Content-SHA256, X-Amz-Security-Token (temporary credentials only) and
    Authorization, in the spelling botocore sends.

    `credentials`: botocore frozen credentials (access_key, secret_key, token); `host`: as
    `host_header` gives it; `path`: the request path as sent, already percent-encoded,
    without a query; `date`: `amz_date()` of the signing instant. A `host`, `Authorization`,
    date or payload header in `headers` is replaced, as botocore replaces them."""
    signed = {name: value for name, value in headers.items()
              if name.lower() not in _REPLACED}
    signed["X-Amz-Date"] = date
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    signed["X-Amz-Content-SHA256"] = UNSIGNED_PAYLOAD

    canonical: dict[str, str] = {"host": host}
    for name, value in signed.items():
        lname = name.lower()
        if lname in _UNSIGNED:
            continue
        value = " ".join(value.split())
        canonical[lname] = f"{canonical[lname]},{value}" if lname in canonical else value
    names = sorted(canonical)
    signed_names = ";".join(names)
    request = "\n".join((
        method, path, "",
        "".join(f"{name}:{canonical[name]}\n" for name in names),
        signed_names, UNSIGNED_PAYLOAD))
    day = date[:8]
    scope = f"{day}/{keys.region}/{keys.service}/aws4_request"
    to_sign = "\n".join((_ALGORITHM, date, scope,
                         hashlib.sha256(request.encode()).hexdigest()))
    signature = hmac.new(keys.key(credentials.secret_key, day), to_sign.encode(),
                         hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}")
    return signed


_REPLACED = frozenset({"host", "authorization", "x-amz-date", "x-amz-content-sha256",
                       "x-amz-security-token", "date"})


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
