"""The real-time render pool gives the same bytes as rendering in-process, and errors
raised in a worker arrive with their field violations."""

import json
import os
import pickle
import signal
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from archive import deadline
from server.api.errors import status_code
from server.channels import Renderers
from server.channels.pool import RenderPool
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.compose.model import Channel
from server.errors import DeadlineExceeded, FieldViolation, InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def composition(layout_id, channels=(Channel.PRINT,), **customer):
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    data["customer"].update(customer)
    data["customer"] = {k: v for k, v in data["customer"].items() if v is not None}
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="01POOL", now=NOW, channels=channels)), layout


@contextmanager
def fresh_pool():
    """A started one-process pool of its own (a test that kills or freezes its process)
    -> (pool, card invoice composition, layout, the sha256s of its outputs rendered once)."""
    pool = RenderPool(DEFAULT_LAYOUTS_DIR, workers=1)
    try:
        pool.start()
        comp, layout = composition("card-invoice", (Channel.PRINT, Channel.SMS))
        yield pool, comp, layout, [o.sha256 for o in pool.render(comp, layout)]
    finally:
        pool.close()


@pytest.fixture(scope="module")
def pool():
    pool = RenderPool(DEFAULT_LAYOUTS_DIR, workers=1)
    pool.start()
    yield pool
    pool.close()


def test_compositions_and_field_errors_survive_pickling():
    comp, _ = composition("card-invoice")
    assert pickle.loads(pickle.dumps(comp)) == comp
    error = InvalidInput("bad data", [FieldViolation("$.customer.email", "missing")])
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is InvalidInput and again.violations == error.violations
    assert str(again) == str(error)


def test_pool_renders_the_same_bytes_as_in_process(pool):
    comp, layout = composition("card-invoice", (Channel.PRINT, Channel.SMS))
    local = Renderers().render(comp, layout)
    pooled = pool.render(comp, layout)
    assert [(o.channel, o.sha256) for o in pooled] == [(o.channel, o.sha256) for o in local]
    assert pooled[0].content.startswith(b"%PDF-") and pooled[0].facts["pages"] >= 2


def test_a_renderers_field_error_crosses_the_process_boundary(pool):
    comp, layout = composition("card-invoice", (Channel.EMAIL,), email="kari@example.no")
    # the plan allowed email; the address is gone by the time the renderer runs
    comp = replace(comp, recipient=replace(comp.recipient, email=None))
    with pytest.raises(InvalidInput) as info:
        pool.render(comp, layout)
    assert [v.field for v in info.value.violations] == ["$.customer.email"]


def test_the_pool_is_replaced_warm_to_bound_native_memory():
    import time

    from server.channels.pool import _ready

    pool = RenderPool(DEFAULT_LAYOUTS_DIR, workers=1, documents_per_worker=2)
    try:
        comp, layout = composition("welcome-letter")
        first_pool = pool._pool
        first = first_pool.submit(_ready).result()
        for _ in range(2):  # the second render starts the replacement in the background
            assert pool.render(comp, layout)[0].facts["pages"] == 1
        deadline = time.monotonic() + 60
        while pool._pool is first_pool and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the fresh pool to be warm, not for time to pass
        assert pool._pool is not first_pool
        assert pool._pool.submit(_ready).result() != first
        for _ in range(3):  # and the fresh pool renders (and is replaced in turn)
            assert pool.render(comp, layout)[0].facts["pages"] == 1
    finally:
        pool.close()


def test_a_deadline_too_short_for_the_render_is_deadline_exceeded(pool):
    """A caller whose deadline passes while its document renders (or waits for a render
    process) gets DEADLINE_EXCEEDED, not UNAVAILABLE, which tells clients to retry the
    same call and made one with a fixed short deadline loop."""
    comp, layout = composition("card-invoice", (Channel.PRINT, Channel.SMS))
    deadline.set_timeout(0.001)
    try:
        with pytest.raises(DeadlineExceeded) as info:
            pool.render(comp, layout)
    finally:
        deadline.set_timeout(None)
    assert status_code(info.value).name == "DEADLINE_EXCEEDED"


def test_a_render_process_freezes_its_heap_when_started_and_once_warm():
    """What a render process holds once warm lives as long as it does: frozen
    (server.processes.settle_heap) when it starts, and what the first render made
    long-lived as the second begins, so no full collection walks it in a later call."""
    import gc

    pool = RenderPool(DEFAULT_LAYOUTS_DIR, workers=1)
    try:
        pool.start()
        assert len(pool.worker_pids()) == 1
        started = pool._pool.submit(gc.get_freeze_count).result()
        comp, layout = composition("card-invoice", (Channel.PRINT, Channel.SMS))
        for _ in range(2):
            pool.render(comp, layout)
        warm = pool._pool.submit(gc.get_freeze_count).result()
        pool.render(comp, layout)
        assert pool._pool.submit(gc.get_freeze_count).result() == warm  # only once warm
    finally:
        pool.close()
    assert 0 < started < warm


def _killed(pid):
    """SIGKILL `pid` (a render process, as the OOM killer would) and wait until it is gone."""
    import os
    import signal
    import time

    os.kill(pid, signal.SIGKILL)
    deadline_at = time.monotonic() + 30
    while time.monotonic() < deadline_at:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)  # waiting for the kernel to end it, not for time to pass


def test_a_killed_render_process_costs_no_document_and_the_pool_comes_back():
    """A render process that dies breaks its whole ProcessPoolExecutor: without a fresh
    pool every later Compose failed UNAVAILABLE until the server restarted. The next
    document gets a fresh pool, and a document in flight when its process died is
    rendered once more there."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    with fresh_pool() as (pool, comp, layout, expected):
        # killed between two documents
        first = pool.worker_pids()
        _killed(first[0])
        assert [o.sha256 for o in pool.render(comp, layout)] == expected
        second = pool.worker_pids()
        assert second and second != first
        # killed with a document in flight
        _killed(second[0])
        deadline_at = time.monotonic() + 30
        while not pool._pool._broken and time.monotonic() < deadline_at:
            time.sleep(0.01)  # the executor's manager notices the death, then it is broken
        with ThreadPoolExecutor(1) as caller:
            pending = caller.submit(pool.render, comp, layout)  # a third pool starts for it
            deadline_at = time.monotonic() + 30
            while pool.worker_pids() in ([], second) and time.monotonic() < deadline_at:
                time.sleep(0.01)  # waiting for its process to exist, not for time to pass
            third = pool.worker_pids()
            _killed(third[0])  # still starting, or rendering: in flight either way
            assert [o.sha256 for o in pending.result(timeout=120)] == expected
        assert pool.worker_pids() not in ([], second, third)


@contextmanager
def _frozen(pid):
    """SIGSTOP `pid`: a render process that never answers (frozen, or looping in native
    code), which no exception reports; killed at the end, so the pool can close."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_hung_render_process_fails_a_call_without_deadline_and_is_replaced(monkeypatch):
    """A Compose without a gRPC deadline waited for ever on a render process that never
    answered (and so did every call queued behind it): now it is UNAVAILABLE after
    `hang_seconds`, the hung processes are killed and the next document renders in a
    fresh pool."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from server.errors import Unavailable

    monkeypatch.setattr("server.channels.pool.HANG_SECONDS", 3, raising=False)
    with fresh_pool() as (pool, comp, layout, expected):
        hung = pool.worker_pids()
        with ThreadPoolExecutor(1) as caller, _frozen(hung[0]):  # killed before the join
            started = time.monotonic()
            pending = caller.submit(pool.render, comp, layout)
            with pytest.raises(Unavailable) as info:
                pending.result(timeout=20)  # a guard: without the limit it never returns
        assert time.monotonic() - started < 30
        assert status_code(info.value).name == "UNAVAILABLE"
        assert "within 3 s" in str(info.value)
        pool.hang_seconds = 60  # the fresh pool starts cold: seconds on a loaded machine
        assert [o.sha256 for o in pool.render(comp, layout)] == expected
        assert pool.worker_pids() not in ([], hung)


def test_callers_with_short_deadlines_bring_a_hung_lane_back_too(monkeypatch):
    """Callers whose deadlines are shorter than `hang_seconds` get DEADLINE_EXCEEDED while
    the render process is hung; once a document has waited `hang_seconds`, the next call
    replaces the pool instead of queueing behind it for ever."""
    import time

    # the call that finds the overdue document also waits for the fresh, cold pool's first
    # render within this limit: 0.6 s on a quiet machine, over 3 s on a loaded one
    monkeypatch.setattr("server.channels.pool.HANG_SECONDS", 8, raising=False)
    with fresh_pool() as (pool, comp, layout, expected):
        hung = pool.worker_pids()
        with _frozen(hung[0]):
            deadline.set_timeout(0.5)
            try:
                with pytest.raises(DeadlineExceeded):
                    pool.render(comp, layout)
            finally:
                deadline.set_timeout(None)
            time.sleep(8.2)  # the document handed to the hung process is now overdue
            deadline.set_timeout(20)  # a guard: without the fix it waits behind that one
            try:
                assert [o.sha256 for o in pool.render(comp, layout)] == expected
            finally:
                deadline.set_timeout(None)
        assert pool.worker_pids() not in ([], hung)
