"""The gRPC server of a running Kanal: grpc.aio on an event loop of its own thread.

Waiting (idle streams, slow readers, health checks) costs no thread, and the synchronous
servicers run in bounded lanes of threads (server/api/admission.py), so no caller can take
the whole server. `GrpcServer` starts that loop, serves on it, publishes health on it and
shuts it down gracefully (health NOT_SERVING first, then `grace` seconds for calls in flight).

Separate from `server.app` because running an asyncio server from synchronous code (a loop
thread, coroutines handed to it and awaited with a timeout) is one concern, and which
services it serves and how they are built is the composition root's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kanal.v1 import (
    deliveries_pb2,
    documents_pb2,
    events_pb2,
    jobs_pb2,
    layouts_pb2,
    portal_pb2,
    printshop_pb2,
    surveys_pb2,
)
from server.config import ConfigError
from server.health import HealthServicer

SERVICE_NAMES = (
    documents_pb2.DESCRIPTOR.services_by_name["Documents"].full_name,
    layouts_pb2.DESCRIPTOR.services_by_name["Layouts"].full_name,
    jobs_pb2.DESCRIPTOR.services_by_name["Jobs"].full_name,
    printshop_pb2.DESCRIPTOR.services_by_name["PrintShop"].full_name,
    portal_pb2.DESCRIPTOR.services_by_name["Portal"].full_name,
    portal_pb2.DESCRIPTOR.services_by_name["ArchiveAdmin"].full_name,
    deliveries_pb2.DESCRIPTOR.services_by_name["Deliveries"].full_name,
    surveys_pb2.DESCRIPTOR.services_by_name["Surveys"].full_name,
    events_pb2.DESCRIPTOR.services_by_name["Events"].full_name,
    events_pb2.DESCRIPTOR.services_by_name["Customers"].full_name,
)
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# A last bound, far above the lanes' (server/api/admission.py): grpc-core refuses more.
MAX_CONCURRENT_RPCS = 2000


class GrpcServer:
    """grpc.aio serving on its own event-loop thread; `health` is published on it."""

    def __init__(self, health: HealthServicer) -> None:
        self.health = health
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = threading.Event()

    def start(self, listen: str,
              interceptors: Callable[[], Sequence[grpc.aio.ServerInterceptor]],
              add_servicers: Callable[[grpc.aio.Server], None], *,
              reflection_enabled: bool) -> None:
        """Start the loop thread and serve on `listen` ("host:port"). `interceptors()` and
        `add_servicers(server)` run on the loop, so what they build belongs to it; the
        health and (when enabled) reflection services are added after them. ConfigError
        when the address cannot be listened on."""
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._run_loop, name="grpc-loop", daemon=True).start()
        self._on_loop(self._serve(listen, interceptors, add_servicers, reflection_enabled))

    def _run_loop(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()
            self._stopped.set()

    def _on_loop(self, coroutine: Any, timeout: float | None = 30) -> Any:
        """Run a coroutine on the server's event loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _serve(self, listen: str,
                     interceptors: Callable[[], Sequence[grpc.aio.ServerInterceptor]],
                     add_servicers: Callable[[grpc.aio.Server], None],
                     reflection_enabled: bool) -> None:
        server = grpc.aio.server(
            interceptors=interceptors(),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),  # a taken port must fail, not be shared
            ],
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        )
        add_servicers(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if reflection_enabled:  # lists the API to anyone: off in production
            reflection.enable_server_reflection(
                (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        try:
            self.port = server.add_insecure_port(listen)
        except RuntimeError as exc:
            raise ConfigError(f"cannot listen on {listen}: {exc}") from exc
        if not self.port:
            raise ConfigError(f"cannot listen on {listen} (port taken?)")
        await server.start()
        self.server = server

    def publish_health(self, service: str, serving: bool) -> None:
        """Set `service`'s health status (SERVING or NOT_SERVING), if the loop runs."""
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._loop is not None and self._loop.is_running():
            self._on_loop(self.health.set(service, status), timeout=5)

    async def _shutdown(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        if self.server is not None:
            await self.server.stop(grace)
            self.server = None

    def stop(self, grace: float = 5.0) -> None:
        """Shut down gracefully (`grace` seconds for calls in flight) and end the loop."""
        if self._loop is not None and self._loop.is_running():
            self._on_loop(self._shutdown(grace), timeout=grace + 30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._stopped.wait(30)
        self._loop = None

    def wait(self) -> None:
        """Block until the server has stopped (at once if it never started)."""
        if self._loop is not None:
            self._stopped.wait()
