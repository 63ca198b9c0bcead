"""Health per dependency: is the archive (S3) taking writes, does the index answer, is the
chunk queue there; published as gRPC health services, so a load balancer or an operator
sees which part is down, and when it is back.

Every PROBE_SECONDS each dependency is asked one cheap question (HEAD of the bucket, whether
the last archive writes were all refused by S3 (archive.write_health) and, for the embedded
SeaweedFS, whether its process is up; `SELECT 1`; the queue's own check),
in a thread of its own with a PROBE_TIMEOUT: a probe that hangs is an answer too (down),
and a hung backend never holds up the others' probes. Services (`grpc.health.v1` names):

- `kanal.archive`, `kanal.index`, `kanal.queue`: the dependencies themselves;
- each API service the server serves, and `""` (the whole server), SERVING only while
  everything it needs is (NEEDS): Compose cannot archive without S3, while
  `kanal.v1.Layouts` needs nothing. A service NEEDS does not name needs every dependency
  (the safe side), so a new API service is reported from its first day.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from grpc_health.v1 import health, health_pb2

from server import logs

log = logs.get_logger(__name__)

ARCHIVE, INDEX, QUEUE = "kanal.archive", "kanal.index", "kanal.queue"
DEPENDENCIES = (ARCHIVE, INDEX, QUEUE)
NEEDS: dict[str, tuple[str, ...]] = {
    "": DEPENDENCIES,
    "kanal.v1.Documents": (ARCHIVE, INDEX),
    "kanal.v1.Layouts": (),
    "kanal.v1.Jobs": DEPENDENCIES,
    "kanal.v1.PrintShop": (ARCHIVE, INDEX),
    "kanal.v1.Portal": (ARCHIVE, INDEX),
    "kanal.v1.ArchiveAdmin": (ARCHIVE, INDEX),
    "kanal.v1.Deliveries": (INDEX,),  # the outbox and its events are index rows
}
PROBE_SECONDS = 1.0
PROBE_TIMEOUT = 2.0

Probe = Callable[[], None]  # returns when the dependency answers, raises when it does not


class HealthServicer(health.aio.HealthServicer):
    """grpcio's asyncio health service, plus `List` (grpc.health.v1, added to the protocol
    in 2024), which grpcio declares but does not implement (a caller got UNKNOWN)."""

    async def List(self, request: health_pb2.HealthListRequest, context: object
                   ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(statuses={
            name: health_pb2.HealthCheckResponse(status=status)
            for name, status in self._server_status.items()})


class DependencyMonitor:
    """Probes `probes` (dependency name -> probe) and calls `publish(service, serving)` for
    every health service whose status changes (all of them once, at start): `""`, each of
    `services` (the API services served; default those NEEDS names) and each dependency."""

    def __init__(self, probes: Mapping[str, Probe], publish: Callable[[str, bool], None], *,
                 interval: float = PROBE_SECONDS, timeout: float = PROBE_TIMEOUT,
                 services: Iterable[str] = ()):
        self.probes = dict(probes)
        self.needs = {**NEEDS, **{s: NEEDS.get(s, DEPENDENCIES) for s in services}}
        self.publish = publish
        self.interval = interval
        self.timeout = timeout
        self.up = dict.fromkeys(self.probes, True)
        self._published: dict[str, bool] = {}
        self._threads = {name: ThreadPoolExecutor(1, thread_name_prefix=f"probe-{name}")
                         for name in self.probes}
        self._pending: dict[str, Future[None]] = {}
        self._stop = threading.Event()
        self._poked = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dependency-monitor",
                                        daemon=True)

    def start(self) -> None:
        self._publish_changes()
        self._thread.start()

    def poke(self) -> None:
        """Probe now (e.g. the embedded S3 process just exited), not at the next interval."""
        self._poked.set()

    def stop(self) -> None:
        self._stop.set()
        self._poked.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + self.timeout + 1)
        for pool in self._threads.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._poked.wait(self.interval)
            self._poked.clear()
            if not self._stop.is_set():
                self.check()

    def check(self) -> None:
        """Probe every dependency once (concurrently) and publish what changed."""
        for name in self.probes:
            if name not in self._pending or self._pending[name].done():
                self._pending[name] = self._threads[name].submit(self.probes[name])
        ends = time.monotonic() + self.timeout
        for name, future in self._pending.items():
            try:
                future.result(timeout=max(0.0, ends - time.monotonic()))
                up, why = True, ""
            except TimeoutError:
                up, why = False, f"no answer within {self.timeout:.0f} s"
            except Exception as exc:  # noqa: BLE001 - any failure means down
                up, why = False, str(exc)[:300]
            if up != self.up[name]:
                (log.info if up else log.warning)(
                    "dependency serving" if up else "dependency not serving",
                    dependency=name, error=why or None)
            self.up[name] = up
        self._publish_changes()

    def _publish_changes(self) -> None:
        for service, needs in self.needs.items():
            serving = all(self.up.get(name, True) for name in needs)
            if self._published.get(service) != serving:
                self.publish(service, serving)
                self._published[service] = serving
        for name in self.probes:
            if self._published.get(name) != self.up[name]:
                self.publish(name, self.up[name])
                self._published[name] = self.up[name]
