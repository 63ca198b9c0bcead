"""A credit note that names no invoice it credits is refused over gRPC (QA on b2b-invoice
credit notes), on a real Kanal server in-process.

EN 16931 makes the preceding invoice reference (BG-3) optional, and Kanal composed, archived
and sent such a credit note with no `BillingReference`. The VAT Directive 2006/112/EC
art. 219 treats a document that amends an invoice as an invoice only when it refers
specifically and unambiguously to it: the server now answers INVALID_ARGUMENT with a field
violation on the layout's preceding invoices field (`$.preceding_invoices`, BG-3; 1.0.0's
schema has only `$.preceding_invoice`) saying why, on every b2b-invoice version (the rule is
the server's, server/compose/validation/en16931.py `credit_note_reference`), and archives
nothing.
"""

from __future__ import annotations

import json

import grpc
import pytest

from kanal.v1 import common_pb2, documents_pb2
from server.api.errors import field_violations
from server.app import KanalServer
from server.compose.layouts import LayoutRegistry
from tests.integration.compose_api_fixtures import (
    call_error,
    count_objects,
    documents_stub,
    s3_client,
    start_kanal,
)

pytestmark = pytest.mark.integration

LAYOUTS = LayoutRegistry()
VERSIONS = LAYOUTS.versions("b2b-invoice")
RULE = "[KANAL-CREDIT-NOTE-REFERENCE] a credit note must name the invoice it credits"


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    yield from start_kanal(tmp_path_factory)


@pytest.fixture(scope="module")
def documents(kanal: KanalServer):
    yield from documents_stub(kanal)


def credit_note(version: str) -> dict:
    """The version's credit note sample (its base's when it has none), crediting nothing."""
    layout = LAYOUTS.get("b2b-invoice", version)
    data = json.loads((layout.path / "sample-credit-note.json").read_text(encoding="utf-8"))
    assert data["type"] == "credit_note"
    assert data.pop("preceding_invoice", None) or data.pop("preceding_invoices")
    return data


def test_every_version_takes_credit_notes():
    assert VERSIONS[0] == "1.0.0" and VERSIONS[-1] == LAYOUTS.get("b2b-invoice").version
    for version in VERSIONS:
        schema = LAYOUTS.get("b2b-invoice", version).schema
        assert "credit_note" in schema["properties"]["type"]["enum"], version


@pytest.mark.parametrize("version", VERSIONS)
def test_a_credit_note_without_the_invoice_it_credits_is_invalid_argument(documents, kanal,
                                                                           version):
    s3 = s3_client(kanal)
    before = count_objects(s3)
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="b2b-invoice", layout_version=version, data_json=json.dumps(credit_note(
            version)), channels=[common_pb2.CHANNEL_PRINT, common_pb2.CHANNEL_EINVOICE]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    schema = LAYOUTS.get("b2b-invoice", version).schema["properties"]
    field = "$.preceding_invoices" if "preceding_invoices" in schema else "$.preceding_invoice"
    [(found, description)] = field_violations(error)
    assert found == field, (version, found)
    assert description.startswith(RULE), description
    assert "2006/112/EC art. 219" in description
    assert count_objects(s3) == before  # nothing refused is archived


def test_a_blank_preceding_invoice_is_named_where_it_was_given(documents):
    data = credit_note("2.6.0") | {"preceding_invoice": " "}
    error = call_error(documents.Compose, documents_pb2.ComposeRequest(
        layout_id="b2b-invoice", data_json=json.dumps(data),
        channels=[common_pb2.CHANNEL_PRINT]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [(found, description)] = field_violations(error)
    assert (found, description[:len(RULE)]) == ("$.preceding_invoice", RULE)


@pytest.mark.parametrize("version", [VERSIONS[0], VERSIONS[-1]])
def test_the_credit_note_naming_its_invoice_is_composed(documents, version):
    layout = LAYOUTS.get("b2b-invoice", version)
    data = (layout.path / "sample-credit-note.json").read_text(encoding="utf-8")
    reply = documents.Compose(documents_pb2.ComposeRequest(
        layout_id="b2b-invoice", layout_version=version, data_json=data, preview=True,
        channels=[common_pb2.CHANNEL_PRINT]))
    assert reply.layout_version == version and reply.outputs
