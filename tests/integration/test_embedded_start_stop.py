"""The embedded SeaweedFS itself: the real `weed` binary, two servers side by side that stop
cleanly (no process left in the group), and a start that fails says why (a taken port, an
early exit with the log). Its supervision: test_embedded_supervision.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from archive.embedded import EmbeddedS3, find_weed_binary
from archive.errors import ArchiveUnavailable, EmbeddedS3Error, ObjectNotFound
from archive.store import ArchiveStore
from tests.integration.archive_store_fixtures import (
    new_key,
    pid_alive,
    process_group_members,
)

pytestmark = pytest.mark.integration


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
        key = new_key()
        other.put(key, b"second", media_type="text/plain", metadata={}, retain_until=None)
        assert other.get(key) == b"second"
        with pytest.raises(ObjectNotFound):
            archive_store.head(key)  # a different server, a different store
        pid = second.pid
        assert pid is not None and pid_alive(pid)
        assert second.startup_seconds is not None and second.startup_seconds < 30
    assert second.pid is None
    assert not pid_alive(pid)
    assert process_group_members(pid) == []
    with pytest.raises(ArchiveUnavailable):
        other.head(key)
    # the first server is untouched
    assert archive_store.head(
        archive_store.put(
            new_key(), b"still here", media_type="text/plain", metadata={}, retain_until=None
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
