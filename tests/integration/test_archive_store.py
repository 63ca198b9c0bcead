"""The archive store against a real embedded SeaweedFS: bytes in, the same verified bytes out,
retention that nobody can undo, and typed errors when the endpoint is wrong or gone."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from archive.embedded import EmbeddedS3, find_weed_binary
from archive.errors import (
    AccessDenied,
    ArchiveError,
    ArchiveUnavailable,
    EmbeddedS3Error,
    IntegrityError,
    ObjectConflict,
    ObjectNotFound,
)
from archive.keys import document_key
from archive.store import MULTIPART_THRESHOLD, ArchiveStore, decode_metadata_value
from archive.versions import KeyVersions

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n" + b"archived invoice body\n" * 100


def _key(channel: str = "print", extension: str = "pdf") -> str:
    return document_key(
        "sparebank-test",
        "Åse/../Østby",
        datetime(2025, 3, 14, 9, 30, tzinfo=UTC),
        uuid.uuid4().hex.upper(),
        channel,
        extension,
    )


def _until(days: int = 2) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process_group_members(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid` (read from /proc, no psutil)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(") ")[1][0] != "Z"


# --- put / get --------------------------------------------------------------------------


def test_put_get_round_trip_verifies_sha256_and_keeps_metadata(
    archive_store: ArchiveStore,
) -> None:
    key = _key()
    metadata = {
        "tenant": "sparebank-test",
        "customer-name": "Åse Østby",
        "note": "=?utf-8?b?bm90IGVuY29kZWQ=?=",  # looks encoded, must come back literally
        "padded": "  spaces around  ",
    }
    retain_until = _until()
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
    key = _key()
    archive_store.put(
        key, b"x", media_type="text/plain", metadata={"name": "Åse Østby"}, retain_until=None
    )
    raw = raw_s3.head_object(Bucket=archive_store.bucket, Key=key)["Metadata"]
    assert raw["name"].isascii()
    assert decode_metadata_value(raw["name"]) == "Åse Østby"


def test_reput_is_idempotent_and_different_bytes_conflict(archive_store: ArchiveStore) -> None:
    key = _key()
    first = archive_store.put(
        key, PDF, media_type="application/pdf", metadata={"a": "1"}, retain_until=_until()
    )
    again = archive_store.put(
        key, PDF, media_type="application/pdf", metadata={"a": "2"}, retain_until=_until(5)
    )
    assert again == first  # the stored object, unchanged: first metadata, first retention

    with pytest.raises(ObjectConflict):
        archive_store.put(
            key, PDF + b"!", media_type="application/pdf", metadata={}, retain_until=_until()
        )
    assert archive_store.get(key) == PDF
    assert archive_store.head(key).version_id == first.version_id


def test_missing_object_is_not_found(archive_store: ArchiveStore) -> None:
    with pytest.raises(ObjectNotFound):
        archive_store.get(_key())
    with pytest.raises(ObjectNotFound):
        archive_store.head(_key())


def test_large_object_goes_multipart_with_retention(archive_store: ArchiveStore) -> None:
    content = os.urandom(MULTIPART_THRESHOLD + 1024 * 1024)
    key = _key()
    stored = archive_store.put(
        key, content, media_type="application/pdf", metadata={"k": "v"}, retain_until=_until()
    )
    head = archive_store.head(key)
    assert head.size == len(content)
    assert head.retain_until == stored.retain_until
    assert head.sha256 == hashlib.sha256(content).hexdigest()
    assert archive_store.get(key) == content
    assert (
        archive_store.put(
            key, content, media_type="application/pdf", metadata={}, retain_until=_until()
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
            _key(), b"x", media_type="text/plain", metadata={}, retain_until=datetime(2099, 1, 1)
        )
    with pytest.raises(ValueError, match="future"):
        archive_store.put(
            _key(), b"x", media_type="text/plain", metadata={}, retain_until=_until(-1)
        )
    with pytest.raises(ValueError, match="reserved"):
        archive_store.put(
            _key(), b"x", media_type="text/plain", metadata={"sha256": "0"}, retain_until=None
        )
    with pytest.raises(ValueError, match="metadata key"):
        archive_store.put(
            _key(), b"x", media_type="text/plain", metadata={"Bad Key": "v"}, retain_until=None
        )


# --- retention and tampering ------------------------------------------------------------


def test_retained_version_cannot_be_deleted_or_shortened_and_survives_overwrite(
    archive_store: ArchiveStore, raw_s3: Any
) -> None:
    bucket, key = archive_store.bucket, _key()
    stored = archive_store.put(
        key, PDF, media_type="application/pdf", metadata={}, retain_until=_until()
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
    bucket, key = archive_store.bucket, _key()
    stored = archive_store.put(key, PDF, media_type="application/pdf",
                               metadata={"channel": "print"}, retain_until=_until())
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
    key = _key()  # only others' versions: the first one is no Kanal object either
    raw_s3.put_object(Bucket=archive_store.bucket, Key=key, Body=b"one")
    raw_s3.put_object(Bucket=archive_store.bucket, Key=key, Body=b"two")
    with pytest.raises(IntegrityError, match="no recorded sha256"):
        archive_store.get(key)
    with pytest.raises(ObjectNotFound):
        archive_store.get(_key())
    assert archive_store.versions(_key()) is None


def test_legal_hold_blocks_deletion(archive_store: ArchiveStore, raw_s3: Any) -> None:
    key = _key()
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
    key = _key()
    archive_store.put(key, b"never held", media_type="text/plain", metadata={},
                      retain_until=None)
    assert archive_store.legal_hold(key) is False
    archive_store.set_legal_hold(key, True)
    assert archive_store.legal_hold(key) is True
    archive_store.set_legal_hold(key, False)
    assert archive_store.legal_hold(key) is False


def test_tampered_copy_is_detected(archive_store: ArchiveStore, raw_s3: Any) -> None:
    key = _key()
    stored = archive_store.put(
        key, PDF, media_type="application/pdf", metadata={}, retain_until=None
    )
    tampered = _key()
    raw_s3.put_object(
        Bucket=archive_store.bucket,
        Key=tampered,
        Body=PDF.replace(b"invoice", b"INVOICE"),
        Metadata={"sha256": stored.sha256},
    )
    with pytest.raises(IntegrityError, match="does not match"):
        archive_store.get(tampered)

    unsigned = _key()
    raw_s3.put_object(Bucket=archive_store.bucket, Key=unsigned, Body=PDF)
    with pytest.raises(IntegrityError, match="no recorded sha256"):
        archive_store.get(unsigned)

    with pytest.raises(IntegrityError, match="expected"):
        archive_store.get(key, expected_sha256="0" * 64)


# --- access -----------------------------------------------------------------------------


def test_presigned_url_downloads_the_bytes(archive_store: ArchiveStore) -> None:
    key = _key()
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
    key = _key()
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
            intruder.put(_key(), b"x", media_type="text/plain", metadata={}, retain_until=None)
    # and no anonymous access either
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(
            f"{embedded_s3.endpoint_url}/{archive_store.bucket}/{urllib.parse.quote(key)}"
        )
    assert anonymous.value.code == 403


def test_closed_port_is_unavailable_fast() -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"
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
            retain_until=_until(),
        )
    found = list(archive_store.iter_objects(prefix))
    assert [o.key for o in found] == keys
    assert [o.metadata["document-id"] for o in found] == [k.split("/")[1] for k in keys]
    assert all(o.metadata["customer-name"] == "Åse" for o in found)
    assert all(o.retain_until is not None for o in found)
    assert found[1].sha256 == hashlib.sha256(b"document 1").hexdigest()


# --- the embedded server itself ---------------------------------------------------------


def test_weed_binary_is_the_real_one_not_a_shim() -> None:
    binary = find_weed_binary()
    with binary.open("rb") as fh:
        assert fh.read(2) != b"#!"


def test_two_instances_run_side_by_side_and_stop_cleanly(
    tmp_path: Path, embedded_s3: EmbeddedS3, archive_store: ArchiveStore
) -> None:
    second = EmbeddedS3(tmp_path / "second", access_key="second-key", secret_key="second-secret")
    with second:
        assert second.endpoint_url != embedded_s3.endpoint_url
        assert not set(second.ports.values()) & set(embedded_s3.ports.values())
        other = ArchiveStore(
            endpoint_url=second.endpoint_url,
            bucket=archive_store.bucket,
            access_key="second-key",
            secret_key="second-secret",
        )
        other.ensure_bucket()
        key = _key()
        other.put(key, b"second", media_type="text/plain", metadata={}, retain_until=None)
        assert other.get(key) == b"second"
        with pytest.raises(ObjectNotFound):
            archive_store.head(key)  # a different server, a different store
        pid = second.pid
        assert pid is not None and _pid_alive(pid)
        assert second.startup_seconds is not None and second.startup_seconds < 30
    assert second.pid is None
    assert not _pid_alive(pid)
    assert _process_group_members(pid) == []
    with pytest.raises(ArchiveUnavailable):
        other.head(key)
    # the first server is untouched
    assert archive_store.head(
        archive_store.put(
            _key(), b"still here", media_type="text/plain", metadata={}, retain_until=None
        ).key
    ).size == len(b"still here")
    assert "mini" in (second.data_dir / "weed.log").read_text(errors="replace")


def test_start_reports_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedS3(tmp_path / "taken", access_key="k", secret_key="s", s3_port=port)
        with pytest.raises(EmbeddedS3Error, match=f"port {port}"):
            server.start(timeout=20)
        assert not server.running


def test_start_reports_an_early_exit_with_the_log(tmp_path: Path) -> None:
    fake = tmp_path / "weed"
    fake.write_text("#!/bin/sh\necho 'fatal: cannot open volume directory' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = EmbeddedS3(tmp_path / "data", access_key="k", secret_key="s", binary=fake)
    with pytest.raises(EmbeddedS3Error, match="(?s)exited with code 3.*cannot open volume"):
        server.start(timeout=20)
    assert not server.running
