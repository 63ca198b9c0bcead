"""Kanal processes keep their temporary files in their own folder under the state directory
(server.tempdirs), and what a process that died without cleaning up left there is removed by
the next sweep, never a living process's folder. Real processes, really killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from server import tempdirs
from server.channels.pool import RenderPool
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from tests.unit.test_render_pool import composition

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'proto'}"}

# Claims a folder, makes what WeasyPrint makes there (a font folder, through tempfile),
# says where, then lives until its stdin closes.
CLAIM_AND_WAIT = """
import os, sys, tempfile
from pathlib import Path
from server import tempdirs

folder = tempdirs.claim(Path(sys.argv[1]))
assert folder not in tempdirs.sweep(Path(sys.argv[1])) and folder.is_dir()  # its own: kept
fonts = tempfile.mkdtemp(prefix="weasyprint-")
Path(fonts, "font.woff2").write_bytes(b"0" * 4096)
print(folder, fonts, os.environ["TMPDIR"], flush=True)
sys.stdin.read()
"""

# A worker whose parent is killed: claims, watches its parent (server.processes), waits.
ORPHANED_WORKER = """
import subprocess, sys, time
from pathlib import Path
from server import tempdirs
from server.processes import exit_with_parent

folder = tempdirs.claim(Path(sys.argv[1]))
exit_with_parent(poll_seconds=0.05)
print(folder, flush=True)
time.sleep(120)
"""
PARENT_OF_ORPHAN = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE,
                         text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
sys.stdin.read()
"""


def start(script: str, *args: str, tmp_path: Path) -> subprocess.Popen:
    system = tmp_path / "system-tmp"
    system.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, **ENV, "TMPDIR": str(system)})


def wait_gone(pid: int, timeout: float = 30) -> None:
    """Until `pid` has ended (gone, or a zombie nobody of ours will reap)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.05)  # waiting for the kernel to end it, not for time to pass
    raise AssertionError(f"process {pid} still running")


def test_a_killed_process_leaves_its_folder_to_the_sweep_which_keeps_a_living_ones(tmp_path):
    state = tmp_path / "state"
    killed, living = (start(CLAIM_AND_WAIT, str(state), tmp_path=tmp_path) for _ in range(2))
    try:
        (killed_folder, killed_fonts, tmpdir), (living_folder, living_fonts, _) = (
            [Path(p) for p in process.stdout.readline().split()] for process in (killed, living))
        # each its own folder under the state dir, where tempfile and child processes write
        assert killed_folder.parent == living_folder.parent == tempdirs.root(state)
        assert killed_folder != living_folder and tmpdir == killed_folder
        assert killed_fonts.parent == killed_folder and living_fonts.parent == living_folder
        assert killed_folder.name.startswith(f"{killed.pid}-")

        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert (killed_fonts / "font.woff2").exists(), "nothing removes a killed one's files"

        assert tempdirs.sweep(state) == [killed_folder]
        assert not killed_folder.exists()
        assert (living_fonts / "font.woff2").exists(), "a living process's folder is kept"
        assert tempdirs.sweep(state) == []
    finally:
        living.communicate(timeout=60)  # stdin closed: it ends normally
        killed.kill()
    assert living.returncode == 0
    assert not living_folder.exists(), "a process that ends normally removes its own folder"
    assert [p.name for p in tempdirs.root(state).iterdir()] == [".sweep.lock"]
    assert list((tmp_path / "system-tmp").iterdir()) == []


def test_a_worker_whose_server_is_killed_removes_its_folder_before_os_exit(tmp_path):
    """server.processes.exit_with_parent ends an orphaned worker with os._exit, which runs
    no atexit: it removes the worker's folder itself, so nothing waits for a sweep."""
    state = tmp_path / "state"
    parent = start(PARENT_OF_ORPHAN, ORPHANED_WORKER, str(state), tmp_path=tmp_path)
    try:
        pid, folder = parent.stdout.readline().split()
        assert Path(folder).is_dir()
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        wait_gone(int(pid))
    finally:
        parent.kill()
    assert not Path(folder).exists()
    assert tempdirs.sweep(state) == []


def test_a_killed_render_process_leaves_no_font_folder_once_a_new_pool_starts(
        tmp_path, monkeypatch):
    """The render processes' WeasyPrint font folders (about 3 MB each) are in their own
    folders under the state dir, not in the system's temporary directory; one killed with
    SIGKILL leaves its folder until the next pool on that state dir (a restarted server's,
    or the one replacing a recycled pool) starts, which removes it."""
    system = tmp_path / "system-tmp"
    system.mkdir()
    monkeypatch.setenv("TMPDIR", str(system))  # what the render processes inherit
    state = tmp_path / "state"
    comp, layout = composition("welcome-letter")  # rendered by WeasyPrint
    pool = RenderPool(DEFAULT_LAYOUTS_DIR, workers=1, state_dir=state)
    try:
        pool.start()
        assert pool.render(comp, layout)[0].content.startswith(b"%PDF-")
        [pid] = pool.worker_pids()
        fonts = [*system.glob("weasyprint-*"), *tempdirs.root(state).glob("*/weasyprint-*")]
        assert fonts == [*tempdirs.root(state).glob(f"{pid}-*/weasyprint-*")], fonts
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
    finally:
        pool.close()
    assert fonts[0].is_dir(), "a killed render process leaves its font folder behind"

    fresh = RenderPool(DEFAULT_LAYOUTS_DIR, workers=1, state_dir=state)
    try:
        fresh.start()
        assert not fonts[0].parent.exists()
        assert [p.name for p in tempdirs.root(state).iterdir() if p.is_dir()] == [
            f.name for f in tempdirs.root(state).glob(f"{fresh.worker_pids()[0]}-*")]
    finally:
        fresh.close()
    assert [p.name for p in tempdirs.root(state).iterdir()] == [".sweep.lock"]
    assert list(system.iterdir()) == []
