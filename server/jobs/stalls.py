"""Stalled chunks: a running chunk whose worker finished no document for `stall_seconds`.

A bulk worker may be slow on purpose: it runs under SCHED_IDLE (server.processes.yield_cpu),
so real-time load can starve it for as long as that load lasts. A wall-clock limit on a
chunk would therefore kill healthy workers. What is abnormal is a chunk that makes no
progress at all: a chunk is ~50 documents of ~30 ms each, so minutes without one finished
document means its worker is frozen (SIGSTOP, a debugger), looping, stuck in a call, or
starved for minutes.

- The worker beats (`JobStore.chunk_progress`, at most every BEAT_SECONDS, after a document
  finished; `start_chunk` beats too): its identity ("host:pid"), the time, and its process's
  CPU seconds, on the chunk's row.
- The runner (server.jobs.runner) calls `StallWatch.check` every round: a running chunk
  whose last beat is `stall_seconds` old gets `stalled` set to a text such as
  "no document finished for 612 s in chunk 7 (worker pid 1234, state: stopped, 0.0 s CPU
  since its last document)", read from /proc/<pid>/stat when the worker runs on this host:
  'stopped' is a frozen process, 'running' with CPU close to the seconds is a loop,
  'running' with little CPU is starved, 'sleeping' waits on something. Logged once when a
  chunk stalls and once when it moves again; the text is refreshed every round.
- GetJob, WatchJob and `kanal job` show it in `stalled_reason` (server.jobs.results); the
  `kanal_job_chunks_stalled` gauge counts such chunks (server.jobs.gauges). The next beat,
  or the chunk's end, clears it.

The worker is left alone: a stopped process is resumed by SIGCONT (whoever stopped it may
mean to), a starved one by the load passing, and a looping one may be rendering a very
large document. An operator who knows better kills the pid the text names; the pool then
breaks, and its chunks are re-queued and re-run exactly once (server.jobs.queue).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from server import logs

log = logs.get_logger(__name__)

STALL_SECONDS = 600.0  # default of [jobs] stall_seconds
BEAT_SECONDS = 1.0  # a worker writes its heartbeat at most this often (one UPDATE)

# /proc/<pid>/stat's state letters (proc(5))
_STATES = {"R": "running", "S": "sleeping", "D": "waiting in the kernel (disk or network)",
           "T": "stopped", "t": "stopped by a debugger", "Z": "exited (a zombie)",
           "X": "exited", "I": "idle"}


def stall_seconds(jobs: Mapping[str, object], environ: Mapping[str, str]) -> float:
    """`[jobs] stall_seconds` of the settings (`KANAL_JOB_STALL_SECONDS` in `environ` wins),
    default STALL_SECONDS. Raises ValueError for anything but a number of seconds above 0."""
    raw = environ.get("KANAL_JOB_STALL_SECONDS") or jobs.get("stall_seconds", STALL_SECONDS)
    try:
        seconds = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f"jobs.stall_seconds must be a number of seconds above 0, not {raw!r}")
    return seconds


def me() -> tuple[str, float]:
    """This process as a heartbeat names it: ("host:pid", its CPU seconds so far)."""
    return f"{socket.gethostname()}:{os.getpid()}", time.process_time()


@dataclass(frozen=True, slots=True)
class ChunkRun:
    """A running chunk's heartbeat, as stored (JobStore.running_chunks)."""

    job_id: str
    chunk: int
    worker: str | None  # "host:pid"; None: started by an older worker that does not beat
    progress_at: datetime | None
    progress_cpu: float | None
    stalled: str | None


def process_state(pid: int) -> tuple[str, float] | None:
    """(state in words, CPU seconds user + system) of a process on this host, from
    /proc/<pid>/stat; None when there is no such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    letter, ticks = fields[0], int(fields[11]) + int(fields[12])  # state, utime + stime
    return _STATES.get(letter, letter), ticks / os.sysconf("SC_CLK_TCK")


def describe(run: ChunkRun, idle: float, host: str) -> str:
    """Why `run` is stalled, `idle` seconds after its last beat, seen from `host`."""
    where = "no worker named"
    if run.worker:
        worker_host, _, pid = run.worker.rpartition(":")
        if worker_host != host:
            where = f"worker pid {pid} on {worker_host}"
        else:
            state = process_state(int(pid))
            if state is None:
                where = f"worker pid {pid}, state: gone"
            else:
                words, cpu = state
                since = ("" if run.progress_cpu is None else
                         f", {max(cpu - run.progress_cpu, 0.0):.1f} s CPU since its last "
                         "document")
                where = f"worker pid {pid}, state: {words}{since}"
    return f"no document finished for {idle:.0f} s in chunk {run.chunk} ({where})"


class StallWatch:
    """The runner's check of every running chunk's heartbeat against `stall_seconds`."""

    def __init__(self, store: object, stall_seconds: float = STALL_SECONDS):
        self.store = store  # a server.jobs.store.JobStore (not imported: it imports us)
        self.stall_seconds = stall_seconds
        self.host = socket.gethostname()

    def check(self, now: datetime | None = None) -> None:
        """Mark the running chunks whose last beat is `stall_seconds` old as stalled (with
        a fresh text), clear the mark of those that beat again."""
        now = now or datetime.now(UTC)
        for run in self.store.running_chunks():  # type: ignore[attr-defined]
            if run.progress_at is None:
                continue
            idle = (now - run.progress_at).total_seconds()
            if idle >= self.stall_seconds:
                text = describe(run, idle, self.host)
                if self.store.set_stalled(  # type: ignore[attr-defined]
                        run.job_id, run.chunk, run.progress_at, text) and not run.stalled:
                    log.warning("chunk stalled", job_id=run.job_id, chunk=run.chunk,
                                reason=text)
            elif run.stalled and self.store.set_stalled(  # type: ignore[attr-defined]
                    run.job_id, run.chunk, run.progress_at, None):
                log.info("stalled chunk moves again", job_id=run.job_id, chunk=run.chunk)
