"""One server interceptor around every RPC of the asyncio gRPC server: request bytes checked,
request id, request-scoped log fields, authentication, admission into a lane, limits on
streams, the caller's deadline handed to the backends, and domain errors -> gRPC statuses.

The servicers stay plain synchronous code: this is where each call is adapted to asyncio.
A call is admitted into its lane (server/api/admission.py) or refused RESOURCE_EXHAUSTED;
its servicer then runs in that lane's threads, with the call's context variables (log
fields, caller, admission ticket, deadline). Streams are read and written on the event
loop: a client that sends nothing, or reads nothing, for `stream_idle_seconds` holds no
thread and is cut off; so is a stream open longer than its total limit.

Servicers never call `context.abort`; they raise `KanalError`s and this is the one place
that turns them into statuses. A backend failure that escaped translation is UNAVAILABLE;
anything else is a bug: it is logged with its traceback and the caller gets INTERNAL with
the request id to quote, never the exception text.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import grpc
from sqlalchemy import exc as sa_exc

from archive import deadline
from archive.errors import ArchiveDeadline, ArchiveUnavailable
from server import auth, logs
from server.api import admission
from server.api.admission import Lanes, Limits
from server.api.errors import to_status
from server.api.wire import BadMessage, check_request, in_stream, safe_deserializer
from server.errors import DeadlineExceeded, InvalidInput, KanalError, Overloaded, Unavailable

log = logs.get_logger("kanal.rpc")

REQUEST_ID_HEADER = "x-request-id"
_END = object()
# Exceptions that mean a backend is down although no layer translated them: retryable.
_BACKEND_FAILURES = (ArchiveUnavailable, sa_exc.OperationalError, sa_exc.InterfaceError,
                     sa_exc.TimeoutError, ConnectionError, TimeoutError, BrokenProcessPool)


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and value and len(value) <= 64 and str(value).isprintable():
            return str(value)
    return uuid.uuid4().hex[:16]


def logs_request_id() -> str:
    return str(logs.structlog.contextvars.get_contextvars().get("request_id", "?"))


def failure_status(exc: BaseException) -> grpc.Status:
    """The status a failed call answers with (logged here, once)."""
    if isinstance(exc, KanalError):
        status = to_status(exc)
        log.info("rpc refused", code=status.code.name, error=type(exc).__name__)
        return status
    if isinstance(exc, ArchiveDeadline):  # the caller's deadline, not a backend outage
        return failure_status(DeadlineExceeded(
            "the call's deadline passed before the archive answered; retry with a longer "
            "deadline"))
    if isinstance(exc, _BACKEND_FAILURES):
        log.warning("rpc failed: backend unavailable", error=repr(exc)[:300])
        return to_status(Unavailable("a backend is unavailable; retry later"))
    log.error("rpc failed", exc_info=exc)
    return to_status(KanalError(  # a bare KanalError has no status of its own: INTERNAL
        f"internal error; quote request id {logs_request_id()} to support"))


# seconds: a call its client ends this close to our deadline ended by its deadline (a client
# enforces the same deadline a network trip earlier)
DEADLINE_SLACK = 0.1


class SyncContext:
    """What a synchronous servicer sees of its call: the metadata, whether the caller is
    still there, and the time left.

    grpc.aio's `done()` says only whether a status was sent: a call whose client cancelled
    it, or whose deadline passed, never sends one (grpcio cancels the call's task instead),
    so the interceptor tells this context when that task is cancelled (`end`)."""

    def __init__(self, context: grpc.aio.ServicerContext):
        self._context = context
        self._metadata = tuple(context.invocation_metadata() or ())
        self._ended = threading.Event()

    def invocation_metadata(self) -> tuple[Any, ...]:
        return self._metadata

    def end(self) -> None:
        """The call is over for its client (cancelled, past its deadline)."""
        self._ended.set()

    def done(self) -> bool:
        return self._ended.is_set() or self._context.done()

    def is_active(self) -> bool:
        return not self.done()

    def time_remaining(self) -> float | None:
        return self._context.time_remaining()


class _RequestStream:
    """The client's messages as a synchronous servicer reads them (in a lane thread): each
    one awaited on the event loop for at most `idle` seconds, the whole stream for at most
    `total`; each checked like a unary request."""

    def __init__(self, messages: AsyncIterator[Any], loop: asyncio.AbstractEventLoop,
                 idle: float, total: float, context: SyncContext | None = None):
        self._messages = messages
        self._context = context
        self._loop = loop
        self._idle = idle
        self._total = total
        self._ends = time.monotonic() + total
        self._pending: Any = None
        self._closed = False
        self._read = 0  # messages read so far

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._closed:
            raise StopIteration
        self._pending = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
        try:
            message = self._pending.result()
        except FutureCancelled:  # the call ended (cancelled by its client)
            raise Unavailable("the call was cancelled") from None
        if message is _END:
            raise StopIteration
        return message

    async def _next(self) -> Any:
        left = self._ends - time.monotonic()
        if left <= 0:
            raise Overloaded(f"the stream was open longer than its limit of {self._total:.0f} "
                             "s; send the rest in another call")
        try:
            message = await asyncio.wait_for(anext(self._messages), min(self._idle, left))
        except StopAsyncIteration:
            # A stream also ends when its client goes away (cancelled, past its deadline):
            # only a half-close is the end of the client's messages. The cancellation may
            # arrive just after the end of reading, so let the loop take it in first.
            await asyncio.sleep(0)
            if self._context is not None and self._context.done():
                raise Unavailable("the call was cancelled before its last message") from None
            return _END
        except TimeoutError:
            raise Overloaded(f"no message for {min(self._idle, left):.0f} s: the stream's idle "
                             "limit") from None
        index, self._read = self._read, self._read + 1
        if isinstance(message, BadMessage):
            raise in_stream(message.error, message.message_type, index)
        try:
            check_request(message)
        except InvalidInput as exc:  # named as the servicer names the message: records[n]
            raise in_stream(exc, message.DESCRIPTOR.full_name, index) from None
        return message

    def close(self) -> None:
        self._closed = True
        if self._pending is not None:
            self._pending.cancel()


# Called once per Kanal RPC when it ends: (full method, status code, seconds). The place for
# request metrics (a grpc.aio server refuses synchronous grpc.ServerInterceptors).
Observer = Callable[[str, grpc.StatusCode, float], None]


class KanalInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: auth.Authenticator, lanes: Lanes, limits: Limits,
                 observers: Sequence[Observer] = ()):
        self.authenticator = authenticator
        self.lanes = lanes
        self.limits = limits
        self.observers = tuple(observers)

    def _observe(self, method: str, code: grpc.StatusCode, started: float) -> None:
        seconds = time.perf_counter() - started
        for observer in self.observers:
            try:
                observer(method, code, seconds)
            except Exception:  # noqa: BLE001 - a metrics bug must not fail the call
                log.exception("rpc observer failed")

    def _observe_gone(self, method: str, context: grpc.aio.ServicerContext,
                      started: float) -> None:
        """A call whose client went away sends no status, so grpcio counts it nowhere:
        DEADLINE_EXCEEDED when its deadline had passed, else CANCELLED (the client's own
        cancel, a dropped connection), so operators see the calls their clients gave up.
        The server's deadline is the client's plus the time the call took to arrive, so a
        client giving up at its deadline is seen a few milliseconds before ours passes:
        within DEADLINE_SLACK of it counts as the deadline."""
        left = context.time_remaining()
        code = (grpc.StatusCode.DEADLINE_EXCEEDED if left is not None and left <= DEADLINE_SLACK
                else grpc.StatusCode.CANCELLED)
        log.info("rpc gone", status=code.name,
                 ms=round((time.perf_counter() - started) * 1000, 1))
        self._observe(method, code, started)

    async def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        handler = handler._replace(
            request_deserializer=safe_deserializer(method, handler.request_deserializer))
        if method.startswith("/grpc."):  # health checks and reflection: on the loop
            return _checked_native(handler)
        if handler.unary_unary:
            return handler._replace(unary_unary=self._unary(method, handler.unary_unary))
        if handler.stream_unary:
            return handler._replace(
                stream_unary=self._unary(method, handler.stream_unary, streaming=True))
        if handler.unary_stream:
            return handler._replace(unary_stream=self._server_stream(method,
                                                                     handler.unary_stream))
        raise ValueError(f"{method}: bidirectional streams are not adapted")

    # --- one call ------------------------------------------------------------------------

    async def _begin(self, context: grpc.aio.ServicerContext, method: str
                     ) -> admission.Ticket:
        """Log fields and request id, who is calling and may they, a place in the lane,
        and the call's deadline for the backends."""
        logs.clear()
        auth.set_caller(None)
        admission.set_ticket(None)
        request_id = _request_id(context)
        logs.bind(request_id=request_id, rpc=method.rsplit("/", 1)[-1])
        await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id),))
        caller = self.authenticator.authenticate(context.invocation_metadata() or ())
        logs.bind(key_id=caller.key_id, tenant=caller.tenant)
        auth.authorize(method, caller)
        auth.set_caller(caller)
        ticket = self.lanes.for_method(method).admit(caller.key_id)
        admission.set_ticket(ticket)
        deadline.set_timeout(context.time_remaining())
        return ticket

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext, status: grpc.Status) -> None:
        await context.abort(status.code, status.details, status.trailing_metadata)

    def _unary(self, method: str, behavior: Callable[..., Any], streaming: bool = False
               ) -> Callable[..., Any]:
        limits = self.limits

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            ticket, requests, started = None, None, time.perf_counter()
            sync_context = SyncContext(context)
            try:
                ticket = await self._begin(context, method)
                if streaming:
                    requests = _RequestStream(request, asyncio.get_running_loop(),
                                              limits.stream_idle_seconds,
                                              limits.submit_max_seconds, sync_context)
                    request = requests
                else:
                    if isinstance(request, BadMessage):
                        raise request.error
                    check_request(request)
                response = await ticket.lane.run(contextvars.copy_context(), behavior,
                                                 request, sync_context)
                log.info("rpc done", ms=round((time.perf_counter() - started) * 1000, 1))
                self._observe(method, grpc.StatusCode.OK, started)
                return response
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                status = failure_status(exc)
            except asyncio.CancelledError:  # the client went away: the servicer must know
                self._observe_gone(method, context, started)
                sync_context.end()
                raise
            finally:
                if requests is not None:
                    requests.close()
                if ticket is not None:
                    ticket.release(time.perf_counter() - started)
            self._observe(method, status.code, started)
            await self._abort(context, status)
        return call

    def _server_stream(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        limits = self.limits

        async def call(request: Any, context: grpc.aio.ServicerContext) -> None:
            ticket, items, started = None, None, time.perf_counter()
            ends = time.monotonic() + limits.stream_max_seconds
            sync_context = SyncContext(context)
            try:
                ticket = await self._begin(context, method)
                if isinstance(request, BadMessage):
                    raise request.error
                check_request(request)
                run = ticket.lane.run
                thread_context = contextvars.copy_context()
                items = await run(thread_context, lambda: iter(behavior(request, sync_context)))
                while (item := await run(thread_context, next, items, _END)) is not _END:
                    if time.monotonic() > ends:
                        raise Overloaded(f"the stream was open longer than its limit of "
                                         f"{limits.stream_max_seconds:.0f} s; call again")
                    try:
                        await asyncio.wait_for(context.write(item), limits.stream_idle_seconds)
                    except TimeoutError:
                        raise Overloaded(f"the client read nothing for "
                                         f"{limits.stream_idle_seconds:.0f} s") from None
                log.info("rpc done", ms=round((time.perf_counter() - started) * 1000, 1))
                self._observe(method, grpc.StatusCode.OK, started)
                return
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                status = failure_status(exc)
            except asyncio.CancelledError:  # a generator polling is_active() ends by itself
                self._observe_gone(method, context, started)
                sync_context.end()
                raise
            finally:
                if ticket is not None:
                    ticket.release()
                    if hasattr(items, "close"):  # a generator's cleanup, off the loop
                        ticket.lane.executor.submit(_close_quietly, items)
            self._observe(method, status.code, started)
            await self._abort(context, status)
        return call


def _close_quietly(items: Any) -> None:
    with contextlib.suppress(ValueError):  # still running in another thread (a cancelled
        items.close()  # call): it ends on its own


def _checked_native(handler: Any) -> Any:
    """Health and reflection servicers are asyncio already: only refuse undecodable
    requests (INVALID_ARGUMENT, not grpcio's INTERNAL)."""

    async def refuse(context: grpc.aio.ServicerContext, bad: BadMessage) -> None:
        status = to_status(bad.error)
        await context.abort(status.code, status.details, status.trailing_metadata)

    async def unimplemented(context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not implemented by this server")

    def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behavior):
            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(request, BadMessage):
                    await refuse(context, request)
                async for item in behavior(request, context):
                    yield item
            return stream

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, BadMessage):
                await refuse(context, request)
            try:
                return await behavior(request, context)
            except NotImplementedError:  # a method the library declares, not implements
                await unimplemented(context)
        return call

    def streaming(behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def checked(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, BadMessage):
                    await refuse(context, request)
                yield request

        if inspect.isasyncgenfunction(behavior):
            async def stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
                async for item in behavior(checked(requests, context), context):
                    yield item
            return stream

        async def call(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            return await behavior(checked(requests, context), context)
        return call

    if handler.unary_unary:
        return handler._replace(unary_unary=unary(handler.unary_unary))
    if handler.unary_stream:
        return handler._replace(unary_stream=unary(handler.unary_stream))
    if handler.stream_unary:
        return handler._replace(stream_unary=streaming(handler.stream_unary))
    return handler._replace(stream_stream=streaming(handler.stream_stream))
