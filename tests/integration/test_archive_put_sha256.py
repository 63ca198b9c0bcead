"""`ArchiveStore.put(..., sha256=...)` against a real embedded SeaweedFS: the renderer's digest
is reused instead of hashing the bytes again, and it is never trusted unchecked. A
one-request put sends it in the signed `x-amz-checksum-sha256` and S3 refuses other bytes
(`BadDigest` -> IntegrityError, nothing stored); a multipart upload (S3 checks only its
parts) and a key already taken (S3 answers the precondition) hash the bytes in the store."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import archive.store
from archive.errors import IntegrityError, ObjectConflict, ObjectNotFound
from archive.store import MULTIPART_THRESHOLD, ArchiveStore

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n" + b"archived invoice body\n" * 100
PDF_SHA256 = hashlib.sha256(PDF).hexdigest()
OTHER = PDF.replace(b"invoice", b"INVOICE")
OTHER_SHA256 = hashlib.sha256(OTHER).hexdigest()


def _key() -> str:
    return f"sparebank-test/put-sha256/{uuid.uuid4().hex}/print.pdf"


def _until() -> datetime:
    return datetime.now(UTC) + timedelta(days=2)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the bodies the store hashes on a put (archive.digests.hashed)."""
    sizes: list[int] = []
    hashed = archive.store.hashed

    def counting(content: bytes, claimed: bytes | None = None) -> bytes:
        sizes.append(len(content))
        return hashed(content, claimed)

    monkeypatch.setattr(archive.store, "hashed", counting)
    return sizes


@pytest.fixture
def sent(archive_store: ArchiveStore, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[list[tuple[Any, int]]]:
    """Every request the store's HTTP session sends, with the status S3 answered."""
    exchanges: list[tuple[Any, int]] = []
    http = archive_store._client._endpoint.http_session
    send = http.send

    def recording(request: Any) -> Any:
        response = send(request)
        exchanges.append((request, response.status_code))
        return response

    monkeypatch.setattr(http, "send", recording)
    yield exchanges


def _header(request: Any, name: str) -> str | None:
    value = request.headers.get(name)
    return value.decode() if isinstance(value, bytes) else value


def test_a_given_sha256_is_sent_not_recomputed_and_the_object_reads_back(
        archive_store: ArchiveStore, hashes: list[int], sent: list[tuple[Any, int]]) -> None:
    key = _key()
    stored = archive_store.put(key, PDF, media_type="application/pdf",
                               metadata={"tenant": "sparebank-test"}, retain_until=_until(),
                               sha256=PDF_SHA256.upper())  # either case
    assert hashes == []  # the store did not hash the bytes again
    [(put, status)] = sent
    assert put.method == "PUT" and status == 200
    assert _header(put, "x-amz-checksum-sha256") == base64.b64encode(
        hashlib.sha256(PDF).digest()).decode()
    assert _header(put, "x-amz-meta-sha256") == PDF_SHA256
    assert stored.sha256 == PDF_SHA256
    assert archive_store.head(key).sha256 == PDF_SHA256
    assert archive_store.get(key, expected_sha256=PDF_SHA256) == PDF


def test_a_wrong_sha256_is_refused_by_s3_and_nothing_is_stored(
        archive_store: ArchiveStore, hashes: list[int], sent: list[tuple[Any, int]]) -> None:
    key = _key()
    with pytest.raises(IntegrityError, match="BadDigest"):
        archive_store.put(key, PDF, media_type="application/pdf", metadata={},
                          retain_until=_until(), sha256=OTHER_SHA256)
    assert hashes == []  # S3, not the store, found the bytes and the digest disagree
    assert [(r.method, status) for r, status in sent] == [("PUT", 400)]
    with pytest.raises(ObjectNotFound):
        archive_store.head(key)
    # the same key takes the right bytes afterwards: the refused put left nothing behind
    assert archive_store.put(key, PDF, media_type="application/pdf", metadata={},
                             retain_until=None, sha256=PDF_SHA256).sha256 == PDF_SHA256


def test_a_malformed_sha256_is_a_value_error(archive_store: ArchiveStore) -> None:
    for wrong in ("", PDF_SHA256[:-2], PDF_SHA256 + "00", "zz" * 32,
                  base64.b64encode(hashlib.sha256(PDF).digest()).decode()):
        with pytest.raises(ValueError, match="64 hex digits"):
            archive_store.put(_key(), PDF, media_type="application/pdf", metadata={},
                              retain_until=None, sha256=wrong)


def test_a_multipart_upload_hashes_the_bytes_itself(
        archive_store: ArchiveStore, hashes: list[int], sent: list[tuple[Any, int]]) -> None:
    """S3 checks each part's checksum, never the whole object's: the given digest is
    compared with the store's own hash, and a wrong one stores nothing."""
    content = os.urandom(MULTIPART_THRESHOLD + 1024)
    right = hashlib.sha256(content).hexdigest()
    key = _key()
    with pytest.raises(IntegrityError, match="not the content's"):
        archive_store.put(key, content, media_type="application/pdf", metadata={},
                          retain_until=_until(), sha256=hashlib.sha256(content[1:]).hexdigest())
    assert hashes == [len(content)]
    assert sent == []  # refused before any request: no upload begun
    with pytest.raises(ObjectNotFound):
        archive_store.head(key)

    stored = archive_store.put(key, content, media_type="application/pdf", metadata={},
                               retain_until=_until(), sha256=right)
    assert hashes == [len(content)] * 2
    assert stored.sha256 == archive_store.head(key).sha256 == right
    assert archive_store.get(key) == content


def test_a_taken_key_is_compared_with_the_bytes_own_sha256(
        archive_store: ArchiveStore, hashes: list[int], sent: list[tuple[Any, int]]) -> None:
    """S3 answers the taken key (412) without a word about the checksum, so the store
    compares the stored sha256 with its own hash of the bytes, never with the caller's."""
    key = _key()
    first = archive_store.put(key, PDF, media_type="application/pdf", metadata={"a": "1"},
                              retain_until=_until(), sha256=PDF_SHA256)
    assert hashes == []

    # other bytes claiming the stored object's sha256: not taken for a re-put of it
    with pytest.raises(IntegrityError, match="not the content's"):
        archive_store.put(key, OTHER, media_type="application/pdf", metadata={},
                          retain_until=_until(), sha256=PDF_SHA256)
    assert hashes == [len(OTHER)]
    assert [(r.method, status) for r, status in sent[-1:]] == [("PUT", 412)]

    # other bytes with their own sha256: a conflict, as without a given sha256
    with pytest.raises(ObjectConflict):
        archive_store.put(key, OTHER, media_type="application/pdf", metadata={},
                          retain_until=_until(), sha256=OTHER_SHA256)
    # the same bytes again (a retried request): the stored object, unchanged
    again = archive_store.put(key, PDF, media_type="application/pdf", metadata={"a": "2"},
                              retain_until=_until(), sha256=PDF_SHA256)
    assert again.metadata == {"a": "1"} and again.version_id == first.version_id
    assert hashes == [len(OTHER)] * 2 + [len(PDF)]
    assert archive_store.get(key) == PDF
