"""Long-lived processes: workers that never outlive the server that started them, and heaps
the garbage collector stops walking once they are warm.

A server killed with SIGKILL (an operator's `kill -9`, the OOM killer) cannot stop its
process pools; their workers would wait on their queues for ever, holding memory and
database connections, and with them multiprocessing's resource tracker (it ends when the
last process holding its pipe does). So every render and bulk worker process is started
by `process_pool` (`kanal worker`'s consumer: `tied_context`), and asks Linux, first thing,
to SIGKILL it when its server dies (`prctl(PR_SET_PDEATHSIG)`, `tie_to_parent`): the kernel
ends it however the server ended, even one stuck in a native library with the GIL held,
which no watch in Python could end. A watch thread polling `getppid` from each worker's
pool initializer did this before, and missed the workers that QA found alive minutes after
the kill (196 MB RSS, and the tracker with them): a spawned worker imports Kanal for 1-3 s
before its initializer runs, and one whose server died meanwhile took PID 1 for the parent
to watch. Two traps, both closed here:

- The race: a server that dies between the child's start and its prctl leaves an orphan
  whose death signal was never armed. So the child arms it as it unpickles its process
  object, before its target, arguments and their imports are loaded, then checks that its
  parent is still the server (`getppid()` against the server's pid, pickled with the
  process) and ends at once when it is not.
- The thread: Linux sends the signal when the *thread* that started the child ends, not
  the process. Pools start processes from whichever thread submits work (gRPC handler
  threads, the thread that replaces a recycled render pool, which ends at once). So
  `tied_context` starts every child from one thread that lives as long as the server
  process (`_Spawner`).

A worker killed so leaves its temporary folder (server.tempdirs) to the next sweep: when
the server starts again (or another process sharing the state dir sweeps). Its chunk is
'running' in the job store and runs again, once, on the restarted server: the index row is
each record's commit point (server.jobs.worker), so nothing is lost or done twice; and
since the worker is dead before the server can be restarted, the two runs never overlap.
Where prctl does not exist (not Linux), `exit_with_parent` polls `getppid` once a second
in a thread instead, and removes the folder itself (`os._exit` skips atexit).

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
(mmap and trim thresholds, tcache) gained nothing. jemalloc runs with its background thread
(`MALLOC_CONF` `background_thread:true`, added to an operator's own options unless they set
it): without it jemalloc gives freed pages back to the system only when the thread that
freed them allocates again, and the server's print batch closer, which builds a 500-piece
batch (about +220 MB at its peak: 500 PDFs open in qpdf at once) and then sleeps, left
~95 MB of it resident until it built its next batch (load_tests/bench_bulk.py --size 10000:
server RSS 169 -> 257 MB for the 76 s until the second batch; a batch built alone in a
thread that stays alive: 202 MB before, 297 MB 30 s after). With it the pages go back
within 10-15 s of the build (200 MB). bench_bulk.py --size 10000, run back to back: the
server's RSS at each 1,000 documents 165-204 MB instead of 167-273, 174 MB at the end
instead of 273; the bulk workers' the same (243-262 MB sampled, 246-265 before). The
batch build's own peak (~375 MB) is unchanged; throughput was not comparable on this
shared machine.

`peak_rss_kb`: a process's own peak RSS, what the bulk workers report after each chunk
(server.jobs.queue.MemoryGrowth replaces them by it). Not `getrusage(RUSAGE_SELF).ru_maxrss`:
Linux starts a new process's ru_maxrss at its parent's peak (fork copies the parent's
high-water mark, exec keeps the larger of the two), so a worker spawned by a server that
once held 388 MB reported 388 MB from its first chunk, though it never held more than 267
(load_tests/bench_bulk.py --size 10000: worker_peak_rss_mb [261, 265, 388, 388]), and its
growth went unseen until it passed the server's peak by GROWTH_LIMIT_KB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import multiprocessing.context
import os
import queue
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from server import tempdirs

T = TypeVar("T")
MALLOC_SWITCH = "KANAL_MALLOC"  # "system": stay on the C library's malloc
JEMALLOC_CONF = "MALLOC_CONF"  # jemalloc's options, read once at its start (jemalloc(3))


EXIT_ORPHANED = 70  # a child whose server died before it was tied to it (nobody reads it)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def tie_to_parent(parent_pid: int) -> None:
    """In a child process, first thing (before it claims a temporary folder or connects to
    anything): end it with SIGKILL when the process `parent_pid` (the server that started
    it, `os.getpid()` there) dies, however it dies. Ends this process at once, with
    EXIT_ORPHANED, when that parent is already gone. The child must have been started from
    a thread that lives as long as its parent (`tied_context`; a program's main thread),
    see the module docstring. Where Linux's prctl is missing, `exit_with_parent`."""
    if not _kill_me_when_parent_dies():
        exit_with_parent(parent_pid)
        return
    if os.getppid() != parent_pid:  # it died before the signal was armed: no signal comes
        os._exit(EXIT_ORPHANED)


def _kill_me_when_parent_dies() -> bool:
    """prctl(PR_SET_PDEATHSIG, SIGKILL) -> whether it was set (False: not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def exit_with_parent(parent_pid: int | None = None, poll_seconds: float = 1.0) -> None:
    """Where `tie_to_parent` cannot ask the kernel: a thread that ends this process (its
    temporary folder removed first: server.tempdirs) once its parent is no longer
    `parent_pid` (None: the parent it has now), within `poll_seconds`; at once when it is
    not at the call."""
    parent = os.getppid() if parent_pid is None else parent_pid

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        tempdirs.release()
        os._exit(0)  # the server is gone; nobody will read what this worker makes

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class _Spawner:
    """Runs every process start of this process in one daemon thread that lives as long as
    the process, so a child's parent-death signal (which Linux ties to the starting thread)
    fires only when the process ends. Started on first use, again after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None

    def run(self, start: Callable[[], T]) -> T:
        """`start()` in the spawner thread -> its result (or its exception, raised here)."""
        if threading.current_thread() is self._thread:
            return start()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="process-spawner",
                                                daemon=True)
                self._thread.start()
        done: Future[T] = Future()
        self._requests.put((start, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            start, done = self._requests.get()
            try:
                done.set_result(start())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done.set_exception(exc)


_spawner = _Spawner()


class _TiedProcess(multiprocessing.context.SpawnProcess):
    """A 'spawn' process started from the spawner thread, which ties itself to its parent
    (`tie_to_parent`) as the child unpickles it: before the target, its arguments and
    the modules they need are loaded (1-3 s of imports for a worker), so an orphan ends
    then, not after them. Module level: pickled by name."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 - multiprocessing's name
        return _spawner.run(
            lambda: multiprocessing.context.SpawnProcess._Popen(process_obj))

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle loads the tie (and so calls tie_to_parent) before the process's state
        return _revive, (_Tie(os.getpid()), self.__dict__)


class _Tie:
    def __init__(self, parent_pid: int):
        self.parent_pid = parent_pid

    def __reduce__(self) -> tuple[Any, ...]:
        return tie_to_parent, (self.parent_pid,)


def _revive(_tied: None, state: dict[str, Any]) -> _TiedProcess:
    """The child's copy of a `_TiedProcess`, once `_Tie` has tied it."""
    process = _TiedProcess.__new__(_TiedProcess)
    process.__dict__.update(state)
    return process


class _TiedContext(multiprocessing.context.SpawnContext):
    Process = _TiedProcess


def tied_context() -> multiprocessing.context.SpawnContext:
    """multiprocessing's 'spawn' context (no forked gRPC or database state) whose processes
    never outlive this one: started from the spawner thread, each ties itself to this
    process (`tie_to_parent`) as it starts, before it imports what its target needs."""
    return _TiedContext()


def process_pool(workers: int, initializer: Callable[..., None],
                 initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A pool of `workers` 'spawn' processes that never outlive this one (`tied_context`),
    each running `initializer(*initargs)` first (module level: pickled by name)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=tied_context(),
                               initializer=initializer, initargs=initargs)


def settle_heap() -> None:
    """Collect garbage, then freeze every object still alive (see the module docstring).
    Once a process is warm; calling it again later freezes what became long-lived since,
    and costs only a collection of the objects not frozen yet."""
    gc.collect()
    gc.freeze()


def peak_rss_kb() -> int:
    """This process's own peak resident set size, KiB: the kernel's high-water mark of its
    memory map (`VmHWM` in /proc/self/status, proc(5)), which starts afresh at exec, unlike
    `ru_maxrss` (see the module docstring). Where /proc is missing (not Linux), ru_maxrss
    (KiB on Linux and BSD, bytes on macOS: divided here)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def jemalloc_options(operators: str) -> str:
    """`MALLOC_CONF` for jemalloc: an operator's own options (comma separated, may be empty)
    with its background thread on (see the module docstring), unless they say otherwise."""
    if "background_thread" in operators:
        return operators
    return ",".join(filter(None, [operators, "background_thread:true"]))


def foreign_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` (default: this process's) without what `run_on_jemalloc` added: jemalloc in
    `LD_PRELOAD` and its `MALLOC_CONF`. For a program of its own kind started by a Kanal
    process (headless Chromium, load_tests' peer): jemalloc's background thread, created in
    every process that loads it, makes Chromium's sandboxed children exit at start (seen
    with Debian chromium 156: `--dump-dom` printed nothing), and such a program has its own
    allocator anyway. -> a new dict; the rest of `environ` as it is."""
    env = dict(os.environ if environ is None else environ)
    kept = [lib for lib in env.pop("LD_PRELOAD", "").split() if "jemalloc" not in lib]
    if kept:
        env["LD_PRELOAD"] = " ".join(kept)
    env.pop(JEMALLOC_CONF, None)
    return env


def run_on_jemalloc() -> bool:
    """Re-execute this process on jemalloc (see the module docstring): the same program,
    arguments, PID and open descriptors, with jemalloc added to `LD_PRELOAD` and its
    background thread to `MALLOC_CONF` (`jemalloc_options`), which the processes it starts
    inherit. Done once, first thing, by the commands that start long-lived processes.
    -> False, and nothing happens, when jemalloc is not installed
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
    os.environ[JEMALLOC_CONF] = jemalloc_options(os.environ.get(JEMALLOC_CONF, ""))
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
