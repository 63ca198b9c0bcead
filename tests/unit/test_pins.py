"""The install is the same on every machine: constraints.txt pins every package, and the
environment the tests run in is exactly the pinned set (refresh with `.ci/lock`)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[_canonical(name)] = version
    return pins


def _requirement_name(requirement: str) -> str:
    return _canonical(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))


def test_every_dependency_of_pyproject_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    missing = {_requirement_name(r) for r in declared} - _pins().keys()
    assert not missing, f"not in constraints.txt (run .ci/lock): {sorted(missing)}"


def test_installed_versions_are_the_pinned_ones() -> None:
    installed = {_canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    # a pin absent here belongs to an extra this venv does not install ([bench]: minio)
    wrong = {name: (version, installed[name]) for name, version in _pins().items()
             if name in installed and installed[name] != version}
    assert not wrong, f"installed versions differ from constraints.txt (pinned, installed): {wrong}"
