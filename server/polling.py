"""One background thread that does a round of work every `poll_seconds`, and at once when
notified: the shape of the delivery and survey webhook senders and the journeys' timers.

A round that raises is logged and tried again next time (the database or a receiver may be
briefly away); `stop()` wakes the thread and waits for the round in progress to end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from server import logs

log = logs.get_logger(__name__)


class Poller:
    """Runs `work()` in a daemon thread named `name` every `poll_seconds` (seconds)."""

    def __init__(self, name: str, work: Callable[[], object], poll_seconds: float,
                 failed: str = "background round failed; trying again"):
        self.name = name
        self.work = work
        self.poll_seconds = poll_seconds
        self.failed = failed  # the log message of a round that raised
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """True once `stop()` was called: a long round may end early."""
        return self._stop.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.work()
            except Exception as exc:  # noqa: BLE001 - logged; the next round tries again
                log.warning(self.failed, error=repr(exc)[:500])
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
