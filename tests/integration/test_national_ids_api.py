"""A Finnish customer over gRPC: the default version (2.1.0) of every layout with a national
id composes and prints with a henkilötunnus whose century sign or check character is a
letter; pinned to 2.0.0, whose schema pattern refused it, the call is refused as before
(a used layout version is immutable). The composer-level cases: tests/unit/test_national_ids.py."""

from __future__ import annotations

import json

import grpc
import pytest

from kanal.v1 import common_pb2, documents_pb2
from server.app import KanalServer
from tests.integration.compose_api_fixtures import (
    call_error,
    documents_stub,
    print_output,
    sample,
    start_kanal,
)
from tests.pdf_inspect import pages_text
from tests.unit.test_national_ids import HELSINKI, WITH_NATIONAL_ID

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    yield from start_kanal(tmp_path_factory)


@pytest.fixture(scope="module")
def documents(kanal: KanalServer):
    yield from documents_stub(kanal)


def finnish(layout_id: str, national_id: str) -> str:
    data = json.loads(sample(layout_id))
    customer = data["customer"]
    customer.update(national_id=national_id, address=HELSINKI, name="Aino Virtanen")
    for norwegian in ("org_number", "vat_id"):  # the b2b sample's buyer: a company in Oslo
        customer.pop(norwegian, None)
    return json.dumps(data)


@pytest.mark.parametrize("layout_id", WITH_NATIONAL_ID)
def test_a_finnish_customer_is_printed_on_the_default_version(documents, layout_id):
    for national_id in ("010100A123D", "131052-308T"):
        response = documents.Compose(documents_pb2.ComposeRequest(
            tenant="nordkort", layout_id=layout_id, data_json=finnish(layout_id, national_id),
            channels=[common_pb2.CHANNEL_PRINT], preview=True))
        assert response.layout_version == "2.1.0"
        pdf = print_output(response.outputs).content
        assert pdf.startswith(b"%PDF-") and "Aino Virtanen" in "".join(pages_text(pdf))

    pinned = call_error(documents.Compose, documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id=layout_id, layout_version="2.0.0",
        data_json=finnish(layout_id, "010100A123D"), channels=[common_pb2.CHANNEL_PRINT],
        preview=True))
    assert pinned.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "$.customer.national_id" in pinned.details()
