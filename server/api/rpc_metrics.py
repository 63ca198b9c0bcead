"""Every Kanal RPC -> `grpc_server_handled_total` and `grpc_server_handling_seconds`
(server.metrics), labelled with its type, service, method and the status it ended with.

`KanalInterceptor` calls `observe_rpc` once when a call ends (a grpc.aio server takes no
synchronous interceptors), so the calls it refuses (UNAUTHENTICATED, PERMISSION_DENIED,
RESOURCE_EXHAUSTED) count too. Health checks and reflection run natively on the event loop
and are not counted.
"""

from __future__ import annotations

from functools import lru_cache

import grpc
from google.protobuf import descriptor_pool

from server import metrics


@lru_cache(maxsize=256)
def rpc_type(method: str) -> str:
    """'/kanal.v1.Jobs/SubmitBatch' -> 'client_stream' (go-grpc-prometheus' grpc_type)."""
    service, _, name = method.lstrip("/").rpartition("/")
    try:
        found = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    except KeyError:
        return "unary"
    return {(False, False): "unary", (True, False): "client_stream",
            (False, True): "server_stream", (True, True): "bidi_stream"}[
        (found.client_streaming, found.server_streaming)]


def observe_rpc(method: str, code: grpc.StatusCode, seconds: float) -> None:
    """One finished RPC: `method` is the full path, `seconds` its time in the server."""
    service, _, name = method.lstrip("/").rpartition("/")
    labels = (rpc_type(method), service, name, code.name)
    metrics.rpc_handled.labels(*labels).inc()
    metrics.rpc_seconds.labels(*labels).observe(seconds)
