"""Retention that nobody can undo, and tampering that is found: against a real embedded
SeaweedFS, a retained version cannot be deleted or shortened, a key written over or deleted
around the archive still reads as Kanal wrote it, legal holds hold, and bytes that are not
the recorded ones raise IntegrityError."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from archive.errors import IntegrityError, ObjectNotFound
from archive.store import ArchiveStore
from archive.versions import KeyVersions
from tests.integration.archive_store_fixtures import PDF, days_from_now, new_key

pytestmark = pytest.mark.integration


def test_retained_version_cannot_be_deleted_or_shortened_and_survives_overwrite(
    archive_store: ArchiveStore, raw_s3: Any
) -> None:
    bucket, key = archive_store.bucket, new_key()
    stored = archive_store.put(
        key, PDF, media_type="application/pdf", metadata={}, retain_until=days_from_now()
    )
    assert archive_store.head(key).retain_until == stored.retain_until

    with pytest.raises(ClientError) as refused:
        raw_s3.delete_object(Bucket=bucket, Key=key, VersionId=stored.version_id)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        raw_s3.delete_object(
            Bucket=bucket, Key=key, VersionId=stored.version_id, BypassGovernanceRetention=True
        )
    with pytest.raises(ClientError):
        raw_s3.put_object_retention(
            Bucket=bucket,
            Key=key,
            VersionId=stored.version_id,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(UTC)},
        )

    # A writer going around the archive can add a version, never replace the original one.
    raw_s3.put_object(Bucket=bucket, Key=key, Body=b"forged", Metadata={"sha256": stored.sha256})
    original = raw_s3.get_object(Bucket=bucket, Key=key, VersionId=stored.version_id)
    assert original["Body"].read() == PDF
    with pytest.raises(IntegrityError):
        archive_store.get(key, current_only=True)  # the forged version fails its sha256


def test_a_key_written_over_or_deleted_around_the_archive_reads_as_kanal_wrote_it(
    archive_store: ArchiveStore, raw_s3: Any
) -> None:
    # QA 2026-12-02: after a plain PutObject over an archived key the portal answered
    # DATA_LOSS and a rebuilt index dropped the output, though Kanal's version was intact
    bucket, key = archive_store.bucket, new_key()
    stored = archive_store.put(key, PDF, media_type="application/pdf",
                               metadata={"channel": "print"}, retain_until=days_from_now())
    untouched = archive_store.put(key.replace("print.pdf", "sms.txt"), b"a key beside it",
                                  media_type="text/plain", metadata={}, retain_until=None)
    assert archive_store.versions(key) == KeyVersions(key, stored.version_id, 0)

    raw_s3.put_object(Bucket=bucket, Key=key, Body=b"forged", Metadata={"sha256": stored.sha256})
    assert archive_store.get(key) == PDF
    assert archive_store.get(key, expected_sha256=stored.sha256) == PDF
    raw_s3.delete_object(Bucket=bucket, Key=key)  # a delete marker over both
    assert archive_store.versions(key) == KeyVersions(key, stored.version_id, 2)
    assert archive_store.get(key) == PDF
    with pytest.raises(ObjectNotFound):
        archive_store.get(key, current_only=True)

    listed = {obj.key: obj for obj in archive_store.iter_objects(key[:key.rindex("/")])}
    assert listed[key].version_id == stored.version_id and listed[key].sha256 == stored.sha256
    assert listed[key].newer_versions == 2 and listed[key].metadata["channel"] == "print"
    assert listed[untouched.key].newer_versions == 0

    archive_store.set_legal_hold(key, True)  # on Kanal's version, not the forged one
    held = raw_s3.get_object_legal_hold(Bucket=bucket, Key=key, VersionId=stored.version_id)
    assert held["LegalHold"]["Status"] == "ON" and archive_store.legal_hold(key)

    url = archive_store.presigned_url(key, 60, stored.version_id)
    with urllib.request.urlopen(url) as response:
        assert response.read() == PDF


def test_a_key_never_archived_by_kanal_is_not_read_from_another_version(
    archive_store: ArchiveStore, raw_s3: Any
) -> None:
    key = new_key()  # only others' versions: the first one is no Kanal object either
    raw_s3.put_object(Bucket=archive_store.bucket, Key=key, Body=b"one")
    raw_s3.put_object(Bucket=archive_store.bucket, Key=key, Body=b"two")
    with pytest.raises(IntegrityError, match="no recorded sha256"):
        archive_store.get(key)
    with pytest.raises(ObjectNotFound):
        archive_store.get(new_key())
    assert archive_store.versions(new_key()) is None


def test_legal_hold_blocks_deletion(archive_store: ArchiveStore, raw_s3: Any) -> None:
    key = new_key()
    stored = archive_store.put(
        key, b"held", media_type="text/plain", metadata={}, retain_until=None, legal_hold=True
    )
    assert archive_store.head(key).legal_hold is True
    with pytest.raises(ClientError):
        raw_s3.delete_object(Bucket=archive_store.bucket, Key=key, VersionId=stored.version_id)
    assert archive_store.get(key) == b"held"


def test_an_object_never_held_reads_as_not_held(archive_store: ArchiveStore) -> None:
    # SeaweedFS answers GetObjectLegalHold on such an object with NoSuchObjectLegalHold,
    # which reached the portal's GetLegalHold as INTERNAL (found by the API fuzz test)
    key = new_key()
    archive_store.put(key, b"never held", media_type="text/plain", metadata={},
                      retain_until=None)
    assert archive_store.legal_hold(key) is False
    archive_store.set_legal_hold(key, True)
    assert archive_store.legal_hold(key) is True
    archive_store.set_legal_hold(key, False)
    assert archive_store.legal_hold(key) is False


def test_tampered_copy_is_detected(archive_store: ArchiveStore, raw_s3: Any) -> None:
    key = new_key()
    stored = archive_store.put(
        key, PDF, media_type="application/pdf", metadata={}, retain_until=None
    )
    tampered = new_key()
    raw_s3.put_object(
        Bucket=archive_store.bucket,
        Key=tampered,
        Body=PDF.replace(b"invoice", b"INVOICE"),
        Metadata={"sha256": stored.sha256},
    )
    with pytest.raises(IntegrityError, match="does not match"):
        archive_store.get(tampered)

    unsigned = new_key()
    raw_s3.put_object(Bucket=archive_store.bucket, Key=unsigned, Body=PDF)
    with pytest.raises(IntegrityError, match="no recorded sha256"):
        archive_store.get(unsigned)

    with pytest.raises(IntegrityError, match="expected"):
        archive_store.get(key, expected_sha256="0" * 64)
