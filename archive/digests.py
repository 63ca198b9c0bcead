"""sha256 digests as the archive writes them: raw bytes -> hex (object metadata, the index,
callers' `sha256`) and base64 (S3's `x-amz-checksum-sha256` / `ChecksumSHA256`).

A caller that has hashed the bytes already (a renderer's `Output.sha256`) hands the hex
digest to `ArchiveStore.put`, which then hashes them only where S3 checks nothing
(archive.store, "Integrity"); `hashed` is that hash, checked against the caller's.
`verified` is the check of every read: the bytes against the sha256 their object records.
"""

from __future__ import annotations

import base64
import hashlib

from archive.errors import IntegrityError

__all__ = ["checksum_base64", "digest_from_hex", "hashed", "verified"]

SHA256_BYTES = 32


def checksum_base64(digest: bytes) -> str:
    """The base64 form S3's checksum headers carry (44 characters for a sha256)."""
    return base64.b64encode(digest).decode("ascii")


def digest_from_hex(sha256: str) -> bytes:
    """The 32 bytes of a hex sha256 (either case). Raises ValueError for anything else."""
    try:
        digest = bytes.fromhex(sha256)
    except (TypeError, ValueError):
        digest = b""
    if len(digest) != SHA256_BYTES or len(sha256) != 2 * SHA256_BYTES:
        raise ValueError(f"sha256 must be 64 hex digits, not {sha256!r:.80}")
    return digest


def hashed(content: bytes, claimed: bytes | None = None) -> bytes:
    """The sha256 of `content`, computed here. Raises IntegrityError when the caller's
    `claimed` digest is another one: the caller's bytes and digest disagree."""
    digest = hashlib.sha256(content).digest()
    if claimed is not None and claimed != digest:
        raise IntegrityError(
            f"the given sha256 {claimed.hex()[:12]}... is not the content's "
            f"({digest.hex()[:12]}...)")
    return digest


def verified(key: str, content: bytes, recorded: str, expected: str | None = None) -> bytes:
    """`content` as read from `key`, once its sha256 is the `recorded` one (the object's
    metadata; "" when it has none) and `expected` (e.g. the index's) when given, either as
    hex in either case. Raises IntegrityError naming the key and both digests otherwise."""
    actual = hashlib.sha256(content).hexdigest()
    if not recorded:
        raise IntegrityError(f"{key!r} has no recorded sha256; it was not archived by Kanal")
    if actual != recorded.lower():
        raise IntegrityError(
            f"{key!r}: content sha256 {actual} does not match the recorded {recorded}"
        )
    if expected is not None and actual != expected.lower():
        raise IntegrityError(
            f"{key!r}: content sha256 {actual} does not match the expected {expected}"
        )
    return content
