"""Child processes never outlive the process that started them (server.processes): Linux
kills them when it dies (PR_SET_PDEATHSIG), armed as the child starts, before it loads
what its work needs; and a child started from a thread that ends lives on. Real processes,
really killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'proto'}"}

# A parent whose pool is made and first used from a thread that then ends (as the thread
# replacing a recycled render pool does), which uses the pool again, then starts a process
# whose arguments take 60 s to load (as a worker's imports take seconds), and waits.
PARENT = """
import os, sys, threading, time
from server import processes

class SlowToLoad:  # unpickled in the child: 60 s, as a worker's imports take seconds
    def __reduce__(self):
        return time.sleep, (60,)

def main():
    pool = {}
    def start():
        pool["p"] = processes.process_pool(1, os.getpid)  # any picklable initializer
        pool["worker"] = pool["p"].submit(os.getpid).result()
    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    time.sleep(0.5)  # the thread is gone: a signal tied to it would have landed by now
    assert pool["p"].submit(os.getpid).result() == pool["worker"]
    slow = processes.tied_context().Process(target=print, args=(SlowToLoad(),))
    slow.start()
    print(pool["worker"], slow.pid, flush=True)
    sys.stdin.read()

if __name__ == "__main__":
    main()
"""


def ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_children_outlive_the_thread_that_started_them_but_not_their_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, **ENV})
    try:
        line = parent.stdout.readline()
        assert line, "the parent failed"
        worker, slow = (int(pid) for pid in line.split())
        assert not ended(worker) and not ended(slow)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while not (ended(worker) and ended(slow)) and time.monotonic() < deadline:
        time.sleep(0.02)  # waiting for the kernel to end them, not for time to pass
    left = [pid for pid in (worker, slow) if not ended(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "children outlived their killed parent"
