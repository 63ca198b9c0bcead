"""Structured logs (structlog): JSON in production, readable in a terminal.

Request-scoped fields (request id, tenant, layout, document id, job id) travel on every log
line of their scope through contextvars. A call's fields are bound with `bind(...)` in the
context that the call alone runs in (server/api/interceptor.py: `clear()`, then `bind`, and
the servicer runs in a copy of that context). Anything that runs in a long-lived thread or
process binds with `bound(...)`, a context manager that puts back on exit what was bound
before: a bulk chunk's job id and chunk, a document's id and layout. A worker's "chunk
done" then names no document, and the next chunk's lines (or "kanal stopped") no
earlier chunk's or document's ids.

Personal data (names, addresses, national ids, contact data) is never logged: log ids.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

bind = structlog.contextvars.bind_contextvars
bound = structlog.contextvars.bound_contextvars
clear = structlog.contextvars.clear_contextvars
get_logger = structlog.get_logger

# configure() leaves the format here, so worker processes (spawned: they inherit the
# environment, nothing else) log exactly like the server that started them.
FORMAT_ENV = "_KANAL_PARENT_LOG_FORMAT"


def configure_worker() -> None:
    """In a worker process's initializer: the log format of the parent process."""
    configure(os.environ.get(FORMAT_ENV, "console"))


def configure(log_format: str = "console", level: int = logging.INFO) -> None:
    os.environ[FORMAT_ENV] = log_format
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # WeasyPrint warns through stdlib logging about CSS it ignores; keep those visible
    # but quiet the per-resource chatter of boto and fontTools.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for noisy in ("fontTools", "botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
