"""`kanal serve` and `kanal worker` run on jemalloc, and so do the processes they start
(server.processes.run_on_jemalloc): a real re-executed Python process, its memory map read
from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import multiprocessing, os, sys
from server.processes import run_on_jemalloc

def mapped():
    return "libjemalloc" in open("/proc/self/maps").read()

if __name__ == "__main__":
    print("pid", os.getpid(), "args", sys.argv[1:], "mapped", mapped(), flush=True)
    print("returned", run_on_jemalloc(), "mapped", mapped(), flush=True)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print("child mapped", pool.apply(mapped), flush=True)
"""


def run(tmp_path: Path, **env: str) -> list[str]:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    environ = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "KANAL_MALLOC")}
    done = subprocess.run(
        [sys.executable, str(script), "--an-argument"], cwd=ROOT, capture_output=True,
        text=True, timeout=60,
        env={**environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'proto'}", **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_process_re_executes_itself_on_jemalloc_and_its_children_inherit_it(tmp_path):
    before, again, returned, child = run(tmp_path)
    pid = before.split()[1]
    # the first run re-executed itself: same PID, same arguments, now on jemalloc
    assert before == f"pid {pid} args ['--an-argument'] mapped False"
    assert again == f"pid {pid} args ['--an-argument'] mapped True"
    assert returned == "returned True mapped True"
    assert child == "child mapped True"


def test_kanal_malloc_system_keeps_the_c_librarys_malloc(tmp_path):
    before, returned, child = run(tmp_path, KANAL_MALLOC="system")
    assert before.endswith("mapped False")
    assert returned == "returned False mapped False"
    assert child == "child mapped False"


OPTIONS = """
import ctypes, os
from server.processes import run_on_jemalloc

def option(name, ctype):  # jemalloc's own reading of its options (mallctl, jemalloc(3))
    value, size = ctype(), ctypes.c_size_t(ctypes.sizeof(ctype))
    assert ctypes.CDLL(None).mallctl(name.encode(), ctypes.byref(value), ctypes.byref(size),
                                     None, ctypes.c_size_t(0)) == 0
    return value.value

if run_on_jemalloc():
    print(option("opt.background_thread", ctypes.c_bool), option("opt.narenas", ctypes.c_uint),
          os.environ["MALLOC_CONF"], flush=True)
"""


@pytest.mark.parametrize(("operators", "expected"), [
    ({}, ("True", "background_thread:true")),
    ({"MALLOC_CONF": "narenas:3"}, ("True", "3", "narenas:3,background_thread:true")),
    ({"MALLOC_CONF": "background_thread:false"}, ("False", "background_thread:false")),
], ids=["default", "operator-options-kept", "operator-says-no"])
def test_jemalloc_runs_its_background_thread(tmp_path, operators, expected):
    """Without it jemalloc returns freed pages only when the freeing thread allocates again:
    the print batch closer kept ~95 MB of a batch build resident for minutes (see
    server.processes). An operator's MALLOC_CONF is kept, and their word on it wins."""
    script = tmp_path / "options.py"
    script.write_text(OPTIONS)
    environ = {k: v for k, v in os.environ.items()
               if k not in ("LD_PRELOAD", "KANAL_MALLOC", "MALLOC_CONF")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'proto'}", **operators})
    assert done.returncode == 0, done.stderr
    background, narenas, conf = done.stdout.split()
    # (jemalloc's own option values; the arenas only where the operator set them)
    assert (background, *([narenas] if len(expected) == 3 else []), conf) == expected


COMMAND = """
import os, sys
os.environ.pop("LD_PRELOAD", None)
os.environ.pop("KANAL_MALLOC", None)

def execv(path, argv):  # where the re-execution would happen: what is imported by then
    print("heavy", sorted(m for m in ("server.app", "server.jobs.worker") if m in sys.modules),
          flush=True)
    os._exit(0)

os.execv = execv
import ctypes.util
if ctypes.util.find_library("jemalloc") is None:
    print("no jemalloc", flush=True)
    raise SystemExit(0)
from server.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("command", [
    ["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "off"],
    ["worker", "--rabbitmq", "amqp://127.0.0.1:1/"],
])
def test_the_commands_re_execute_before_importing_the_server(tmp_path, command):
    """The re-execution comes first: importing the server (gRPC, SQLAlchemy, the renderers:
    about a second) before it would be done twice, once for nothing, at every start."""
    script = tmp_path / "command.py"
    script.write_text(COMMAND)
    done = subprocess.run(
        [sys.executable, str(script), *command], cwd=tmp_path, capture_output=True,
        text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'proto'}"})
    if done.stdout.strip() == "no jemalloc":
        pytest.skip("libjemalloc2 is not installed")
    assert done.stdout.strip() == "heavy []", done.stderr


CHROMIUM_PEER = """
from load_tests.engines import Chromium
from server.processes import run_on_jemalloc

if __name__ == "__main__":
    assert run_on_jemalloc()
    browser = Chromium()
    try:
        print("product", browser.call("Browser.getVersion")["product"], flush=True)
    finally:
        browser.close()
"""


def test_a_chromium_started_by_a_process_on_jemalloc_runs(tmp_path):
    """load_tests' Chromium peer (bench_bulk's printToPDF) started from a process on jemalloc:
    its background thread (MALLOC_CONF, inherited with LD_PRELOAD) made Chromium exit at start
    ('chromium closed the DevTools pipe'); it is started without them
    (server.processes.foreign_environ)."""
    script = tmp_path / "peer.py"
    script.write_text(CHROMIUM_PEER)
    environ = {k: v for k, v in os.environ.items()
               if k not in ("LD_PRELOAD", "KANAL_MALLOC", "MALLOC_CONF")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'proto'}"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("product ") and "Chrome/" in done.stdout, done.stdout


def test_foreign_environ_leaves_out_only_what_jemalloc_added():
    from server.processes import foreign_environ

    env = foreign_environ({"LD_PRELOAD": "libjemalloc.so.2 /opt/libother.so",
                           "MALLOC_CONF": "background_thread:true", "PATH": "/usr/bin"})
    assert env == {"LD_PRELOAD": "/opt/libother.so", "PATH": "/usr/bin"}
    assert foreign_environ({"LD_PRELOAD": "libjemalloc.so.2"}) == {}
