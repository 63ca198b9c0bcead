"""Every `kanal` option says what it does, and `kanal submit --help` lists its exit codes
(the README says the same)."""

from __future__ import annotations

import argparse
from pathlib import Path

from server.cli import build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += _undocumented(sub, f"{path} {name}")
        elif not action.help and not isinstance(action, argparse._HelpAction):
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_has_help_text():
    assert _undocumented(build_parser(), "kanal") == []


def test_submit_help_and_readme_list_the_exit_codes():
    submit = build_parser()._subparsers._group_actions[0].choices["submit"]
    text = submit.format_help()
    for code, meaning in (("0", "completed"), ("1", "nothing submitted"), ("2", "usage"),
                          ("3", "completed with errors"), ("4", "cancelled")):
        assert f"  {code}  " in text and meaning in text
    assert "Exit codes: 0 every record became a document" in README.replace("\n", " ")


def test_archive_sample_is_a_fraction_in_help_and_readme():
    archive = build_parser()._subparsers._group_actions[0].choices["archive"]
    assert "fraction of objects to re-read, e.g. 0.1" in archive.format_help()
    assert "kanal archive verify --sample 0.1" in README


def _parsers(parser: argparse.ArgumentParser, path: str):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_an_option_is_never_taken_for_a_longer_one_it_begins():
    # `kanal portal fetch DOC --customer 20184455` was read as --customer-token
    parser = build_parser()
    assert all(not sub.allow_abbrev for _, sub in _parsers(parser, "kanal"))
    try:
        parser.parse_args(["portal", "fetch", "DOC", "--out", "x", "--customer", "20184455"])
    except SystemExit as refused:
        assert refused.code == 2
    else:
        raise AssertionError("--customer was taken for --customer-token")


def test_every_command_that_picks_a_layout_version_spells_it_layout_version():
    # `kanal render` and `kanal layouts` took `--version`, compose and submit
    # `--layout-version`: one spelling now, the old one kept as an alias
    parser = build_parser()
    takers = {path: sub for path, sub in _parsers(parser, "kanal")
              if any(a.dest in ("version", "layout_version") for a in sub._actions)}
    assert set(takers) == {"kanal render", "kanal compose", "kanal layouts", "kanal submit"}
    for sub in takers.values():
        [action] = [a for a in sub._actions if a.dest in ("version", "layout_version")]
        assert action.dest == "layout_version" and "--layout-version" in action.option_strings
    for argv in (["render", "card-invoice", "--out", "x"], ["layouts", "card-invoice"]):
        for spelling in ("--layout-version", "--version"):
            assert parser.parse_args([*argv, spelling, "1.0.0"]).layout_version == "1.0.0"

