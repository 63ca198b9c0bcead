"""Long-lived processes: workers that never outlive the server that started them, and heaps
the garbage collector stops walking once they are warm.

A server killed with SIGKILL cannot stop its process pools; their workers would wait on
their queues forever, holding memory and database connections. Each worker runs this
watch from its initializer: when its parent is gone (the kernel re-parents the orphan),
it removes its temporary folder (server.tempdirs: `os._exit` skips atexit) and exits.
Polling `getppid` once a second costs nothing measurable.

`settle_heap`: what is alive once a process is warm (the libraries' modules, layouts,
compiled templates, Babel's locale data, the engines' and channels' caches) lives as long
as the process, yet every full collection of the cyclic garbage collector walks all of it
again, holding the GIL: measured here, 110-130 ms CPU per full collection in a server
(every few hundred Compose calls, each one stalling every call in flight) and 75-85 ms in a
render or bulk worker process. Frozen (`gc.freeze`, after a collection so no garbage is
kept), those objects are never walked again; later collections see only what is newer:
after it, 4-9 ms per full collection in the server and about 1 ms in a render process.

`run_on_jemalloc`: `kanal serve` and `kanal worker` run on jemalloc, and so does every
process they start (render processes, bulk workers). Typst (typst-py's Rust), pdfium,
lxml and CPython's larger objects allocate through the C library's malloc; measured here on
2 cores with glibc 2.36's malloc against jemalloc 5.3 (Debian `libjemalloc2`), the same
documents: bare Typst renders 37.8-42.2 -> 32.6-35.6 ms CPU per card invoice
(load_tests/bench_typst_render.py), a bulk worker 60.3 -> 54.5 ms per document
(bench_bulk.py), real-time Compose at concurrency 8 22.4-23.0 -> 26.5-26.9 calls/s
(bench_realtime_under_load.py); worker and server RSS the same. glibc's malloc tunables
(mmap and trim thresholds, tcache) gained nothing.
"""

from __future__ import annotations

import ctypes.util
import gc
import os
import sys
import threading
import time

from server import tempdirs

MALLOC_SWITCH = "KANAL_MALLOC"  # "system": stay on the C library's malloc


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        tempdirs.release()
        os._exit(0)  # the server is gone; nobody will read what this worker makes

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def settle_heap() -> None:
    """Collect garbage, then freeze every object still alive (see the module docstring).
    Once a process is warm; calling it again later freezes what became long-lived since,
    and costs only a collection of the objects not frozen yet."""
    gc.collect()
    gc.freeze()


def run_on_jemalloc() -> bool:
    """Re-execute this process on jemalloc (see the module docstring): the same program,
    arguments, PID and open descriptors, with jemalloc added to `LD_PRELOAD`, which the
    processes it starts inherit. Done once, first thing, by the commands that start
    long-lived processes. -> False, and nothing happens, when jemalloc is not installed
    (Debian: libjemalloc2) or `KANAL_MALLOC=system`; True when this process already runs
    on it. Does not return when it re-executes."""
    if os.environ.get(MALLOC_SWITCH) == "system":
        return False
    preloaded = os.environ.get("LD_PRELOAD", "")
    if "jemalloc" in preloaded:
        return True
    library = ctypes.util.find_library("jemalloc")  # "libjemalloc.so.2", found by ld.so
    if library is None:
        return False
    os.environ["LD_PRELOAD"] = f"{library} {preloaded}".strip()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


def yield_cpu(nice: int) -> None:
    """Make this process (a bulk worker beside a real-time server) run only on CPU that
    real-time work leaves idle: `nice` added to its nice value, and Linux's SCHED_IDLE
    policy (sched(7): for "very low priority background jobs"; weight 3 against a
    normal task's 1024, where nice 10 still weighs 110). Measured here on 2 cores
    (load_tests/bench_realtime_under_load.py, 400-record bulk job running, two runs each):
    real-time Compose at concurrency 8 went from p99 609-634 ms and 17.5-20.6 calls/s with
    nice 10 alone to 434-461 ms and 22.7-24.4 calls/s, about what it does with no bulk
    job; a machine with nothing real-time to do gives the bulk job all of its CPU either
    way. Where the policy does not exist (not Linux), the nice value alone."""
    os.nice(nice)
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
