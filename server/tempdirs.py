"""Each Kanal process's own temporary folder under the state directory, and the sweep that
removes what dead processes left there.

    <state_dir>/tmp/                  0700, made by the first process that needs it
        .sweep.lock                   a claim and a sweep never run at once (flock, exclusive)
        <pid>-<random>/               one process's folder: its TMPDIR and tempfile.tempdir
            .owner.lock               flock(LOCK_EX) held by that process for its whole life
            weasyprint-<random>/      what libraries made there (WeasyPrint's font copies)

Why: WeasyPrint copies a layout's @font-face fonts into a temporary folder (about 3 MB per
process that rendered with it), and other libraries make their own (multiprocessing's
`pymp-*`). A process that ends cleanly removes its folder (`atexit`), and with it whatever
is in it; one that cannot -- killed with SIGKILL or by the OOM killer, a SIGTERM nobody
handles, a worker that Linux kills as its server dies (server.processes) -- used to leave its
files in /tmp for good: a recycled render pool, a restarted server or a CI run that kills
servers on purpose each left some. Now they are all in one folder Kanal owns, and are
removed by `sweep`: when `kanal serve` starts and stops, when `kanal worker` starts and
each time its consumer process ends, and when a render or bulk pool is (re)built, which
is what follows a worker's death or recycling.

A folder is removed only when its owner lock is free. The kernel releases a flock when the
last descriptor of its open file is closed, which a dying process does however it dies;
a process id, by contrast, is reused. So several servers and `kanal worker` processes may
share a state directory, each sweeping, and none ever removes a living process's folder. A
child forked without exec (multiprocessing's 'fork' context) shares its parent's open lock
and keeps the folder until both have ended; a spawned or exec'd child does not inherit it
(Python descriptors are close-on-exec) and claims its own. A folder with no owner lock is
one whose process died while claiming it (claims hold the sweep lock until the owner lock
is taken), and is removed too.

Errors: `claim` raises OSError when the folder cannot be made (state directory not
writable); `sweep` and `release` never raise, a folder they cannot remove is left for the
next sweep.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FOLDER = "tmp"  # under the state directory
_SWEEP_LOCK = ".sweep.lock"
_OWNER_LOCK = ".owner.lock"


@dataclass(frozen=True)
class _Claim:
    pid: int  # the process that claimed it (a forked child sees its parent's claim)
    folder: Path
    lock: int  # descriptor holding the folder's owner lock
    previous: tuple[str | None, str | None]  # TMPDIR and tempfile.tempdir before the claim


_claim: _Claim | None = None
_at_exit_registered = False


def root(state_dir: Path) -> Path:
    """`<state_dir>/tmp`, absolute (it becomes TMPDIR, which must not depend on the
    current directory)."""
    return Path(state_dir).resolve() / FOLDER


def claim(state_dir: Path) -> Path:
    """Give this process its own temporary folder under `root(state_dir)`, and make it where
    everything in this process (`tempfile`) and every process it starts (TMPDIR) puts its
    temporary files, until the process ends. -> the folder, e.g.
    `/srv/kanal/tmp/4711-k2j3h4ab`. Call it first thing, before anything makes a temporary
    file (tempfile caches its directory on first use; this sets it). Once per process: a
    second call returns the same folder. The folder is removed when the process exits
    normally, or by `release`; otherwise by the next `sweep`. Raises OSError when the
    folder cannot be made."""
    global _claim, _at_exit_registered
    if _claim is not None and _claim.pid == os.getpid():
        return _claim.folder
    top = root(state_dir)
    top.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _sweep_lock(top):
        folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=top))
        lock = os.open(folder / _OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)  # a new file nobody else has opened: never waits
    previous = (os.environ.get("TMPDIR"), tempfile.tempdir)
    os.environ["TMPDIR"] = tempfile.tempdir = str(folder)
    _claim = _Claim(os.getpid(), folder, lock, previous)
    if not _at_exit_registered:  # inherited by a forked child, which release() tells apart
        atexit.register(release)
        _at_exit_registered = True
    return folder


def release() -> None:
    """Remove this process's folder (and all in it) and give TMPDIR and tempfile.tempdir
    their earlier values. Nothing when this process has claimed none. At exit (atexit),
    and by a process about to end with `os._exit`, which skips atexit."""
    global _claim
    held = _claim
    if held is None or held.pid != os.getpid():
        return
    _claim = None
    # a sweep seeing the folder once its lock file is gone removes it too: both skip what
    # the other removed
    shutil.rmtree(held.folder, ignore_errors=True)
    os.close(held.lock)
    tmpdir, tempfile.tempdir = held.previous
    if tmpdir is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = tmpdir


def sweep(state_dir: Path) -> list[Path]:
    """Remove the folders under `root(state_dir)` whose process has ended (its owner lock is
    free), never a living process's. -> the folders removed. Safe from any process, at
    any time, beside other servers and workers sharing the state directory."""
    top = root(state_dir)
    if not top.is_dir():
        return []
    removed: list[Path] = []
    with contextlib.suppress(OSError), _sweep_lock(top), os.scandir(top) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and _remove_if_ended(Path(entry.path)):
                removed.append(Path(entry.path))
    return removed


def _remove_if_ended(folder: Path) -> bool:
    try:
        lock = os.open(folder / _OWNER_LOCK, os.O_RDONLY)
    except FileNotFoundError:  # its process died claiming it (we hold the sweep lock)
        shutil.rmtree(folder, ignore_errors=True)
        return True
    except OSError:
        return False
    try:
        # a lock is per open file: even our own folder's, opened again here, is refused
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its process is alive
    else:
        shutil.rmtree(folder, ignore_errors=True)
        return True
    finally:
        os.close(lock)


@contextlib.contextmanager
def _sweep_lock(top: Path) -> Iterator[None]:
    """Claims and sweeps one at a time: a sweep never sees a folder whose owner has made it
    but not locked it yet."""
    lock = os.open(top / _SWEEP_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)
