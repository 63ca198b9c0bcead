"""Health per dependency: each probed on its own, a hanging probe is an answer (down), and
each API service follows what it needs."""

from __future__ import annotations

import threading

from server.health import ARCHIVE, INDEX, QUEUE, DependencyMonitor


def test_a_hung_dependency_is_down_and_only_what_needs_it_follows():
    hang = threading.Event()
    state = {"index": True}

    def archive():
        hang.wait(10)  # a paused S3: connects, never answers

    def index():
        if not state["index"]:
            raise ConnectionError("connection refused")

    published: dict[str, bool] = {}
    monitor = DependencyMonitor({ARCHIVE: archive, INDEX: index, QUEUE: lambda: None},
                                published.__setitem__, interval=3600, timeout=0.3)
    monitor.start()
    try:
        assert all(published.values()) and {"", ARCHIVE, "kanal.v1.Layouts"} <= set(published)
        monitor.check()
        assert published[ARCHIVE] is False and published[""] is False
        assert published["kanal.v1.Documents"] is False
        assert published["kanal.v1.Layouts"] is True and published[INDEX] is True

        monitor.check()  # the first probe still hangs: no second one piles up behind it
        assert monitor._pending[ARCHIVE] is not None and published[ARCHIVE] is False

        state["index"] = False
        hang.set()
        monitor._pending[ARCHIVE].result(1)
        monitor.check()
        assert published[ARCHIVE] is True and published[INDEX] is False
        assert published["kanal.v1.Portal"] is False and published["kanal.v1.Layouts"] is True

        state["index"] = True
        monitor.check()
        assert all(published.values())
    finally:
        hang.set()
        monitor.stop()


def test_every_api_service_the_server_serves_is_reported():
    """A health check for any API service (Deliveries included) answers, never NOT_FOUND;
    a service NEEDS does not name needs every dependency."""
    from server.grpc_server import SERVICE_NAMES

    published: dict[str, bool] = {}
    down = {"on": False}

    def queue():
        if down["on"]:
            raise ConnectionError("no queue")

    monitor = DependencyMonitor({ARCHIVE: lambda: None, INDEX: lambda: None, QUEUE: queue},
                                published.__setitem__, interval=3600, timeout=1,
                                services=(*SERVICE_NAMES, "kanal.v1.Future"))
    monitor.start()
    try:
        assert set(SERVICE_NAMES) <= set(published)
        assert "kanal.v1.Deliveries" in published and "kanal.v1.PrintShop" in published
        down["on"] = True
        monitor.check()
        assert published["kanal.v1.Future"] is False  # unknown needs: all of them
        assert published["kanal.v1.Deliveries"] is True  # the outbox needs the index only
    finally:
        monitor.stop()
