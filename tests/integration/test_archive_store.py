"""The archive store against a real embedded SeaweedFS: bytes in, the same verified bytes out,
the bucket it needs, listing for a rebuild, and typed errors when the credentials or the
endpoint are wrong or gone. Retention and tampering: test_archive_retention.py; the embedded
server itself: test_embedded_start_stop.py."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from archive.embedded import EmbeddedS3
from archive.errors import (
    AccessDenied,
    ArchiveError,
    ArchiveUnavailable,
    ObjectConflict,
    ObjectNotFound,
)
from archive.store import MULTIPART_THRESHOLD, ArchiveStore, decode_metadata_value
from tests.integration.archive_store_fixtures import (
    PDF,
    days_from_now,
    free_port,
    new_key,
)

pytestmark = pytest.mark.integration


# --- put / get --------------------------------------------------------------------------


def test_put_get_round_trip_verifies_sha256_and_keeps_metadata(
    archive_store: ArchiveStore,
) -> None:
    key = new_key()
    metadata = {
        "tenant": "sparebank-test",
        "customer-name": "Åse Østby",
        "note": "=?utf-8?b?bm90IGVuY29kZWQ=?=",  # looks encoded, must come back literally
        "padded": "  spaces around  ",
    }
    retain_until = days_from_now()
    stored = archive_store.put(
        key, PDF, media_type="application/pdf", metadata=metadata, retain_until=retain_until
    )

    assert stored.sha256 == hashlib.sha256(PDF).hexdigest()
    assert stored.size == len(PDF)
    assert archive_store.get(key) == PDF
    assert archive_store.get(key, expected_sha256=stored.sha256) == PDF

    head = archive_store.head(key)
    assert head.sha256 == stored.sha256
    assert head.metadata == metadata
    assert head.media_type == "application/pdf"
    assert head.size == len(PDF)
    assert head.retain_until == stored.retain_until
    assert head.retain_until is not None
    assert retain_until <= head.retain_until < retain_until + timedelta(seconds=1)
    assert head.version_id == stored.version_id


def test_non_ascii_metadata_is_ascii_on_the_wire(archive_store: ArchiveStore, raw_s3: Any) -> None:
    key = new_key()
    archive_store.put(
        key, b"x", media_type="text/plain", metadata={"name": "Åse Østby"}, retain_until=None
    )
    raw = raw_s3.head_object(Bucket=archive_store.bucket, Key=key)["Metadata"]
    assert raw["name"].isascii()
    assert decode_metadata_value(raw["name"]) == "Åse Østby"


def test_reput_is_idempotent_and_different_bytes_conflict(archive_store: ArchiveStore) -> None:
    key = new_key()
    first = archive_store.put(
        key, PDF, media_type="application/pdf", metadata={"a": "1"}, retain_until=days_from_now()
    )
    again = archive_store.put(
        key, PDF, media_type="application/pdf", metadata={"a": "2"}, retain_until=days_from_now(5)
    )
    assert again == first  # the stored object, unchanged: first metadata, first retention

    with pytest.raises(ObjectConflict):
        archive_store.put(
            key, PDF + b"!", media_type="application/pdf", metadata={}, retain_until=days_from_now()
        )
    assert archive_store.get(key) == PDF
    assert archive_store.head(key).version_id == first.version_id


def test_missing_object_is_not_found(archive_store: ArchiveStore) -> None:
    with pytest.raises(ObjectNotFound):
        archive_store.get(new_key())
    with pytest.raises(ObjectNotFound):
        archive_store.head(new_key())


def test_large_object_goes_multipart_with_retention(archive_store: ArchiveStore) -> None:
    content = os.urandom(MULTIPART_THRESHOLD + 1024 * 1024)
    key = new_key()
    stored = archive_store.put(
        key, content, media_type="application/pdf", metadata={"k": "v"},
        retain_until=days_from_now()
    )
    head = archive_store.head(key)
    assert head.size == len(content)
    assert head.retain_until == stored.retain_until
    assert head.sha256 == hashlib.sha256(content).hexdigest()
    assert archive_store.get(key) == content
    assert (
        archive_store.put(
            key, content, media_type="application/pdf", metadata={}, retain_until=days_from_now()
        )
        == head
    )
    with pytest.raises(ObjectConflict):
        archive_store.put(
            key, content[::-1], media_type="application/pdf", metadata={}, retain_until=None
        )


def test_put_validates_its_arguments(archive_store: ArchiveStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        archive_store.put(
            new_key(), b"x", media_type="text/plain", metadata={}, retain_until=datetime(2099, 1, 1)
        )
    with pytest.raises(ValueError, match="future"):
        archive_store.put(
            new_key(), b"x", media_type="text/plain", metadata={}, retain_until=days_from_now(-1)
        )
    with pytest.raises(ValueError, match="reserved"):
        archive_store.put(
            new_key(), b"x", media_type="text/plain", metadata={"sha256": "0"}, retain_until=None
        )
    with pytest.raises(ValueError, match="metadata key"):
        archive_store.put(
            new_key(), b"x", media_type="text/plain", metadata={"Bad Key": "v"}, retain_until=None
        )


# --- access -----------------------------------------------------------------------------


def test_presigned_url_downloads_the_bytes(archive_store: ArchiveStore) -> None:
    key = new_key()
    archive_store.put(key, PDF, media_type="application/pdf", metadata={}, retain_until=None)
    url = archive_store.presigned_url(key, 60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == PDF
        assert response.headers["Content-Type"] == "application/pdf"
    with pytest.raises(ValueError):
        archive_store.presigned_url(key, 0)


def test_wrong_credentials_are_refused(
    embedded_s3: EmbeddedS3, archive_store: ArchiveStore
) -> None:
    key = new_key()
    archive_store.put(key, b"secret", media_type="text/plain", metadata={}, retain_until=None)
    for access_key, secret_key in [
        (embedded_s3.access_key, "wrong-secret"),
        ("someone-else", embedded_s3.secret_key),
    ]:
        intruder = ArchiveStore(
            endpoint_url=embedded_s3.endpoint_url,
            bucket=archive_store.bucket,
            access_key=access_key,
            secret_key=secret_key,
        )
        with pytest.raises(AccessDenied):
            intruder.get(key)
        with pytest.raises(AccessDenied):
            intruder.put(new_key(), b"x", media_type="text/plain", metadata={}, retain_until=None)
    # and no anonymous access either
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(
            f"{embedded_s3.endpoint_url}/{archive_store.bucket}/{urllib.parse.quote(key)}"
        )
    assert anonymous.value.code == 403


def test_closed_port_is_unavailable_fast() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = ArchiveStore(
        endpoint_url=endpoint, bucket="kanal-archive", access_key="a", secret_key="b"
    )
    started = time.monotonic()
    with pytest.raises(ArchiveUnavailable, match="unreachable"):
        store.get("any/key")  # default timeouts and retries
    assert time.monotonic() - started < 10

    once = ArchiveStore(
        endpoint_url=endpoint,
        bucket="kanal-archive",
        access_key="a",
        secret_key="b",
        max_attempts=1,
    )
    with pytest.raises(ArchiveUnavailable):
        once.put("any/key", b"x", media_type="text/plain", metadata={}, retain_until=None)
    with pytest.raises(ArchiveUnavailable):
        once.ensure_bucket()
    with pytest.raises(ArchiveUnavailable):
        list(once.iter_objects())


# --- bucket and listing -----------------------------------------------------------------


def test_ensure_bucket_is_idempotent_and_refuses_a_bucket_without_lock(
    archive_store: ArchiveStore, embedded_s3: EmbeddedS3, raw_s3: Any
) -> None:
    archive_store.ensure_bucket()
    plain = f"kanal-plain-{uuid.uuid4().hex[:12]}"
    raw_s3.create_bucket(Bucket=plain)
    store = ArchiveStore(
        endpoint_url=embedded_s3.endpoint_url,
        bucket=plain,
        access_key=embedded_s3.access_key,
        secret_key=embedded_s3.secret_key,
    )
    with pytest.raises(ArchiveError, match="without Object Lock"):
        store.ensure_bucket()


def test_iter_objects_yields_metadata_for_reindexing_in_key_order(
    archive_store: ArchiveStore,
) -> None:
    """Key order matters: a rebuild groups a document's outputs by their adjacent keys,
    and the HEADs behind the listing run concurrently."""
    prefix = f"reindex-{uuid.uuid4().hex}/"
    keys = [f"{prefix}doc-{n:02d}/{channel}" for n in range(20)
            for channel in ("email.eml", "print.pdf")]
    for n, key in enumerate(keys):
        archive_store.put(
            key,
            f"document {n}".encode(),
            media_type="application/pdf",
            metadata={"document-id": key.split("/")[1], "customer-name": "Åse"},
            retain_until=days_from_now(),
        )
    found = list(archive_store.iter_objects(prefix))
    assert [o.key for o in found] == keys
    assert [o.metadata["document-id"] for o in found] == [k.split("/")[1] for k in keys]
    assert all(o.metadata["customer-name"] == "Åse" for o in found)
    assert all(o.retain_until is not None for o in found)
    assert found[1].sha256 == hashlib.sha256(b"document 1").hexdigest()
