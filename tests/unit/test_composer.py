"""The composer's own rules: how JSON text becomes data, and what makes two inputs equal."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from server.compose.composer import ComposeRequest, compose, input_hash, parse_data
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()


def test_numbers_are_exact_decimals():
    data = parse_data('{"amount": 1234.50, "rate": 0.1, "count": 3}')
    assert data["amount"] == Decimal("1234.50") and str(data["amount"]) == "1234.50"
    assert data["rate"] == Decimal("0.1")  # a float would be 0.1000000000000000055...
    assert data["count"] == 3


@pytest.mark.parametrize(("text", "says"), [
    ('{"a": 1, "a": 2}', 'duplicate key "a"'),
    ('{"a": }', "line 1 column 7"),
    (b"\xff\xfe{}", "UTF-8"),
])
def test_bad_json_is_refused_naming_the_problem(text, says):
    with pytest.raises(InvalidInput) as info:
        parse_data(text)
    assert info.value.violations[0].field == "data"
    assert says in info.value.violations[0].description


@pytest.mark.parametrize(("text", "says"), [
    ("[1, 2]", "must be a JSON object, not an array"),
    ('"x"', "must be a JSON object, not a string"),
    ("12.5", "must be a JSON object, not a number"),
    ("null", "must be a JSON object, not null"),
])
def test_json_that_is_not_an_object_is_refused_at_its_root_path(text, says):
    """Well-formed JSON of the wrong kind is a value at the JSON path `$`, like every other
    data error that has a value (`data` names text that is no JSON at all)."""
    with pytest.raises(InvalidInput) as info:
        parse_data(text)
    assert [(v.field, v.description) for v in info.value.violations] == [("$", says)]


def test_input_hash_ignores_key_order_and_whitespace():
    data = json.loads(LAYOUTS.get("welcome-letter").sample_data())
    reordered = json.loads(json.dumps(dict(reversed(data.items())), indent=3))
    assert input_hash("welcome-letter", "nb-NO", (), data) == input_hash(
        "welcome-letter", "nb-NO", (), reordered)
    assert input_hash("welcome-letter", "nb-NO", (), data) != input_hash(
        "welcome-letter", "sv-SE", (), data)
    assert input_hash("welcome-letter", "nb-NO", (), data) != input_hash(
        "welcome-letter", "nb-NO", (Channel.PRINT,), data)


def test_composition_is_frozen_and_carries_its_identity():
    layout = LAYOUTS.get("card-invoice")
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    composition = compose(ComposeRequest(tenant="nordkort", layout=layout,
                                         data=layout.sample_data(), document_id="01TEST",
                                         now=now, idempotency_key="k1"))
    assert composition.layout_ref == f"card-invoice@{layout.version}"
    assert composition.created_at == now and composition.idempotency_key == "k1"
    assert composition.locale == layout.default_locale
    with pytest.raises(AttributeError):
        composition.tenant = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        composition.context["currency"] = "EUR"  # type: ignore[index]


def test_channels_the_layout_cannot_render_are_refused():
    layout = LAYOUTS.get("welcome-letter")
    missing = next(c for c in Channel if c not in layout.channels)
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=layout, data=layout.sample_data(),
                               document_id="x", now=datetime.now(UTC), channels=(missing,)))
    assert info.value.violations[0].field == "channels"


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder", "b2b-invoice"])
@pytest.mark.parametrize("code", ["XXX", "XAU", "XTS", "XDR"])
def test_an_iso_code_that_is_no_money_is_refused(layout_id, code):
    """XXX ("no currency"), metals, testing and units of account are ISO 4217 codes with no
    minor unit: accepted, they printed 34 708,17 as 34 708,00 ¤. Refused at $.currency."""
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    data["currency"] = code
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                               document_id="x", now=datetime.now(UTC)))
    assert [(v.field, code in v.description) for v in info.value.violations] == [
        ("$.currency", True)]


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder", "b2b-invoice",
                                       "welcome-letter", "nps-survey"])
@pytest.mark.parametrize(("where", "brk"), [
    ("name", "\r\n"), ("name", "\u2028"), ("address.lines.0", "\n"), ("address.city", "\u0085")])
def test_a_line_break_in_the_customers_name_or_address_is_refused(layout_id, where, brk):
    """"Kari\\r\\nBcc: evil@x.com" printed "Bcc: evil@x.com" as an address line in the
    envelope window and went into the SMS as it was."""
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    node = data["customer"]
    *parents, last = where.split(".")
    for key in parents:
        node = node.setdefault(key, {}) if not key.isdigit() else node[int(key)]
    if isinstance(node, list):
        node[int(last)] = f"Storgata{brk}Bcc: evil@x.com"
    else:
        assert last in node, f"{layout_id}'s sample has a customer {where}"
        node[last] = f"Kari{brk}Bcc: evil@x.com"
    with pytest.raises(InvalidInput) as info:
        compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                               document_id="x", now=datetime.now(UTC)))
    path = "$.customer." + where.replace(".0", "[0]")
    assert [v.field for v in info.value.violations] == [path]
    assert "line break" in info.value.violations[0].description
