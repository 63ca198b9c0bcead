"""The archive store as the server uses it: every object write timed and its failures counted
(`kanal_archive_put_seconds`, `kanal_archive_put_errors_total`). A subclass here, because
`archive/` knows nothing of the server or its metrics."""

from __future__ import annotations

import time
from typing import Any

from archive.store import ArchiveStore, StoredObject
from server import metrics


class MeasuredArchiveStore(ArchiveStore):
    def put(self, key: str, content: bytes, **kwargs: Any) -> StoredObject:
        started = time.perf_counter()
        try:
            stored = super().put(key, content, **kwargs)
        except Exception as exc:
            metrics.archive_put(time.perf_counter() - started, exc)
            raise
        metrics.archive_put(time.perf_counter() - started)
        return stored
