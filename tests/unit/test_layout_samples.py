"""GetLayout gives a layout's sample for a locale (`sample_locale`, one of the layout's
`sample_locales`), not only its default sample: the per-country samples were reachable only
in the repository. A locale without a sample is INVALID_ARGUMENT naming the ones there are,
never the default sample in its place. QA L8."""

from __future__ import annotations

import json

import pytest

from kanal.v1 import layouts_pb2
from server.api.layouts import LayoutsServicer
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.errors import InvalidInput
from tests.layouts import shipped

SERVICER = LayoutsServicer(shipped())
LATEST = DEFAULT_LAYOUTS_DIR / "card-invoice" / "2.0.0"


def get(**fields: str) -> layouts_pb2.Layout:
    return SERVICER.GetLayout(layouts_pb2.GetLayoutRequest(layout_id="card-invoice", **fields),
                              None)


def test_the_sample_of_a_locale_and_the_locales_that_have_one():
    layout = get(sample_locale="en-GB")
    assert layout.sample_json == (LATEST / "samples/en-GB.json").read_text(encoding="utf-8")
    assert json.loads(layout.sample_json)["customer"]["address"]["country"] == "GB"
    assert {"nb-NO", "sv-SE", "de-DE", "en-GB"} <= set(layout.sample_locales)
    assert get().sample_json == (LATEST / "sample.json").read_text(encoding="utf-8")
    listed = SERVICER.ListLayouts(layouts_pb2.ListLayoutsRequest(), None).layouts
    assert all(x.sample_locales for x in listed)


def test_a_locale_without_a_sample_is_named_with_the_ones_there_are():
    with pytest.raises(InvalidInput) as raised:
        get(version="1.0.0", sample_locale="de-DE")
    [violation] = raised.value.violations
    assert (violation.field, violation.description) == (
        "sample_locale", 'card-invoice@1.0.0 has no sample for "de-DE"; its samples: '
                         "nb-NO, sv-SE")


@pytest.mark.parametrize("given", ["en-gb", "EN-GB"])
def test_a_sample_locale_in_another_case_is_that_locales_sample(given):
    # was 'has no sample for "en-gb"' over gRPC, and `kanal render --locale en-gb` drew the
    # default (Norwegian) sample: BCP 47 tags are case-insensitive (RFC 5646 2.1.1)
    expected = (LATEST / "samples/en-GB.json").read_text(encoding="utf-8")
    assert get(sample_locale=given).sample_json == expected
    assert shipped().get("card-invoice").sample_data(given) == expected
