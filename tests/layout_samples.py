"""Every version's samples of every layout, for the tests that check what samples say
(a sample is example data: `kanal layouts --sample`, GetLayout)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from server.compose.layouts import LayoutRegistry

REGISTRY = LayoutRegistry()
LAYOUTS = [REGISTRY.get(layout.id, version) for layout in REGISTRY.latest()
           for version in REGISTRY.versions(layout.id)]
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def samples_paying_by(scheme: str) -> Iterator[object]:
    """pytest params (layout, locale, data) of every sample whose payment.reference_scheme
    is `scheme` (e.g. "fi", "text"), named `<layout ref>-<locale>`."""
    for layout in LAYOUTS:
        for locale in layout.sample_locales or (layout.default_locale,):
            data = json.loads(layout.sample_data(locale))
            if data.get("payment", {}).get("reference_scheme") == scheme:
                yield pytest.param(layout, locale, data, id=f"{layout.ref}-{locale}")
