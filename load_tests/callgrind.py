"""Counting a load test's instructions with callgrind: the same count however loaded the
machine is, so a change is measured to the instruction (load_tests/count_*.py).

A counting script runs itself again under valgrind and reads the total:

    total = count_instructions(__file__, ["--count", "40"], keep)   # outer process
    ...
    measured_loop(documents, step, "callgrind")                     # the `--inside` run

`count_instructions` runs `valgrind --tool=callgrind --instr-atstart=no` on the script with
its arguments and `--inside`, PYTHONHASHSEED=0 (string hashes, so set and dict orders, the
same every run), and returns valgrind's closing "Collected :" total. Inside, nothing is
counted until `instrumentation(True)`; `measured_loop` settles the heap as a bulk worker
settles it (`server.processes.settle_heap`: `gc.collect`, `gc.freeze`), switches instrumentation on
around the loop alone and off again. The switches go through `callgrind_control` (vgdb),
whose own cost, some 0.6 M instructions for a whole run, is in the total: per-item figures
want a few dozen items or more. A script run by hand under valgrind (load_tests/
count_compose.py) uses `under_valgrind` and `instrumentation` alone.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from server.processes import settle_heap

T = TypeVar("T")


def under_valgrind() -> bool:
    """True when this process runs on valgrind (its preload library is mapped)."""
    return "vgpreload" in Path("/proc/self/maps").read_text()


def instrumentation(on: bool) -> None:
    """Switch callgrind's instrumentation of this process on or off (`callgrind_control -i`,
    via vgdb). Raises `subprocess.CalledProcessError` when this process is not on callgrind
    or vgdb cannot reach it."""
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   check=True, capture_output=True)


def measured_loop(items: Iterable[T], step: Callable[[T], object], how: str) -> None:
    """`step(item)` for every item: `how` "callgrind" (the heap settled, instrumentation on
    for the loop alone), "profile" (cProfile; prints the top 30 by own time and the top 40
    by cumulative time to stdout) or anything else (bare, e.g. to time it)."""
    if how == "callgrind":
        settle_heap()
        instrumentation(True)
        for item in items:
            step(item)
        instrumentation(False)
    elif how == "profile":
        profile = cProfile.Profile()
        profile.runcall(lambda: [step(item) for item in items])
        stats = pstats.Stats(profile).strip_dirs()
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
    else:
        for item in items:
            step(item)


def count_instructions(script: str | Path, args: Sequence[str],
                       keep: Path | None = None) -> int:
    """The instructions callgrind counted running `script` (this interpreter) with `args`
    and `--inside`, PYTHONHASHSEED=0; its output file is copied to `keep` when given (for
    callgrind_annotate). Raises SystemExit with the end of valgrind's stderr when the run
    fails or prints no total."""
    with tempfile.TemporaryDirectory(prefix="kanal-cg-") as folder:
        out = Path(folder) / "callgrind.out"
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", sys.executable, str(script), *args, "--inside"],
            capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"})  # the same count run after run
        found = re.search(r"Collected\s*:\s*([\d,]+)", run.stderr)
        if run.returncode != 0 or found is None:
            raise SystemExit(f"callgrind run failed ({run.returncode}):\n{run.stderr[-3000:]}")
        if keep is not None:
            shutil.copyfile(out, keep)
        return int(found.group(1).replace(",", ""))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--keep FILE` (copy callgrind's output file there) and the hidden `--inside` (this
    run is the one under valgrind) that every counting script takes."""
    parser.add_argument("--keep", type=Path, help="copy callgrind's output file here")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
