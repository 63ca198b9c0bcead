"""Worker processes that never outlive the server that started them.

A server killed with SIGKILL cannot stop its process pools; their workers would wait on
their queues forever, holding memory and database connections. Each worker runs this
watch from its initializer: when its parent is gone (the kernel re-parents the orphan),
it exits. Polling `getppid` once a second costs nothing measurable.
"""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(0)  # the server is gone; nobody will read what this worker makes

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
