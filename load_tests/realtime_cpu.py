"""Where a real-time Compose call's CPU goes: per process and per server thread, and the
garbage collector's full collections, at a given concurrency.

    python load_tests/realtime_cpu.py [--calls 200] [--concurrency 8] [--rounds 2]
                                      [--render-workers N]

One KanalServer on the embedded defaults (as load_tests/bench_realtime_under_load.py; the
client runs in this process too: its CPU is in this process's figure, but its threads end
with each round, so the thread list is the server's), warmed with 8
calls; then `--rounds` rounds of `--calls` Compose calls of the card invoice's sample at
`--concurrency`. Each round prints p50/p99, the CPU ms per call of this process, of each
child process (SeaweedFS, the render processes) and of each named thread of this process
(rpc-render: composing and archiving; s3: the archive's puts; delivery-dispatcher and
deliver-*: the outbox; grpc-loop: the server's event loop; QueueFeederThread: sending
compositions to the render processes; ...), all from /proc. Every full (generation 2)
collection in this process or a render process is printed as it happens with its CPU ms:
one that takes 100 ms in the server holds the GIL that long, so every call in flight waits.

The ceiling at concurrency c on k cores: a call waits for the c - 1 ahead of it, so p50 is
about c x (CPU ms per call) / k once the cores are busy.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def _full_collections(phase: str, info: dict) -> None:
    """A gc callback: print every generation-2 collection with its CPU ms."""
    if phase == "start":
        _full_collections.started = time.process_time()  # type: ignore[attr-defined]
    elif info["generation"] == 2:
        ms = (time.process_time() - _full_collections.started) * 1000  # type: ignore[attr-defined]
        print(f"  full collection in pid {os.getpid()}: {ms:.1f} ms CPU "
              f"({info['collected']} collected)", file=sys.stderr, flush=True)


# in the render processes too: 'spawn' imports this module there as __mp_main__
gc.callbacks.append(_full_collections)


def cpu_seconds(pid: int | str, task: str | None = None) -> float:
    path = f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def children(pid: int) -> dict[int, str]:
    """Every descendant process of `pid`: its command line."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(
                    Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
                found[child] = ("seaweedfs" if b"weed" in cmd else
                                "render process" if b"spawn_main" in cmd else
                                cmd.decode(errors="replace")[:40])
                todo.append(child)
    return found


def threads_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads, summed by name (numbers stripped)."""
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    by_name: dict[str, float] = {}
    for task in os.listdir("/proc/self/task"):
        name = re.sub(r"([_-]\d+)+$", "", names.get(task, "(native)"))  # rpc-render_3
        by_name[name] = by_name.get(name, 0.0) + cpu_seconds("self", task)
    return by_name


def main() -> None:
    import grpc

    from kanal.v1 import documents_pb2, documents_pb2_grpc
    from load_tests.bench_compose import summary
    from server.app import KanalServer
    from server.auth import ApiKey, hash_key, new_key
    from server.compose.layouts import LayoutRegistry
    from server.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--render-workers", type=int, default=None,
                        help="default: the settings' (one render process per core)")
    args = parser.parse_args()
    from server.processes import run_on_jemalloc

    run_on_jemalloc()  # as `kanal serve` runs (KANAL_MALLOC=system: the C library's)
    secret = new_key()
    key = ApiKey(id="bench", sha256=hash_key(secret), tenant="bench", role="producer")
    metadata = (("authorization", f"Bearer {secret}"),)
    data = LayoutRegistry().get("card-invoice").sample_data()
    with tempfile.TemporaryDirectory(prefix="kanal-rt-cpu-") as state:
        settings = Settings(listen="127.0.0.1:0", state_dir=Path(state) / "server",
                            api_keys=(key,))
        if args.render_workers is not None:
            settings = replace(settings, render_workers=args.render_workers)
        with KanalServer(settings) as server, grpc.insecure_channel(server.address) as ch:
            stub = documents_pb2_grpc.DocumentsStub(ch)

            def one(tag: str) -> float:
                started = time.perf_counter()
                stub.Compose(documents_pb2.ComposeRequest(
                    layout_id="card-invoice", data_json=data, idempotency_key=tag),
                    metadata=metadata, timeout=120)
                return time.perf_counter() - started

            with ThreadPoolExecutor(2) as pool:
                list(pool.map(one, [f"warm-{n}" for n in range(8)]))
            processes = children(os.getpid())
            print("measuring", file=sys.stderr, flush=True)
            for round_ in range(args.rounds):
                before = {pid: cpu_seconds(pid) for pid in (os.getpid(), *processes)}
                threads_before = threads_cpu()
                started = time.perf_counter()
                with ThreadPoolExecutor(args.concurrency) as pool:
                    latencies = list(pool.map(one, [f"r{round_}-{n}"
                                                    for n in range(args.calls)]))
                result = summary(latencies, time.perf_counter() - started)
                print(f"c{args.concurrency} n={args.calls}: p50 {result['p50_ms']} ms, p99 "
                      f"{result['p99_ms']} ms, {result['docs_per_s']} calls/s "
                      f"(load {os.getloadavg()[0]:.1f})")
                for pid, seconds in before.items():
                    name = "this process (server + client)" if pid == os.getpid() \
                        else f"{processes[pid]} {pid}"
                    used = (cpu_seconds(pid) - seconds) * 1000 / args.calls
                    print(f"  {used:6.1f} ms CPU per call  {name}")
                for name, seconds in sorted(threads_cpu().items(), key=lambda kv: -kv[1]):
                    used = (seconds - threads_before.get(name, 0.0)) * 1000 / args.calls
                    if used >= 0.05:
                        print(f"         {used:6.2f} ms  thread {name}")


if __name__ == "__main__":
    main()
