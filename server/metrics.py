"""Prometheus metrics: what a stage observes -> counters and histograms -> a scrape endpoint.

Stages call the small functions below (`documents_rendered`, `render_time`, ...); they never
touch prometheus_client themselves. Everything lives in prometheus_client's default registry,
so a stage that needs a metric of its own may also declare it with prometheus_client as
usual (`Counter("kanal_deliveries_total", ...)`) and it is scraped with the rest.

Worker processes (the real-time render pool, bulk job workers) cannot be scraped: their
observations are *buffered* (`buffer_observations()` in the process initializer), handed
back with each result (`drain()`), and replayed into the server's registry (`replay()`).
So one scrape of `kanal serve` shows the work of all its processes, and the counts survive
the regular replacement of worker processes.

Metric names (all times in seconds, Prometheus' base unit):

- `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}` and
  `grpc_server_handling_seconds{...same...}`: every RPC by method and status (the names of
  go-grpc-prometheus; the histogram also has `grpc_code`, so slow errors stand out);
- `kanal_documents_rendered_total{layout,channel}`, `kanal_pages_rendered_total{layout,channel}`;
- `kanal_render_seconds{engine}`: one PDF engine call (`weasyprint`, `typst`, ...);
- `kanal_archive_put_seconds`, `kanal_archive_put_errors_total{error}`: S3 object writes;
- `kanal_jobs{state}` and `kanal_job_chunks{state}` (pending, running: the queue depth),
  read from the job store at scrape time (server/jobs/gauges.py);
- `kanal_build_info{version,python,grpcio,weasyprint}`;
- prometheus_client's own `process_*` (RSS, CPU, open fds) and `python_gc_*`.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import metadata
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import start_http_server

# Buckets from 5 ms to 2 min: one-page renders take ~10-200 ms, big jobs' calls minutes.
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

_RPC_LABELS = ("grpc_type", "grpc_service", "grpc_method", "grpc_code")
rpc_handled = Counter("grpc_server_handled_total", "RPCs completed, by method and status",
                      _RPC_LABELS)
rpc_seconds = Histogram("grpc_server_handling_seconds", "RPC handling time, by method and status",
                        _RPC_LABELS, buckets=SECONDS)
documents = Counter("kanal_documents_rendered_total", "Documents rendered, per layout and channel",
                    ("layout", "channel"))
pages = Counter("kanal_pages_rendered_total", "PDF pages rendered, per layout and channel",
                ("layout", "channel"))
render_seconds = Histogram("kanal_render_seconds", "Time of one PDF engine call, per engine",
                           ("engine",), buckets=SECONDS)
archive_put_seconds = Histogram("kanal_archive_put_seconds", "Time of one archive object write",
                                buckets=SECONDS)
archive_put_errors = Counter("kanal_archive_put_errors_total", "Archive object writes that failed",
                             ("error",))
build = Info("kanal_build", "The running Kanal and the libraries that shape its output")

# name -> (metric, "inc" | "observe"); what a worker's buffered observation refers to
_BY_NAME: dict[str, tuple[Any, str]] = {
    "documents": (documents, "inc"), "pages": (pages, "inc"),
    "render_seconds": (render_seconds, "observe"),
    "archive_put_seconds": (archive_put_seconds, "observe"),
    "archive_put_errors": (archive_put_errors, "inc"),
}
Observation = tuple[str, tuple[str, ...], float]
_buffer: list[Observation] | None = None  # set in worker processes


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


build.info({"version": _version("kanal"), "python": platform.python_version(),
            "grpcio": _version("grpcio"), "weasyprint": _version("weasyprint")})


# --- what stages call ----------------------------------------------------------------------------


def _record(name: str, labels: tuple[str, ...], value: float) -> None:
    if _buffer is not None:
        _buffer.append((name, labels, value))
        return
    metric, how = _BY_NAME[name]
    child = metric.labels(*labels) if labels else metric
    getattr(child, how)(value)


def documents_rendered(layout: str, outputs: Iterable[Any]) -> None:
    """One document's outputs (`server.compose.model.Output`: `.channel`, `.facts["pages"]`)."""
    for output in outputs:
        channel = getattr(output.channel, "value", output.channel)
        _record("documents", (layout, channel), 1)
        if output.facts.get("pages"):
            _record("pages", (layout, channel), output.facts["pages"])


def engine_name(engine: object) -> str:
    """An engine's `name` attribute, else its class name without 'Engine', lower case."""
    name = getattr(engine, "name", None)
    return name if isinstance(name, str) else type(engine).__name__.removesuffix("Engine").lower()


def render_time(engine: str, seconds: float) -> None:
    """One PDF engine call: the engine's name (`weasyprint`, `typst`) and how long it took."""
    _record("render_seconds", (engine,), seconds)


def archive_put(seconds: float, error: BaseException | None = None) -> None:
    """One archive object write (see server/measured_store.py) and how it ended."""
    if error is not None:
        _record("archive_put_errors", (type(error).__name__,), 1)
    else:
        _record("archive_put_seconds", (), seconds)


# --- worker processes ----------------------------------------------------------------------------


def buffer_observations() -> None:
    """In a worker process's initializer: keep observations for `drain()`."""
    global _buffer
    _buffer = []


def drain() -> tuple[Observation, ...]:
    """The observations buffered since the last drain (picklable), to return with a result."""
    global _buffer
    if _buffer is None:
        return ()
    taken, _buffer = _buffer, []
    return tuple(taken)


def register(name: str, metric: Any, how: str) -> None:
    """A stage's own metric (declared with prometheus_client) that worker processes observe
    too: `record(name, ...)` then buffers in a worker and is replayed in the server. `how`:
    "inc" or "observe"."""
    _BY_NAME[name] = (metric, how)


def record(name: str, labels: tuple[str, ...], value: float = 1) -> None:
    """One observation of a `register`ed metric (buffered in worker processes)."""
    _record(name, labels, value)


def replay(observations: Sequence[Observation]) -> None:
    """In the server: apply a worker's observations to the registry."""
    for name, labels, value in observations:
        if name in _BY_NAME:
            _record(name, tuple(labels), value)


# --- gauges read at scrape time ------------------------------------------------------------------

GaugeSource = Callable[[], dict[str, dict[str, float]]]


class _Gauges:
    """Gauges computed when scraped, from sources a server adds and removes (one per running
    server in this process; the values of all sources are added up)."""

    def __init__(self) -> None:
        self._sources: dict[int, tuple[GaugeSource, dict[str, tuple[str, str]]]] = {}
        self._lock = threading.Lock()
        self._described: dict[str, tuple[str, str]] = {}

    def add(self, source: GaugeSource, described: dict[str, tuple[str, str]]) -> int:
        """`source()` -> {metric name: {label value: value}}; `described`: {metric name:
        (help, label name)}. Returns a handle for `remove`."""
        with self._lock:
            handle = id(source)
            self._sources[handle] = (source, described)
            self._described.update(described)
            return handle

    def remove(self, handle: int) -> None:
        with self._lock:
            self._sources.pop(handle, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            sources = list(self._sources.values())
            described = dict(self._described)
        totals: dict[str, dict[str, float]] = {name: {} for name in described}
        for source, _ in sources:
            try:
                values = source()
            except Exception:  # noqa: BLE001 - a scrape must not fail with the database down
                continue
            for name, by_label in values.items():
                for label, value in by_label.items():
                    totals[name][label] = totals[name].get(label, 0) + value
        for name, (help_text, label_name) in described.items():
            family = GaugeMetricFamily(name, help_text, labels=[label_name])
            for label, value in sorted(totals[name].items()):
                family.add_metric([label], value)
            yield family


gauges = _Gauges()
REGISTRY.register(gauges)


# --- exposition ----------------------------------------------------------------------------------

DEFAULT_LISTEN = "127.0.0.1:9464"


class MetricsEndpoint:
    """The `/metrics` HTTP endpoint of this process's registry, on a thread."""

    def __init__(self, httpd: Any, thread: threading.Thread, note: str = ""):
        self._httpd, self._thread = httpd, thread
        self.note = note  # why the address is not the one asked for, if it is not

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve_metrics(listen: str | None) -> MetricsEndpoint | None:
    """Start the endpoint on `listen` (HOST:PORT; port 0 picks a free one). None means the
    default, 127.0.0.1:9464: when that port is taken a free port is used instead (a second
    server on the host must still start; the endpoint says which port it got). An explicit
    address that is taken raises OSError. "" or "off" switches metrics off (returns None)."""
    if listen in ("", "off"):
        return None
    host, _, port = (listen or DEFAULT_LISTEN).rpartition(":")
    try:
        return MetricsEndpoint(*start_http_server(int(port), addr=host))
    except OSError as exc:
        if listen is not None:
            raise OSError(f"cannot serve metrics on {listen}: {exc.strerror or exc}") from exc
        endpoint = MetricsEndpoint(*start_http_server(0, addr=host))
        endpoint.note = f"{DEFAULT_LISTEN} is taken"
        return endpoint
