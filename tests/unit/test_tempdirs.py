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

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'proto'}"}

# Claims a folder, makes what WeasyPrint makes there (a font folder, through tempfile),
# says where, then lives until its stdin closes.
CLAIM_AND_WAIT = """
import os, sys, tempfile
from pathlib import Path
from server import tempdirs

folder = tempdirs.claim(Path(sys.argv[1]))
fonts = tempfile.mkdtemp(prefix="weasyprint-")
Path(fonts, "font.woff2").write_bytes(b"0" * 4096)
print(folder, fonts, os.environ["TMPDIR"], flush=True)
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
