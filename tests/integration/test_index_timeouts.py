"""The PostgreSQL index ends statements by the call's deadline and by its own timeouts,
and keeps the connection options a deployment puts in its URL (a search_path)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text

from archive import deadline
from archive.database import LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS
from archive.errors import ArchiveUnavailable
from archive.index import DocumentIndex

pytestmark = pytest.mark.integration


def test_url_options_are_kept_beside_the_timeouts(pg_url):
    schema = f"kanal_opts_{uuid.uuid4().hex[:10]}"
    index = DocumentIndex(f"{pg_url}?options=-csearch_path%3D{schema}")
    try:
        with index.engine.connect() as conn:
            assert conn.execute(text("show search_path")).scalar() == schema
            assert conn.execute(text("show statement_timeout")).scalar() == \
                f"{STATEMENT_TIMEOUT_MS // 1000}s"
            assert conn.execute(text("show lock_timeout")).scalar() == \
                f"{LOCK_TIMEOUT_MS // 1000}s"
    finally:
        index.close()


def test_a_statement_ends_by_the_calls_deadline(pg_url, pg_schema):
    index = DocumentIndex(pg_url, schema=pg_schema)
    errors: list[BaseException] = []

    def slow_query_within(seconds: float) -> None:  # in its own thread, like a call
        deadline.set_timeout(seconds)
        try:
            with index._connect() as conn:
                conn.execute(text("select pg_sleep(5)"))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)
    try:
        started = time.monotonic()
        thread = threading.Thread(target=slow_query_within, args=(1.0,))
        thread.start()
        thread.join()
        assert time.monotonic() - started < 2.5
        assert errors and isinstance(errors[0], ArchiveUnavailable)
        with index._connect() as conn:  # the connection is fine for the next call
            assert conn.execute(text("select 1")).scalar() == 1
    finally:
        index.close()
