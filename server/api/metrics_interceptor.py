"""Every RPC -> `grpc_server_handled_total` and `grpc_server_handling_seconds` (server.metrics),
labelled with the method and the status it ended with.

It sits outside `KanalInterceptor`, so it also counts the calls that interceptor refuses
(UNAUTHENTICATED, PERMISSION_DENIED) and the health checks and reflection it lets through.
The status is what the inner layers set on the context (`abort` sets it, then raises);
a call that raised without one counts as UNKNOWN, one the client left as CANCELLED.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from server import metrics


def _code(context: grpc.ServicerContext, default: grpc.StatusCode) -> str:
    if not context.is_active() and default != grpc.StatusCode.OK:
        return grpc.StatusCode.CANCELLED.name  # the client left (or its deadline passed)
    code = context.code()
    return (code if isinstance(code, grpc.StatusCode) else default).name


class MetricsInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None  # unknown method: grpc answers UNIMPLEMENTED itself
        service, _, method = details.method.lstrip("/").rpartition("/")

        def observe(kind: str, context: grpc.ServicerContext, started: float,
                    default: grpc.StatusCode) -> None:
            labels = (kind, service, method, _code(context, default))
            metrics.rpc_handled.labels(*labels).inc()
            metrics.rpc_seconds.labels(*labels).observe(time.perf_counter() - started)

        def unary_response(kind: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
                started = time.perf_counter()
                try:
                    response = behavior(request, context)
                except BaseException:
                    observe(kind, context, started, grpc.StatusCode.UNKNOWN)
                    raise
                observe(kind, context, started, grpc.StatusCode.OK)
                return response
            return wrapped

        def stream_response(kind: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                started = time.perf_counter()
                try:
                    yield from behavior(request, context)
                except GeneratorExit:
                    observe(kind, context, started, grpc.StatusCode.CANCELLED)
                    raise
                except BaseException:
                    observe(kind, context, started, grpc.StatusCode.UNKNOWN)
                    raise
                observe(kind, context, started, grpc.StatusCode.OK)
            return wrapped

        if handler.unary_unary:
            return handler._replace(unary_unary=unary_response("unary", handler.unary_unary))
        if handler.stream_unary:
            return handler._replace(
                stream_unary=unary_response("client_stream", handler.stream_unary))
        if handler.unary_stream:
            return handler._replace(
                unary_stream=stream_response("server_stream", handler.unary_stream))
        return handler._replace(stream_stream=stream_response("bidi_stream",
                                                              handler.stream_stream))
