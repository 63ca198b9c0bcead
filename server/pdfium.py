"""One lock for pdfium in this process.

Kanal reads rendered PDFs back with pdfium (pypdfium2): the print preflight, the mark-zone
check, the mailbox limits. pdfium is not thread-safe (pypdfium2's documentation: use it from
one thread at a time per process), and a server rendering in threads crashed in libpdfium
(SIGTRAP) when two calls overlapped. Every use in the server runs under `serialised`; render
processes are single-threaded, so there it costs nothing.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

LOCK = threading.RLock()


def serialised(function: Callable[P, R]) -> Callable[P, R]:
    """`function` (which opens, reads and closes pdfium documents) under LOCK."""
    @functools.wraps(function)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with LOCK:
            return function(*args, **kwargs)
    return locked
