"""The time budget of the current call, for every backend call made on its behalf.

A caller's gRPC deadline means nothing to S3 or the database unless somebody carries it
there. The API layer sets it here when a call starts (a context variable, so it follows the
call into the thread that serves it); the archive store, the index and the render pool
consult `remaining()` and give up in time to answer UNAVAILABLE while the caller still
listens, instead of answering nobody after a long backend outage. Code running outside a
call (bulk workers, admin commands) has no deadline and uses each backend's own timeouts.

This module knows nothing of gRPC: a deadline is a `time.monotonic()` instant.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

MARGIN_SECONDS = 0.25  # kept back to send the answer before the caller's deadline

_deadline: ContextVar[float | None] = ContextVar("kanal_deadline", default=None)


def set_timeout(seconds: float | None) -> None:
    """The current call must be answered within `seconds` (None: no deadline)."""
    _deadline.set(None if seconds is None else time.monotonic() + seconds)


def remaining(default: float | None = None) -> float | None:
    """Seconds a backend call may still take: the call's time left (minus a margin to
    answer), at most `default`; `default` alone when the call has no deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    left = max(0.0, deadline - time.monotonic() - MARGIN_SECONDS)
    return left if default is None else min(left, default)
