"""A real SeaweedFS whose filer refuses writes after a full disk is reported down by the
archive's health ping and restarted through its supervisor, which brings writes back
(archive.write_health, EmbeddedS3.restart_soon).

The full disk is real: the filer's metadata store (`data_dir/filerldb2`, where the chaos
test saw `persisting ... filerldb2/.../000001.log: no space left on device`) sits on a
16 MB tmpfs that the test fills. Mounting needs root; without it the test is skipped.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.embedded import EmbeddedS3
from archive.errors import ArchiveUnavailable
from archive.store import ArchiveStore

pytestmark = pytest.mark.integration

KEYS = {"access_key": "full-disk-access", "secret_key": "full-disk-secret-0123"}


@pytest.fixture
def small_filer_disk(tmp_path: Path) -> Iterator[Path]:
    """`tmp_path/s3`, its `filerldb2` on a 16 MB tmpfs of its own."""
    data_dir = tmp_path / "s3"
    mount_point = data_dir / "filerldb2"
    mount_point.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield data_dir
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(path: Path) -> None:
    """Write zeros to `path` until its file system has no room left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while True:
                os.write(fd, b"\0" * (1 << 20))
    finally:
        os.close(fd)


def put(store: ArchiveStore, n: int) -> None:
    store.put(f"t/{n:05d}.pdf", os.urandom(20_000), media_type="application/pdf",
              metadata={}, retain_until=datetime.now(UTC) + timedelta(days=1))


def test_writes_refused_after_a_full_disk_report_down_and_restart_seaweedfs(
        small_filer_disk: Path) -> None:
    armed = False  # the restart is asked for once the disk has room again (see below)
    with EmbeddedS3(small_filer_disk, **KEYS) as s3:
        store = ArchiveStore(
            endpoint_url=s3.endpoint_url, bucket="full-disk", max_attempts=1, call_timeout=5,
            # as server/app.py wires it for the embedded store
            on_write_failures=lambda: armed and s3.restart_soon(store.write_failures.reason),
            **KEYS)
        store.ensure_bucket()
        put(store, 0)
        store.ping()

        filler = small_filer_disk / "filerldb2" / "filler"
        fill(filler)
        n, ends = 1, time.monotonic() + 180
        while not store.write_failures.failing:  # S3's answers, not time, end this loop
            assert time.monotonic() < ends, "SeaweedFS kept taking writes on a full disk"
            with contextlib.suppress(ArchiveUnavailable):
                put(store, n)
            n += 1
        # HEAD of the bucket answers, but the archive is down, and says why
        with pytest.raises(ArchiveUnavailable, match="writes failed.*InternalError"):
            store.ping()

        # While the disk is full a restart cannot help: it is refused, and the process
        # keeps serving reads (QA 2026-12-02: restarts on a full disk killed every read)
        assert "filerldb2 is full" in (s3.capacity_problem() or "")
        serving = s3.pid
        for _ in range(3):
            time.sleep(0.6)  # past the back-off each time
            assert s3.restart_soon(store.write_failures.reason) is False
        assert s3.requested_restarts == 0 and s3.pid == serving and s3.running
        assert store.get("t/00000.pdf")  # written before the disk filled

        filler.unlink()  # room again; the fault stays: the filer refuses writes still
        assert s3.capacity_problem() is None
        # (InternalError, or no answer within call_timeout: it also hangs now and then)
        with pytest.raises(ArchiveUnavailable):
            put(store, n)
        n += 1
        assert s3.restarts == 0 and s3.requested_restarts == 0

        armed = True  # the next refused write asks the supervisor for a restart
        killed, ends = s3.pid, time.monotonic() + 90
        while True:
            assert time.monotonic() < ends, (
                f"writes did not come back: {store.write_failures.reason}; "
                f"restarts {s3.restarts}, requested {s3.requested_restarts}")
            try:
                put(store, n)
                break
            except ArchiveUnavailable:
                time.sleep(0.2)
            n += 1
        while s3.restarts < 1 and time.monotonic() < ends:  # counted once S3 answered the
            time.sleep(0.02)  # supervisor, which may be just after it answered our put
        assert s3.requested_restarts == 1 and s3.restarts == 1 and s3.pid != killed
        assert store.write_failures.consecutive == 0
        store.ping()  # up again
        put(store, n + 1)


def test_restart_requests_are_honoured_at_most_once_per_back_off(tmp_path: Path) -> None:
    """A SeaweedFS that fails again at once is not restarted in a loop: a request is ignored
    for a process already killed on request and for one up less than the back-off."""
    with EmbeddedS3(tmp_path / "s3", **KEYS) as s3:
        first = s3.pid
        assert s3.restart_soon("just started") is False  # up less than the 0.5 s back-off
        time.sleep(0.6)
        assert s3.restart_soon("test") is True
        assert s3.restart_soon("test again") is False  # the same process
        ends = time.monotonic() + 60
        while s3.restarts < 1:
            assert time.monotonic() < ends
            time.sleep(0.02)
        assert s3.pid != first
        # the back-off doubled to 1 s on this restart; the new process is younger than that
        assert s3.restart_soon("too soon") is False
        time.sleep(1.1)
        assert s3.restart_soon("once the back-off has passed") is True
        while s3.restarts < 2:
            assert time.monotonic() < ends
            time.sleep(0.02)
        assert s3.requested_restarts == 2 and s3.running


def test_the_health_probes_own_write_works_on_seaweedfs_and_leaves_nothing(
        embedded_s3: EmbeddedS3) -> None:
    """While writes are failing, ping writes WRITE_PROBE_KEY itself (no retention, into an
    Object Lock bucket) and deletes that version: one success makes the archive healthy."""
    store = ArchiveStore(endpoint_url=embedded_s3.endpoint_url, bucket="write-probe",
                         access_key=embedded_s3.access_key,
                         secret_key=embedded_s3.secret_key)
    store.ensure_bucket()
    store.write_failures.consecutive = store.write_failures.threshold  # as after 3 refusals
    store.write_failures.last_error = "InternalError (made up)"
    store.ping()
    assert store.write_failures.consecutive == 0
    assert list(store.iter_objects()) == []
    versions = store._client.list_object_versions(Bucket="write-probe")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")


def test_no_free_volumes_refuses_a_restart_until_the_disk_has_more_room(
        tmp_path: Path) -> None:
    """SeaweedFS sizes its volumes by the free disk when it starts; when it logs that none is
    left, a restart helps only once the disk has gained room (archive.weed_capacity)."""
    with EmbeddedS3(tmp_path / "s3", **KEYS) as s3:
        time.sleep(0.6)  # up longer than the first back-off
        with s3.log_path.open("a") as log:  # as weed/topology logs it
            log.write("E1202 volume_growth.go:98] No writable volumes and no free volumes "
                      "left for {collection:, replication:000, ttl:}\n")
        problem = s3.capacity_problem()
        assert problem and "no free volume left" in problem, problem
        assert s3.restart_soon("writes refused") is False and s3.requested_restarts == 0
        s3._free_at_start = 1  # as if the disk had had almost no room when it started
        assert s3.capacity_problem() is None
        assert s3.restart_soon("writes refused, the disk grown since") is True
