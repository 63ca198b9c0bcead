"""server.metrics: the endpoint's address rules, and observations made in a worker process
arriving in the server's registry."""

from __future__ import annotations

import multiprocessing
import socket
import urllib.request
from concurrent.futures import ProcessPoolExecutor

import pytest
from prometheus_client import REGISTRY

from server import metrics


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(endpoint: metrics.MetricsEndpoint) -> str:
    with urllib.request.urlopen(endpoint.url, timeout=10) as response:
        return response.read().decode()


def test_a_taken_default_port_falls_back_to_a_free_one(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        monkeypatch.setattr(metrics, "DEFAULT_LISTEN", address)
        endpoint = metrics.serve_metrics(None)
        assert endpoint is not None
        try:
            assert endpoint.address != address and f"{address} is taken" in endpoint.note
            assert "kanal_build_info{" in scrape(endpoint)
        finally:
            endpoint.stop()
        with pytest.raises(OSError, match=f"cannot serve metrics on {address}"):
            metrics.serve_metrics(address)  # asked for explicitly: say so, do not move
    assert metrics.serve_metrics("off") is None


def _render_in_a_worker() -> tuple[metrics.Observation, ...]:
    """What a pool worker does: buffer, observe, hand the observations back."""
    metrics.buffer_observations()

    metrics.render_time("typst", 0.02)

    class Output:
        channel, facts = "print", {"pages": 3}

    metrics.documents_rendered("test-layout", [Output()])
    metrics.archive_put(0.01)
    return metrics.drain()


def test_a_workers_observations_are_replayed_in_the_server():
    before = (value("kanal_render_seconds_count", engine="typst"),
              value("kanal_documents_rendered_total", layout="test-layout", channel="print"),
              value("kanal_pages_rendered_total", layout="test-layout", channel="print"),
              value("kanal_archive_put_seconds_count"))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        observed = pool.submit(_render_in_a_worker).result()
    # nothing reached this process's registry by itself
    assert value("kanal_render_seconds_count", engine="typst") == before[0]
    metrics.replay(observed)
    assert (value("kanal_render_seconds_count", engine="typst"),
            value("kanal_documents_rendered_total", layout="test-layout", channel="print"),
            value("kanal_pages_rendered_total", layout="test-layout", channel="print"),
            value("kanal_archive_put_seconds_count")) == (
        before[0] + 1, before[1] + 1, before[2] + 3, before[3] + 1)


def test_engine_names():
    from server.channels.weasyprint_engine import WeasyPrintEngine

    class TypstEngine:
        pass

    assert metrics.engine_name(WeasyPrintEngine.__new__(WeasyPrintEngine)) == "weasyprint"
    assert metrics.engine_name(TypstEngine()) == "typst"


def test_gauge_sources_add_up_and_a_failing_one_is_skipped():
    described = {"kanal_test_things": ("Things", "state")}
    first = metrics.gauges.add(lambda: {"kanal_test_things": {"a": 1.0}}, described)
    second = metrics.gauges.add(lambda: {"kanal_test_things": {"a": 2.0, "b": 1.0}}, described)
    broken = metrics.gauges.add(lambda: 1 / 0, described)  # type: ignore[arg-type, return-value]
    try:
        assert value("kanal_test_things", state="a") == 3.0
        assert value("kanal_test_things", state="b") == 1.0
    finally:
        for handle in (first, second, broken):
            metrics.gauges.remove(handle)
    assert value("kanal_test_things", state="a") == 0.0
