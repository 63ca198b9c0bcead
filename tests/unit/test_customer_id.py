"""A customer id is a key (archive prefix, portal listing, A/B variant): every layout refuses
one that is blank or padded, at $.customer.customer_id, whatever its schema allows."""

import json
from datetime import UTC, datetime

import pytest

from server.compose.composer import ComposeRequest, compose
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EVERY_LAYOUT = ["welcome-letter", "payment-reminder", "card-invoice", "b2b-invoice",
                "nps-survey"]


def _compose(layout_id: str, customer_id: str):
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    data["customer"]["customer_id"] = customer_id
    return compose(ComposeRequest(tenant="demo", layout=layout, data=json.dumps(data),
                                  document_id="01TEST", now=NOW))


@pytest.mark.parametrize("layout_id", EVERY_LAYOUT)
@pytest.mark.parametrize(("customer_id", "says"), [
    ("  ", '"  " is blank'),  # was archived under demo/%20%20/
    ("\u00a0\t", "is blank"),
    (" 20184455", "starts or ends with whitespace"),
    ("20184455  ", "starts or ends with whitespace"),
    ("2018\n4455", "holds a line break"),
])
def test_a_blank_or_padded_customer_id_is_refused_at_its_path(layout_id, customer_id, says):
    with pytest.raises(InvalidInput) as info:
        _compose(layout_id, customer_id)
    [violation] = info.value.violations
    assert violation.field == "$.customer.customer_id"
    assert says in violation.description, violation.description


@pytest.mark.parametrize("layout_id", EVERY_LAYOUT)
def test_an_id_with_inner_spaces_is_kept_as_given(layout_id):
    assert _compose(layout_id, "NO 2018 4455").recipient.customer_id == "NO 2018 4455"


@pytest.mark.parametrize("layout_id", EVERY_LAYOUT)
@pytest.mark.parametrize("name", ["   ", "\u00a0", "\t "])
def test_a_blank_customer_name_is_refused_at_its_path(layout_id, name):
    # QA: a name of spaces was composed ("Hei   ," and an empty first window line)
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    data["customer"]["name"] = name
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="demo", layout=layout, data=json.dumps(data),
                               document_id="01TEST", now=NOW))
    [violation] = info.value.violations
    assert violation.field == "$.customer.name"
    assert "is blank" in violation.description, violation.description
