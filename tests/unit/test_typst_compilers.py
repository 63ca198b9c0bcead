"""Renders of one layout in several threads run at once, each with a compiler of its own
(server.channels.typst_engine._Compilers), and give the same bytes as one render alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import typst

import server.channels.typst_engine as typst_engine
from server.channels.typst_engine import TypstEngine
from server.compose.composer import ComposeRequest, compose
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def composition(document_id: str = "01TYPSTPOOL"):
    layout = LAYOUTS.get("card-invoice")
    return compose(ComposeRequest(tenant="t", layout=layout, data=layout.sample_data(),
                                  document_id=document_id, now=NOW, channels=())), layout


class _MeetingCompiler:
    """A typst.Compiler whose compile first waits until `barrier.parties` compiles are
    inside one at the same time (BrokenBarrierError when they never are)."""

    def __init__(self, barrier: threading.Barrier, **kwargs):
        self._inner = typst.Compiler(**kwargs)
        self._barrier = barrier

    def compile_with_warnings(self, **kwargs):
        self._barrier.wait()
        return self._inner.compile_with_warnings(**kwargs)


@pytest.fixture
def meeting(monkeypatch):
    """`meeting(seconds)`: from now on every compiler the engine makes meets its peers at
    a barrier of two, waiting `seconds` at most."""

    def meet(seconds: float) -> threading.Barrier:
        barrier = threading.Barrier(2, timeout=seconds)

        class Shim:
            Fonts = typst.Fonts
            TypstError = typst.TypstError

            @staticmethod
            def Compiler(**kwargs):  # noqa: N802 - stands in for the class
                return _MeetingCompiler(barrier, **kwargs)

        monkeypatch.setattr(typst_engine, "typst", Shim)
        return barrier

    return meet


def test_two_renders_of_one_layout_compile_at_the_same_time(meeting):
    meeting(10)
    engine = TypstEngine(compilers_per_layout=2)
    doc, layout = composition()
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: engine.render(layout, doc), range(2))
    assert first.content == second.content
    assert engine._compilers_of(layout).made == 2


def test_concurrent_renders_give_the_bytes_of_a_render_alone():
    alone = TypstEngine(compilers_per_layout=1)
    engine = TypstEngine(compilers_per_layout=2)
    docs = [composition(f"01TYPSTPOOL{n}") for n in range(4)]
    expected = [alone.render(layout, doc).content for doc, layout in docs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda d: engine.render(d[1], d[0]).content, docs * 2))
    assert got == expected * 2
    assert engine._compilers_of(docs[0][1]).made <= 2  # never more than the limit


def test_one_compiler_per_layout_when_renders_come_one_at_a_time():
    engine = TypstEngine()
    doc, layout = composition()
    for _ in range(3):
        engine.render(layout, doc)
    assert engine._compilers_of(layout).made == 1


def test_the_limit_makes_a_render_wait_for_a_busy_compiler(meeting):
    """One compiler: the second render waits for it, so the two never meet."""
    meeting(0.5)  # the first render waits this long alone, then gives up
    engine = TypstEngine(compilers_per_layout=1)
    doc, layout = composition()
    with ThreadPoolExecutor(2) as pool, pytest.raises(threading.BrokenBarrierError):
        list(pool.map(lambda _: engine.render(layout, doc), range(2)))
    assert engine._compilers_of(layout).made == 1
