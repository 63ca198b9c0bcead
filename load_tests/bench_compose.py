"""Real-time Compose latency against a running server, next to bare WeasyPrint.

    python load_tests/bench_compose.py [--address HOST:PORT] [--requests 60] [--layout card-invoice]
                                       [--engine typst|weasyprint]

Without --address it starts `kanal serve` (embedded defaults, fresh state dir) as a
subprocess and stops it at the end; `--engine` then serves the layouts switched to that PDF
engine (load_tests/engines.py; default: each layout's own, Typst for the card invoice).
It measures, for the same document:
  - Compose p50/p95/p99 over gRPC at concurrency 1 and 8 (compose, render PDF/A,
    store in S3 with object lock, index), and throughput;
  - bare WeasyPrint in this process: the same HTML, `HTML(...).write_pdf()` one call per
    document with the layout's stylesheet, no caches, no archive;
and prints the ratio Compose p50 / bare p50, i.e. what the pipeline adds around layout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from weasyprint import CSS, HTML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kanal.v1 import documents_pb2, documents_pb2_grpc  # noqa: E402
from load_tests.engines import layouts_with_engine  # noqa: E402
from server.channels.weasyprint_engine import WeasyPrintEngine  # noqa: E402
from server.compose.composer import ComposeRequest, compose  # noqa: E402
from server.compose.layouts import LayoutRegistry  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "docs_per_s": round(len(latencies) / wall, 2),
    }


def start_server(state_dir: Path) -> tuple[subprocess.Popen, str, str]:
    """`kanal serve` on a free port; returns the process, its address and a producer key."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    kanal = Path(sys.executable).parent / "kanal"
    command = [str(kanal)] if kanal.exists() else [sys.executable, "-m", "server.cli"]
    with open(state_dir / "serve.log", "w") as log:
        process = subprocess.Popen(
            [*command, "serve", "--listen", address, "--state-dir", str(state_dir)],
            stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "KANAL_LOG_FORMAT": "json"}, cwd=ROOT,
        )
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=120)
        health = health_pb2_grpc.HealthStub(channel)
        while health.Check(health_pb2.HealthCheckRequest()).status != 1:
            time.sleep(0.2)
    key = json.loads((state_dir / "dev-api-keys.json").read_text())["producer"]
    return process, address, key


def run_compose(address: str, key: str, data: str, layout: str, requests: int,
                concurrency: int, tag: str) -> dict[str, float]:
    with grpc.insecure_channel(address) as channel:
        stub = documents_pb2_grpc.DocumentsStub(channel)

        def one(i: int) -> float:
            started = time.perf_counter()
            stub.Compose(documents_pb2.ComposeRequest(
                layout_id=layout, data_json=data, idempotency_key=f"{tag}-{i}"),
                timeout=120, metadata=[("authorization", f"Bearer {key}")])
            return time.perf_counter() - started

        for i in range(3):  # warm the server's caches (fonts, stylesheets, templates)
            one(-i - 1 - 1000 * concurrency)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(one, range(requests)))
        return summary(latencies, time.perf_counter() - started)


def run_bare_weasyprint(layout_id: str, data: str, requests: int) -> tuple[dict, int]:
    layout = LayoutRegistry().get(layout_id)
    composition = compose(ComposeRequest(
        tenant="bench", layout=layout, data=data, document_id="bench", now=datetime.now(UTC)))
    html = WeasyPrintEngine().render_html(layout, composition)
    stylesheets = [layout.path / name for name in layout.section("print").get("stylesheets", ())]
    base_url = layout.path.as_uri() + "/"

    def one() -> tuple[float, int]:
        started = time.perf_counter()
        document = HTML(string=html, base_url=base_url).render(
            stylesheets=[CSS(filename=str(s)) for s in stylesheets])
        document.write_pdf()
        return time.perf_counter() - started, len(document.pages)

    one()
    started = time.perf_counter()
    results = [one() for _ in range(requests)]
    return summary([r[0] for r in results], time.perf_counter() - started), results[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", help="a running server (default: start one)")
    parser.add_argument("--key", default=os.environ.get("KANAL_API_KEY"),
                        help="producer API key for --address (env KANAL_API_KEY)")
    parser.add_argument("--layout", default="card-invoice")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--engine", choices=("typst", "weasyprint"),
                        help="the started server's PDF engine (default: each layout's own)")
    args = parser.parse_args()

    layout = LayoutRegistry().get(args.layout)
    data = layout.sample_data()
    process = None
    with tempfile.TemporaryDirectory(prefix="kanal-bench-") as state:
        address, key = args.address, args.key
        if not address:
            if args.engine:
                os.environ["KANAL_LAYOUTS_DIR"] = str(layouts_with_engine(args.engine,
                                                                          Path(state)))
            process, address, key = start_server(Path(state))
        try:
            run_tag = datetime.now(UTC).strftime("%H%M%S%f")
            results = {
                "compose_c1": run_compose(address, key, data, args.layout, args.requests, 1,
                                          f"c1-{run_tag}"),
                "compose_c8": run_compose(address, key, data, args.layout, args.requests, 8,
                                          f"c8-{run_tag}"),
            }
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=60)
    bare, pages = run_bare_weasyprint(args.layout, data, max(10, args.requests // 2))
    results["bare_weasyprint"] = bare
    results["ratio_compose_p50_to_bare_p50"] = round(
        results["compose_c1"]["p50_ms"] / bare["p50_ms"], 2)
    results["context"] = {"layout": layout.ref, "engine": args.engine or "layout's own",
                          "pages": pages, "cpus": os.cpu_count(),
                          "python": platform.python_version(), "at": datetime.now(UTC).isoformat()}

    out = ROOT / "load_tests" / "results"
    out.mkdir(exist_ok=True)
    (out / f"compose-{args.engine or 'layout'}.json").write_text(json.dumps(results, indent=2))
    print(f"layout {layout.ref}, {pages} page(s), {os.cpu_count()} CPUs")
    print(f"{'':18}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'docs/s':>9}")
    for name in ("compose_c1", "compose_c8", "bare_weasyprint"):
        r = results[name]
        print(f"{name:18}{r['n']:>5}{r['p50_ms']:>9}{r['p95_ms']:>9}{r['p99_ms']:>9}"
              f"{r['docs_per_s']:>9}")
    print(f"Compose p50 / bare WeasyPrint p50 = {results['ratio_compose_p50_to_bare_p50']}")


if __name__ == "__main__":
    main()
