"""The print batch closer: the server's background loop that closes due print batches.

A group of queued pieces (server.printing.batches) is due when it holds `batch_size`
pieces or its oldest piece has waited `cutoff_minutes`. Every `close_poll_seconds`
(``[printing]``, default 5 s) one round calls `BatchService.close_due` with the server's
clock: it first builds the batches left ``closing`` (a server that died between claiming
the pieces and storing the files), then closes what is due. A round that finds nothing due
is one aggregate query over the waiting pieces.

So closing never happens inside a call: `ListPrintBatches` only reads, and `kanal print
close` (`close_now`) stays the operator's explicit way to close everything now. Every
server runs a closer; on one PostgreSQL database they share the work safely (a piece is
claimed by one closer only, a batch built by one builder at a time: batches.py). A round
that fails (S3 or the database away for a moment) is logged and tried again next round;
stopping the server ends a round between two batches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from server.polling import Poller
from server.printing.batches import BatchService


class BatchCloser:
    """Runs `batches.close_due(clock())` in the thread ``print-batch-closer`` every
    `poll_seconds` (seconds), and at once when notified."""

    def __init__(self, batches: BatchService, clock: Callable[[], datetime],
                 poll_seconds: float):
        self.batches = batches
        self.clock = clock
        self._poller = Poller("print-batch-closer", self.tick, poll_seconds,
                              "closing print batches failed; trying again")

    def tick(self) -> list[str]:
        """One round -> the ids of the batches it built."""
        return self.batches.close_due(self.clock(), stopping=lambda: self._poller.stopping)

    def start(self) -> None:
        self._poller.start()

    def notify(self) -> None:
        """Look now (pieces were queued, or an operator wants the cut-off checked)."""
        self._poller.notify()

    def stop(self, timeout: float = 30) -> None:
        """Wake the thread and wait for the batch in progress (at most `timeout` seconds)."""
        self._poller.stop(timeout)
