"""Print profiles and inserter codes: validation of the profile, and the sheet code rules."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import tomllib
from pathlib import Path
from typing import Any

import pytest

from server.printing.omr import (
    DataMatrixPayload,
    datamatrix_payload,
    parse_datamatrix_payload,
    sheet_code,
)
from server.printing.profiles import (
    BUILTIN_DIR,
    builtin_profiles,
    load_profile,
    profile_from_dict,
)

PROFILES = builtin_profiles()
DEFAULT = PROFILES["default"]
PB = PROFILES["pb-di-negative"]


def _raw(name: str = "default") -> dict[str, Any]:
    with (BUILTIN_DIR / f"{name}.toml").open("rb") as f:
        return tomllib.load(f)


def _with(path: str, value: Any, name: str = "default") -> dict[str, Any]:
    """The builtin profile's TOML data with one key replaced (value None = deleted)."""
    data = copy.deepcopy(_raw(name))
    if isinstance(value, dict):  # several keys of one table at once
        data[path].update(value)
        return data
    *parents, key = path.split(".")
    table = data
    for p in parents:
        table = table.setdefault(p, {})
    if value is None:
        del table[key]
    else:
        table[key] = value
    return data


# --- builtin profiles ---------------------------------------------------------------------


def test_builtin_profiles_load_with_the_documented_shape() -> None:
    assert set(PROFILES) == {"default", "pb-di-negative"}
    assert DEFAULT.omr.edge == "left" and not DEFAULT.omr.eoc_negative
    assert DEFAULT.omr.parity == "even" and DEFAULT.omr.feeders == 3
    assert DEFAULT.omr.seq_bits == 3 and not DEFAULT.duplex and DEFAULT.datamatrix is None
    assert PB.omr.edge == "right" and PB.omr.eoc_negative and PB.omr.parity == "odd"
    assert PB.omr.feeders == 4 and PB.duplex and PB.datamatrix is not None
    assert DEFAULT.envelopes["C5"].window is not None
    assert DEFAULT.envelopes["C5"].max_sheets == 5 and DEFAULT.overflow["C5"] == "C4"


def test_profiles_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.omr.pitch_mm = 3.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        DEFAULT.envelopes["X"] = DEFAULT.envelopes["C5"]  # type: ignore[index]


def test_load_profile_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    text = (BUILTIN_DIR / "default.toml").read_text().replace("pitch_mm = 4.23", "pitch_mm = 2")
    path.write_text(text)
    with pytest.raises(ValueError, match=r"shop\.toml: omr\.pitch_mm"):
        load_profile(path)


def test_envelope_overflow_rule() -> None:
    assert DEFAULT.envelope_for(1).id == "C5"
    assert DEFAULT.envelope_for(5).id == "C5"
    assert DEFAULT.envelope_for(6).id == "C4"
    assert DEFAULT.envelope_for(4, "E65").id == "E65"
    assert DEFAULT.envelope_for(5, "E65").id == "C4"
    assert DEFAULT.envelope_for(50).id == "C4"
    with pytest.raises(ValueError, match="fits no envelope"):
        DEFAULT.envelope_for(51)
    with pytest.raises(ValueError, match="unknown envelope 'B4'"):
        DEFAULT.envelope_for(1, "B4")
    # DE, AT, UK: the DIN 680 DL window envelope, a thick piece in C4 with the same window
    assert DEFAULT.envelope_for(4, "DL").id == "DL"
    assert DEFAULT.envelope_for(5, "DL").id == "C4-DIN"


def test_envelope_address_and_visible_areas_account_for_play() -> None:
    c5 = DEFAULT.envelopes["C5"]
    assert c5.address_area is not None and c5.visible_area is not None
    assert (c5.address_area.x, c5.address_area.y) == (18.0, 47.0)
    assert (c5.visible_area.w, c5.visible_area.h) == (111.0, 41.0)


# --- profile validation -------------------------------------------------------------------

TOO_MANY = ["start", "eoc", *(f"feed{i}" for i in range(1, 23)), "safety"]  # 25 positions
TOO_LONG = ["start", "eoc", *(f"feed{i}" for i in range(1, 16)), "safety"]  # 18 x 4.23 mm


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("omr.mark_thickness_mm", 0.3, r"omr\.mark_thickness_mm: 0\.3 mm outside 0\.35-0\.7"),
        ("omr.mark_thickness_mm", 0.8, r"omr\.mark_thickness_mm"),
        ("omr.mark_length_mm", 8, r"omr\.mark_length_mm: 8\.0 mm is shorter than 10"),
        ("omr.pitch_mm", 2.5, r"omr\.pitch_mm: 2\.5 mm is below 2\.54"),
        ("omr", {"marks": TOO_MANY, "seq_bits": 0}, r"omr\.marks: 25 positions, at most 24"),
        ("omr", {"marks": TOO_LONG, "seq_bits": 0}, r"omr\.marks: code is 72\.4 mm long"),
        ("omr.first_mark_y_mm", 15, r"omr\.first_mark_y_mm: first bar .* lead edge"),
        ("omr.first_mark_y_mm", 280, r"omr\.first_mark_y_mm: .* do not fit"),
        ("omr.x_mm", 2, r"omr\.x_mm"),
        ("omr.clear_zone_mm", 1, r"omr\.clear_zone_mm"),
        ("omr.edge", "top", r"omr\.edge"),
        ("omr.parity", "none", r"omr\.parity"),
        ("omr.marks", ["start", "eoc", "banana", "safety"], r"omr\.marks: unknown mark 'banana'"),
        ("omr.marks", ["eoc", "start", "safety"], r"omr\.marks: .*open with 'start'"),
        ("omr.marks", ["start", "eoc", "seq1", "seq2", "seq4"], r"omr\.marks: 'safety'"),
        ("omr.marks", ["start", "eoc", "safety", "seq1", "seq2", "seq4"], r"close with"),
        ("omr.marks", ["start", "feed1", "seq1", "seq2", "seq4", "safety"], r"'eoc' is req"),
        ("omr.marks", ["start", "eoc", "feed2", "seq1", "seq2", "seq4", "safety"], r"feed1"),
        ("omr.marks", ["start", "eoc", "eoc", "safety"], r"appears twice"),
        ("omr.marks", "start", r"omr\.marks: must be a list"),
        ("omr.seq_bits", 4, r"omr\.seq_bits: 4 bits needs the marks seq1, seq2, seq4, seq8"),
        ("omr.pich_mm", 4.23, r"omr\.pich_mm: unknown key"),
        ("omr.pitch_mm", None, r"omr\.pitch_mm: required"),
        ("omr.pitch_mm", "4.23", r"omr\.pitch_mm: expected float"),
        ("omr.eoc_negative", 1, r"omr\.eoc_negative: expected bool"),
        ("omr.seq_bits", 2.0, r"omr\.seq_bits: expected int"),
        ("omr.first_mark_y_mm", 40, r"omr: would show through the window of envelope 'C5'"),
        ("paper", "Letter", r"paper: 'Letter' not supported"),
        ("default_envelope", "B4", r"default_envelope: 'B4' is not in envelopes"),
        ("overflow.C5", "B4", r"overflow\.C5: target 'B4'"),
        ("overflow.C4", "C5", r"overflow\.C4: target 'C5' holds no more sheets"),
        ("envelopes.C5.max_sheets", 0, r"envelopes\.C5\.max_sheets: must be at least 1"),
        ("envelopes.C5.window_w_mm", None, r"envelopes\.C5\.window_x_mm: give all four"),
        ("envelopes.C5.window_x_mm", 150, r"envelopes\.C5\.window_x_mm: .*outside the sheet"),
        ("envelopes.C5.colour", "white", r"envelopes\.C5\.colour: unknown key"),
        ("surprise", 1, r"^surprise: unknown key"),
    ],
)
def test_profile_validation_names_the_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        profile_from_dict(_with(path, value))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("datamatrix", {"x_mm": 60, "y_mm": 50}, r"datamatrix: would show through the window"),
        ("datamatrix.y_mm", 120, r"datamatrix: overlaps the OMR code"),
        ("datamatrix.module_mm", 0.1, r"datamatrix\.module_mm"),
        ("datamatrix.x_mm", 200, r"datamatrix\.x_mm: .*do not fit"),
        ("datamatrix.max_size_mm", 3, r"datamatrix\.max_size_mm"),
    ],
)
def test_datamatrix_validation(path: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        profile_from_dict(_with(path, value, name="pb-di-negative"))


def test_envelope_without_window_is_allowed() -> None:
    data = _raw()
    data["envelopes"]["C4"] = {"max_sheets": 50}
    profile = profile_from_dict(data)
    assert profile.envelopes["C4"].window is None
    assert profile.envelopes["C4"].visible_area is None


def test_the_limits_themselves_are_accepted() -> None:
    data = _with("omr.mark_thickness_mm", 0.35)
    data["omr"].update(mark_length_mm=10, pitch_mm=2.54, first_mark_y_mm=200)
    assert profile_from_dict(data).omr.pitch_mm == 2.54
    data = _with("omr.marks", ["start", "eoc", *(f"feed{i}" for i in range(1, 22)), "safety"])
    data["omr"].update(seq_bits=0, pitch_mm=2.9, first_mark_y_mm=160)
    assert len(profile_from_dict(data).omr.marks) == 24


# --- sheet codes --------------------------------------------------------------------------


def code(spec: Any = DEFAULT.omr, sheet: int = 1, sheets: int = 1, seq: int = 0,
         feeders: frozenset[int] = frozenset()) -> tuple[str, ...]:  # fmt: skip
    return sheet_code(spec, sheet_in_piece=sheet, sheets_in_piece=sheets, sequence=seq,
                      feeders=feeders)  # fmt: skip


def test_single_sheet_piece_gets_eoc_and_feeders() -> None:
    # start, eoc, feed1, feed3, safety = 5 bars -> parity bar makes 6 (even)
    assert code(feeders=frozenset({1, 3})) == (
        "start", "eoc", "feed1", "feed3", "parity", "safety"
    )  # fmt: skip


def test_feeders_and_eoc_only_on_the_last_sheet() -> None:
    feeders = frozenset({2})
    first = code(sheet=1, sheets=3, seq=0, feeders=feeders)
    middle = code(sheet=2, sheets=3, seq=0, feeders=feeders)
    last = code(sheet=3, sheets=3, seq=0, feeders=feeders)
    assert first == middle == ("start", "safety")
    assert last == ("start", "eoc", "feed2", "safety")  # 4 bars: even without parity
    assert code(sheet=3, sheets=3, feeders=frozenset({2, 3})) == (
        "start", "eoc", "feed2", "feed3", "parity", "safety"
    )  # fmt: skip


def test_negative_eoc_is_printed_on_every_sheet_but_the_last() -> None:
    assert "eoc" in code(PB.omr, sheet=1, sheets=2)
    assert "eoc" not in code(PB.omr, sheet=2, sheets=2)
    assert "eoc" not in code(PB.omr, sheet=1, sheets=1)


def test_sequence_bits_count_in_binary_and_wrap() -> None:
    def bits(seq: int) -> int:
        return sum(int(m[3:]) for m in code(seq=seq) if m.startswith("seq"))

    assert [bits(s) for s in range(10)] == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    assert bits(2**40 + 5) == 5
    assert code(seq=5)[:4] == ("start", "eoc", "seq1", "seq4")


@pytest.mark.parametrize("profile", [DEFAULT, PB], ids=lambda p: p.id)
def test_parity_counts_every_bar_including_itself(profile: Any) -> None:
    spec = profile.omr
    want = 0 if spec.parity == "even" else 1
    for sheets, seq, n in itertools.product((1, 2, 3), range(8), range(spec.feeders + 1)):
        feeders = frozenset(range(1, n + 1))
        for sheet in range(1, sheets + 1):
            marks = code(spec, sheet=sheet, sheets=sheets, seq=seq, feeders=feeders)
            assert len(marks) % 2 == want, marks
            assert marks[0] == "start" and marks[-1] == "safety"
            assert list(marks) == sorted(marks, key=spec.marks.index)


def test_profile_without_parity_or_sequence_marks() -> None:
    data = _with("omr.marks", ["start", "eoc", "feed1", "safety"])
    data["omr"]["seq_bits"] = 0
    spec = profile_from_dict(data).omr
    assert sheet_code(spec, sheet_in_piece=1, sheets_in_piece=1, sequence=7,
                      feeders={1}) == ("start", "eoc", "feed1", "safety")  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feeders": frozenset({4})}, r"feeders: feeder 4 does not exist .*1\.\.3"),
        ({"feeders": frozenset({0})}, r"feeders: feeder 0"),
        ({"sheet": 0}, r"sheet_in_piece: 0 not in 1\.\.1"),
        ({"sheet": 3, "sheets": 2}, r"sheet_in_piece: 3 not in 1\.\.2"),
        ({"sheets": 0}, r"sheets_in_piece: 0"),
        ({"seq": -1}, r"sequence: -1"),
    ],
)
def test_sheet_code_rejects_impossible_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        code(**kwargs)


def test_unknown_feeder_is_rejected_on_every_sheet_not_just_the_last() -> None:
    with pytest.raises(ValueError, match="feeder 7"):
        code(sheet=1, sheets=3, feeders=frozenset({7}))


# --- DataMatrix payload -------------------------------------------------------------------


def test_datamatrix_payload_format() -> None:
    assert datamatrix_payload("01J9Z3QK8P", 2, 3, {4, 1}, 1207) == "K1|01J9Z3QK8P|2/3|14|1207"
    assert datamatrix_payload("A", 1, 1, (), 0) == "K1|A|1/1|0|0"


def test_datamatrix_payload_round_trips() -> None:
    text = datamatrix_payload("INV-2026/0001", 5, 12, {2, 3, 6}, 99)
    assert parse_datamatrix_payload(text) == DataMatrixPayload(
        "INV-2026/0001", 5, 12, frozenset({2, 3, 6}), 99
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("a|b", 1, 1, (), 0), "piece_id"),
        (("a b", 1, 1, (), 0), "piece_id"),
        (("", 1, 1, (), 0), "piece_id"),
        (("x" * 65, 1, 1, (), 0), "piece_id"),
        (("blåbær", 1, 1, (), 0), "piece_id"),
        (("a", 2, 1, (), 0), "sheet_in_piece"),
        (("a", 1, 1, (10,), 0), "feeders"),
        (("a", 1, 1, (), -3), "sequence"),
    ],
)
def test_datamatrix_payload_rejects(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        datamatrix_payload(*args)


@pytest.mark.parametrize("text", ["", "K2|a|1/1|0|0", "K1|a|1-1|0|0", "K1|a|1/1|x|0", "K1|a|1/1"])
def test_parse_datamatrix_payload_rejects_foreign_codes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datamatrix_payload(text)
