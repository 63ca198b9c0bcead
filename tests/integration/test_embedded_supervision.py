"""The embedded SeaweedFS's supervisor keeps trying to restart it whatever a failed restart
raised (archive.embedded.EmbeddedS3._supervise)."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest

from archive.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


def test_a_restart_failing_on_a_full_disk_is_tried_again(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart that raised OSError (ENOSPC writing the identities file or the log line in
    the state dir, as on a full disk) ended the supervisor thread: SeaweedFS stayed down
    until the server restarted, though the disk had room again a moment later."""
    with EmbeddedS3(tmp_path / "s3", access_key="supervise-access",
                    secret_key="supervise-secret-0123") as s3:
        write_identities, failed = s3._write_identities, []

        def full_disk_once() -> Path:
            if not failed:
                failed.append(True)
                raise OSError(errno.ENOSPC, "No space left on device")
            return write_identities()

        monkeypatch.setattr(s3, "_write_identities", full_disk_once)
        killed = s3.pid
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while s3.restarts < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the supervisor's back-off, not for time to pass
        assert failed and s3.restarts == 1
        assert s3.running and s3.pid != killed
