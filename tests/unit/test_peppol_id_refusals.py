"""A customer's Peppol participant id that addresses no one is the caller's error (QA: a B2B
buyer with a mistyped id silently got paper only).

`b2b-invoice` with `customer.peppol_id = "0192:987654324"` (a wrong MOD11 check digit) was
composed OK with the plan "factur-x-and-paper (einvoice skipped)" and a print output only,
while the same buyer without an id got Factur-X and paper: a wrong id was treated worse than
none, and the caller was told OK. Now every layout version whose `customer` takes a
`peppol_id` refuses one that breaks its scheme's Peppol rule (PEPPOL-COMMON-R040..R050) or,
where python-stdnum checks the scheme, its check digit: `InvalidInput` at
`$.customer.peppol_id` naming the rule, the scheme and why (builders/customer.py
`peppol_id`, server/compose/identifiers.py `peppol_id`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from server.compose import identifiers as ids
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import Layout
from server.compose.model import Channel
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
FIELD = "$.customer.peppol_id"


def _customer_schema(layout: Layout) -> dict[str, Any]:
    schema = layout.schema
    customer = schema["properties"]["customer"]
    ref = customer.get("$ref", "")
    return schema["$defs"][ref.rpartition("/")[2]] if ref else customer


# every layout version whose data contract has `customer.peppol_id`
WITH_PEPPOL_ID = [layout for layout in LAYOUTS.every_version()
                  if "peppol_id" in _customer_schema(layout).get("properties", {})]


def _compose(layout: Layout, peppol_id: str | None, locale: str | None = None):
    data = json.loads(layout.sample_data(locale))
    if peppol_id is None:
        data["customer"].pop("peppol_id", None)
    else:
        data["customer"]["peppol_id"] = peppol_id
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="d", now=NOW, locale=locale))


def test_the_qa_buyer_with_a_mistyped_norwegian_id_is_refused_not_sent_paper():
    layout = LAYOUTS.get("b2b-invoice")
    without = _compose(layout, None, "nb-NO")  # as before: Factur-X and paper
    assert without.channel_plan.channels == (Channel.EINVOICE, Channel.PRINT)
    with pytest.raises(InvalidInput) as info:
        _compose(layout, "0192:987654324", "nb-NO")
    [violation] = info.value.violations
    assert violation.field == FIELD
    assert violation.description.startswith("[PEPPOL-COMMON-R041] scheme 0192: ")
    assert "Norwegian organisation number" in violation.description
    assert "check digit" in violation.description


def test_the_layouts_with_a_customer_peppol_id_are_the_expected_ones():
    found = {layout.id for layout in WITH_PEPPOL_ID}
    assert {"b2b-invoice", "card-invoice", "payment-reminder", "welcome-letter"} <= found
    assert len(WITH_PEPPOL_ID) >= 20  # every version of them, based versions too


@pytest.mark.parametrize("layout", WITH_PEPPOL_ID, ids=lambda layout: layout.ref)
def test_every_layout_version_with_the_field_refuses_it(layout: Layout):
    with pytest.raises(InvalidInput) as info:
        _compose(layout, "0192:987654324")
    assert [v.field for v in info.value.violations] == [FIELD]
    # and its own sample still composes, with or without an id
    _compose(layout, None)


@pytest.mark.parametrize(("peppol_id", "rule", "why"), [
    ("0192:987654324", "PEPPOL-COMMON-R041", "Norwegian organisation number"),
    ("0007:5560360794", "PEPPOL-COMMON-R049", "Swedish organisation number"),
    ("0184:13585627", "EAS 0184", "Danish CVR number"),         # 8 digits, bad MOD11
    ("0184:1358562", "PEPPOL-COMMON-R042", "Danish CVR number"),  # 7 digits
    ("0037:20774741", "EAS 0037", "Finnish business id"),
    ("0216:003720774741", "EAS 0216", "Finnish OVT code"),
    ("0088:4000001000006", "PEPPOL-COMMON-R040", "GLN"),
    ("0208:0123456750", "PEPPOL-COMMON-R043", "Belgian enterprise number"),
    ("9925:BE0123456750", "EAS 9925", "BE VAT number"),
    ("9930:DE812345674", "EAS 9930", "DE VAT number"),
    ("0009:30326504500015", "EAS 0009", "French SIRET number"),
    ("9999:923609016", "PEPPOL-EN16931-CL008", "Electronic Address Scheme list"),
])
def test_each_scheme_is_refused_with_its_rule_and_reason(peppol_id: str, rule: str, why: str):
    with pytest.raises(InvalidInput) as info:
        _compose(LAYOUTS.get("b2b-invoice"), peppol_id)
    [violation] = info.value.violations
    assert violation.field == FIELD
    assert violation.description.startswith(f"[{rule}]"), violation.description
    assert why in violation.description
    scheme = peppol_id.partition(":")[0]
    if rule != "PEPPOL-EN16931-CL008":
        assert f"scheme {scheme}: " in violation.description


@pytest.mark.parametrize("peppol_id", [
    "0192:987654325", "0192:923 609 016", "0007:5560360793", "0007:556036-0793",
    "0184:13585628", "0184:DK55133018", "0037:20774740", "0216:003720774740",
    "0216:003728470514ABC12", "0088:7300010000001", "0208:0123456749", "9925:BE0123456749",
    "9930:DE812345673", "9914:ATU13585627", "9932:GB980780684", "9945:PL8567346215",
    "0009:30326504500011", "0002:732829320", "0151:51824753556", "0060:123456789",
])
def test_valid_ids_of_each_scheme_are_taken(peppol_id: str):
    scheme, number = ids.peppol_id(peppol_id)
    assert scheme == peppol_id.partition(":")[0] and number


def test_a_card_holders_mistyped_id_is_refused_not_planned_as_paper():
    # card-invoice "peppol-receiver" makes the e-invoice primary; a wrong id fell back to
    # the plan of a holder without one
    with pytest.raises(InvalidInput) as info:
        _compose(LAYOUTS.get("card-invoice"), "0184:13585627", "da-DK")
    assert [v.field for v in info.value.violations] == [FIELD]
