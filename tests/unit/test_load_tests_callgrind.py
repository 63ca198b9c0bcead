"""The instruction counts of load_tests/count_*.py: load_tests/callgrind.py runs a script
again under callgrind and counts its measured loop alone; count_print_checks.py's
`--step render_print` replays Typst's compiles from the bytes they made."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from load_tests import callgrind

ROOT = Path(__file__).resolve().parents[2]


def test_measured_loop_bare_and_profiled_step_every_item(capsys):
    seen: list[int] = []
    callgrind.measured_loop(range(3), seen.append, "bare")
    callgrind.measured_loop([7], seen.append, "profile")
    assert seen == [0, 1, 2, 7]
    assert "cumulative" in capsys.readouterr().out  # the profile's tables


@pytest.mark.skipif(shutil.which("valgrind") is None or shutil.which("callgrind_control")
                    is None, reason="needs valgrind's callgrind")
def test_count_instructions_counts_the_loop_alone(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from load_tests import callgrind
        assert sys.argv[-1] == "--inside"
        sum(range(200_000))  # before the loop: not counted
        callgrind.measured_loop(range(int(sys.argv[1])), lambda n: sum(range(20_000)),
                                "callgrind")
    """), encoding="utf-8")
    zero, one, ten = (callgrind.count_instructions(script, [str(n)]) for n in (0, 1, 10))
    # the switches and the settled heap are a constant, less than one sum of 20,000 numbers
    # (the sum of 200,000 before the loop, ten of them, is not counted); ten sums cost ten
    # times one
    assert 0 < zero < one - zero
    assert abs((ten - zero) - 10 * (one - zero)) < (ten - zero) / 100
    bad = tmp_path / "bad.py"
    bad.write_text("raise SystemExit(3)\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"callgrind run failed \(3\)"):
        callgrind.count_instructions(bad, [])


def test_render_print_step_replays_the_typst_compiles():
    from load_tests import count_print_checks as counting
    from server.channels.pdf import PrintEngines

    engines = PrintEngines()
    documents = counting._documents(2, engines)
    counting._replaying(engines, documents)
    pools = engines.engine("typst")._compilers.values()
    assert pools and all(isinstance(compiler, counting._Replay)
                         for pool in pools for compiler in pool._idle)
    assert all(isinstance(pool._make(), counting._Replay) for pool in pools)
    step = counting._step("render_print", engines)
    for document in documents:  # the same bytes (step asserts it), from the replay
        assert step(document).content == document[2].content


def test_bulk_worker_count_records_then_replays_the_typst_compiles():
    """count_bulk_worker.py: the compilers of a pipeline's engines record what they make,
    then replay it, so the counted chunks render the same bytes without compiling."""
    from types import SimpleNamespace

    from load_tests import count_bulk_worker as counting
    from load_tests import count_print_checks
    from server.channels.pdf import PrintEngines

    engines = PrintEngines()
    documents = count_print_checks._documents(2, engines)  # a compiler exists per layout
    pipeline = SimpleNamespace(documents=SimpleNamespace(
        renderers=SimpleNamespace(pdf_engine=engines)))
    made: dict[str, tuple[bytes, list]] = {}
    counting._swap_compilers(pipeline, lambda c: counting._Recording(c, made))
    recorded = [engines.render(layout, composition).content
                for composition, layout, _, _ in documents]
    assert recorded == [rendered.content for _, _, rendered, _ in documents]
    assert len(made) == len(documents)
    counting._swap_compilers(pipeline, lambda c: counting._Replay(made))
    pools = engines.engine("typst")._compilers.values()
    assert all(isinstance(compiler, counting._Replay) for pool in pools for compiler in pool._idle)
    assert all(isinstance(pool._make(), counting._Replay) for pool in pools)
    assert [engines.render(layout, composition).content
            for composition, layout, _, _ in documents] == recorded
