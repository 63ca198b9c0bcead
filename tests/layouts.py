"""The repository's layouts for the tests: one `LayoutRegistry` per test process.

Loading every layout version below `layouts/` (manifests, schemas, labels, each print area
checked against every print profile's mark zones) costs about 0.65 s of CPU. The unit test
modules each loaded their own, most at import: pytest-xdist's workers import every module to
collect, so each worker spent about a minute of CPU on ~90 identical registries before its
first test. A registry and its layouts are read only (`Layout` is a frozen dataclass; its
cached validators and template environments are deterministic), so one serves every module.

A test that needs a registry of its own (another root, other mark zones, a registry loaded
after a change it makes) still makes one with `LayoutRegistry(...)`.
"""

from __future__ import annotations

from functools import cache

from server.compose.layouts import LayoutRegistry


@cache
def shipped() -> LayoutRegistry:
    """`LayoutRegistry()`: the repository's layouts, loaded once per process."""
    return LayoutRegistry()
