"""S3 user metadata as the archive writes and reads it: caller strings <-> ASCII headers.

S3 user metadata travels as HTTP headers. Values that are not plain printable ASCII
("Åse Østby") are sent as RFC 2047 encoded words (`=?utf-8?b?...?=`, the form AWS itself
uses) and decoded on read, so callers see their strings unchanged. Keys must be lowercase
`[a-z0-9-]` (S3 lowercases them anyway); `sha256` is the archive's own key.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

SHA256_KEY = "sha256"
_MAX_METADATA_BYTES = 2048  # S3's limit for all user metadata keys + values
_METADATA_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_ENCODED_WORD = re.compile(r"^=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=$", re.IGNORECASE)
_PLAIN_VALUE = re.compile(r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$|^$")


def encode_metadata_value(value: str) -> str:
    """An HTTP-header-safe form of `value`: itself when it is printable ASCII without
    surrounding blanks, else an RFC 2047 encoded word (UTF-8, base64). A plain value that
    happens to look like an encoded word is encoded too, so decoding is always exact."""
    if _PLAIN_VALUE.match(value) and not _ENCODED_WORD.match(value):
        return value
    return "=?utf-8?b?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def decode_metadata_value(value: str) -> str:
    """Inverse of `encode_metadata_value`."""
    match = _ENCODED_WORD.match(value)
    if not match:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value


def encode_metadata(metadata: Mapping[str, str], sha256: str) -> dict[str, str]:
    encoded: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise ValueError(f"metadata key {key!r} must match [a-z0-9][a-z0-9-]*")
        if key == SHA256_KEY:
            raise ValueError(f"metadata key {SHA256_KEY!r} is reserved for the archive")
        if not isinstance(value, str):
            raise ValueError(f"metadata value for {key!r} must be a string")
        encoded[key] = encode_metadata_value(value)
    encoded[SHA256_KEY] = sha256
    size = sum(len(k) + len(v) for k, v in encoded.items())
    if size > _MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes encoded; S3 allows {_MAX_METADATA_BYTES}")
    return encoded


def decode_metadata(raw: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    sha256 = raw.get(SHA256_KEY)
    metadata = {k: decode_metadata_value(v) for k, v in raw.items() if k != SHA256_KEY}
    return sha256, metadata
