"""WeasyPrint copies a layout's @font-face fonts into a temporary folder (about 3 MB for the
shared brand fonts) that only `FontConfiguration.__del__` removes. A render process that
ends normally (a recycled render pool, a stopped server) must leave no such folder behind:
without `server.channels.weasyprint_engine` removing it at exit, `__del__` ran during the
interpreter's teardown, found `shutil.rmtree` already gone ("Exception ignored in:
FontConfiguration.__del__ ... 'NoneType' object is not callable") and left the folder in
/tmp, once per process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RENDER_AND_EXIT = """
import gc
from server.channels.weasyprint_engine import WeasyPrintEngine
from server.compose.layouts import LayoutRegistry
from tests.unit.test_weasyprint_font_folder import composed_welcome_letter
from tests.layouts import shipped

layout = shipped().get("welcome-letter", "1.0.0")
engine = WeasyPrintEngine()
engine.render(layout, composed_welcome_letter(layout))
gc.freeze()  # as the render processes do once warm (server.processes.settle_heap)
print(engine.font_config._folder)
"""


def composed_welcome_letter(layout):
    """The layout's sample, composed (in the child process)."""
    from datetime import UTC, datetime

    from server.compose.composer import ComposeRequest, compose

    data = (layout.path / "sample.json").read_text()
    return compose(ComposeRequest(tenant="nordkort", layout=layout, data=data,
                                  document_id="01JTESTFONTFOLDER000000000",
                                  now=datetime(2026, 12, 1, tzinfo=UTC)))


def test_a_process_that_rendered_with_weasyprint_leaves_no_font_folder(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path),
           "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'proto'}"}
    done = subprocess.run([sys.executable, "-c", RENDER_AND_EXIT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder.parent == tmp_path and folder.name.startswith("weasyprint-")
    assert not folder.exists(), f"left behind: {sorted(p.name for p in folder.iterdir())}"
    assert "Exception ignored" not in done.stderr, done.stderr
