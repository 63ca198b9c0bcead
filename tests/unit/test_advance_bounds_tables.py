"""The font folders' advance-bound tables (server/channels/advance_bounds.py, issue 14):
every process rendering with Typst read the fonts' GPOS and GSUB with fontTools (about
1.5 s of CPU per bulk worker and render process start); a folder's `advance-bounds.json`
gives the same bounds, and is used only for exactly the font files it was written for."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from server.channels import advance_bounds
from server.channels.advance_bounds import TABLE_NAME, folder_bounds, read_folder
from server.channels.pdf import engine_of
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, font_folders
from tests.layouts import shipped

TYPST_FOLDERS = sorted({folder for layout in shipped().latest()
                        if engine_of(layout) == "typst" for folder in font_folders(layout)})


def test_the_typst_layouts_use_shared_font_folders():
    shared = (DEFAULT_LAYOUTS_DIR / "_shared" / "fonts").resolve()
    assert TYPST_FOLDERS and all(folder.parent == shared for folder in TYPST_FOLDERS)


@pytest.mark.parametrize("folder", TYPST_FOLDERS, ids=lambda folder: folder.name)
def test_each_shared_folder_ships_its_table_equal_to_reading_its_fonts(folder):
    stored = json.loads((folder / TABLE_NAME).read_text(encoding="utf-8"))
    assert sorted(stored["fonts"]) == sorted(
        path.name for path in folder.iterdir() if path.suffix == ".ttf")
    # null: a character without a bound (a substitution cycle, advance_bounds._close)
    assert {int(point): math.inf if bound is None else bound
            for point, bound in stored["bounds"].items()} == read_folder(folder)


def test_a_folder_with_its_table_is_not_read_with_fonttools(monkeypatch):
    def no_fonttools(path):
        raise AssertionError(f"{path.name} read with fontTools")

    monkeypatch.setattr(advance_bounds, "_font_bounds", no_fonttools)
    assert len(folder_bounds(TYPST_FOLDERS[0])) > 1000


def test_a_table_written_for_other_font_files_is_not_used(tmp_path, monkeypatch):
    """A font removed (or changed: its sha256 differs) makes the table stale: the folder is
    read with fontTools, and gives what its fonts say."""
    folder = tmp_path / TYPST_FOLDERS[0].name
    shutil.copytree(TYPST_FOLDERS[0], folder)
    fonts = sorted(path for path in folder.iterdir() if path.suffix == ".ttf")
    fonts[0].unlink()
    read = []
    original = advance_bounds._font_bounds
    monkeypatch.setattr(advance_bounds, "_font_bounds",
                        lambda path: read.append(path.name) or original(path))
    bounds = folder_bounds(folder)
    assert read == [path.name for path in fonts[1:]]
    assert bounds == read_folder(folder)
