"""One server interceptor around every RPC: request id, request-scoped log fields, timing,
and the translation of domain errors into gRPC statuses.

Servicers never call `context.abort`; they raise `KanalError`s and this is the one place
that turns them into statuses. Anything else is a bug: it is logged with its traceback
and the caller gets INTERNAL with the request id to quote, never the exception text.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from server import auth, logs
from server.api.errors import to_status
from server.errors import KanalError

log = logs.get_logger("kanal.rpc")

REQUEST_ID_HEADER = "x-request-id"


def _request_id(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and value and len(value) <= 64:
            return str(value)
    return uuid.uuid4().hex[:16]


def _fail(context: grpc.ServicerContext, exc: BaseException) -> None:
    if isinstance(exc, KanalError):
        status = to_status(exc)
        log.info("rpc refused", code=status.code.name, error=type(exc).__name__)
        context.abort_with_status(status)
    if context.code() is not None:  # already aborted by grpc-level code
        raise exc
    if not context.is_active():  # the client cancelled (or gave up): nobody to answer
        log.info("rpc cancelled by the client", error=type(exc).__name__)
        raise exc
    log.exception("rpc failed")
    context.abort(grpc.StatusCode.INTERNAL,
                  f"internal error; quote request id {logs_request_id()} to support")


def logs_request_id() -> str:
    return str(logs.structlog.contextvars.get_contextvars().get("request_id", "?"))


class KanalInterceptor(grpc.ServerInterceptor):
    def __init__(self, authenticator: auth.Authenticator):
        self.authenticator = authenticator

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or details.method.startswith("/grpc."):
            return handler  # health checks and reflection pass through untouched
        full_method = details.method
        method = full_method.rsplit("/", 1)[-1]
        authenticator = self.authenticator

        def begin(context: grpc.ServicerContext) -> float:
            """Request id and log fields, then who is calling and may they call this."""
            logs.clear()
            auth.set_caller(None)
            request_id = _request_id(context)
            logs.bind(request_id=request_id, rpc=method)
            context.send_initial_metadata(((REQUEST_ID_HEADER, request_id),))
            caller = authenticator.authenticate(context.invocation_metadata() or ())
            logs.bind(key_id=caller.key_id, tenant=caller.tenant)
            auth.authorize(full_method, caller)
            auth.set_caller(caller)
            return time.perf_counter()

        def done(started: float) -> None:
            log.info("rpc done", ms=round((time.perf_counter() - started) * 1000, 1))

        def unary_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
                try:
                    started = begin(context)
                    response = behavior(request_or_iterator, context)
                except Exception as exc:
                    _fail(context, exc)
                done(started)
                return response
            return wrapped

        def stream_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request_or_iterator: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    started = begin(context)
                    yield from behavior(request_or_iterator, context)
                except Exception as exc:
                    _fail(context, exc)
                done(started)
            return wrapped

        if handler.unary_unary:
            return handler._replace(unary_unary=unary_response(handler.unary_unary))
        if handler.stream_unary:
            return handler._replace(stream_unary=unary_response(handler.stream_unary))
        if handler.unary_stream:
            return handler._replace(unary_stream=stream_response(handler.unary_stream))
        return handler._replace(stream_stream=stream_response(handler.stream_stream))
