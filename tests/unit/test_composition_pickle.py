"""A Composition crosses to the render processes and job workers pickled: it comes back
equal, and every object in it travels in the dataclasses' own state (its field values in
field order; a list there, a tuple here, read alike), so a process of the previous release
reads it and is read by it."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime

import pytest

from server.compose.composer import ComposeRequest, compose
from tests.layouts import shipped

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def objects(value):
    """Every dataclass object reachable from `value`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield value
        for f in dataclasses.fields(value):
            yield from objects(getattr(value, f.name))
    elif isinstance(value, tuple | list | frozenset | set):
        for item in value:
            yield from objects(item)
    elif hasattr(value, "values"):
        for item in value.values():
            yield from objects(item)


@pytest.mark.parametrize("layout_id", ["card-invoice", "b2b-invoice", "welcome-letter"])
def test_a_composition_comes_back_equal_in_the_dataclasses_own_state(layout_id):
    layout = shipped().get(layout_id)
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=layout.sample_data(),
                                         document_id="01JDOC00000000000000000001", now=NOW))
    assert pickle.loads(pickle.dumps(composition, protocol=5)) == composition
    for obj in objects(composition):
        assert list(obj.__getstate__()) == [  # a list from dataclasses, here a tuple
            getattr(obj, f.name) for f in dataclasses.fields(obj)], type(obj)
