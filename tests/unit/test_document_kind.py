"""The document kind follows the document, not the layout (issue 11, item 9): a b2b-invoice
credit note is a `credit_note` for every rule that reads the kind (inserts, campaigns, the
channel plan); the index, portal and retention read the same Composition.kind
(tests/integration/test_channel_skips_and_kinds.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel, DocumentKind
from server.compose.rules import parse_rules
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
RULES = parse_rules([
    {"id": "terms", "when": {"kind": "invoice"}, "insert": "invoice-terms"},
    {"id": "refund-info", "when": {"kind": "credit_note"},
     "campaign": {"area": "main", "id": "refund", "title": "Refusjon", "body": "..."}},
])


def composed(sample: str, version: str | None = None, **compose_args):
    layout = LAYOUTS.get("b2b-invoice", version)
    data = json.loads((layout.path / sample).read_text())
    data["customer"].pop("peppol_id", None)
    data["customer"]["preferences"] = ["paper"]
    return compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                  document_id="d", now=NOW, rules=RULES, **compose_args))


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_credit_note_kind_and_rules(version: str) -> None:
    note = composed("sample-credit-note.json", version)
    assert note.kind is DocumentKind.CREDIT_NOTE and note.invoice.type_code == "381"
    assert note.inserts == ()  # the invoice leaflet stays out of credit notes
    assert [c.campaign_id for c in note.campaigns] == ["refund"]
    invoice = composed("sample.json", version)
    assert invoice.kind is DocumentKind.INVOICE
    assert invoice.inserts == ("invoice-terms",) and invoice.campaigns == ()


def test_plan_rules_can_test_the_kind() -> None:
    plan = {"t": {"b2b-invoice": {"rules": [
        {"name": "credit-notes-by-einvoice", "when": {"kind": "credit_note"},
         "primary": ["einvoice"]}]}}}
    assert composed("sample-credit-note.json", plan_rules=plan).channel_plan.channels == (
        Channel.EINVOICE,)
    assert composed("sample.json", plan_rules=plan).channel_plan.channels == (Channel.PRINT,)
