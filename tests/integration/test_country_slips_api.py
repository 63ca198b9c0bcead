"""Country payment slips through gRPC (issue 15 item 2): a real Kanal server composes each
country's payment, the PDF that comes back (print, and the digital mailbox's copy) carries
the codes an independent reader decodes to the Composition's values, and payments no bank
reads are INVALID_ARGUMENT naming the data's fields, with nothing archived."""

from __future__ import annotations

import json

import grpc
import pytest
import zxingcpp
from virtuaaliviivakoodi import deconstruct_virtuaaliviivakoodi

from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc
from server.api.errors import field_violations
from server.app import KanalServer
from server.config import Settings
from tests.client import Keys, channel
from tests.country_payments import _layouts_root, compose_country, country_data
from tests.unit.test_slip_reader import epc_amount, epc_fields, last_page_image

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"))


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-state")
    settings = Settings(listen="127.0.0.1:0", state_dir=state, api_keys=KEYS.api_keys,
                        layouts_dir=_layouts_root())
    with KanalServer(settings) as server, channel(server.address,
                                                  KEYS["nordkort", "producer"]) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)


def compose(documents, layout_id: str, country: str, channels=(common_pb2.CHANNEL_PRINT,),
            **changes):
    locale, data = country_data(layout_id, country, changes.get("payment"),
                                changes.get("account"))
    if "customer" in changes:
        data["customer"].update(changes["customer"])
    return documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id=layout_id, data_json=json.dumps(data), locale=locale,
        channels=list(channels), preview=True))


def test_epc_qr_in_the_print_pdf_and_the_mailbox_copy(documents):
    response = compose(documents, "card-invoice", "DE",
                       channels=(common_pb2.CHANNEL_PRINT, common_pb2.CHANNEL_MAILBOX),
                       customer={"national_id": "15076500565",
                                 "mailbox_ids": {"digipost": "kari#1234"}})
    pdfs = {o.channel: o.content for o in response.outputs}
    assert set(pdfs) >= {common_pb2.CHANNEL_PRINT, common_pb2.CHANNEL_MAILBOX}
    for pdf in (pdfs[common_pb2.CHANNEL_PRINT], pdfs[common_pb2.CHANNEL_MAILBOX]):
        [result] = zxingcpp.read_barcodes(last_page_image(pdf),
                                          formats=zxingcpp.BarcodeFormat.QRCode)
        fields = epc_fields(result.text)
        assert fields["iban"] == "DE89370400440532013000"
        assert fields["bic"] == "COBADEFFXXX"
        assert fields["reference"].startswith("RF") and fields["reference"].endswith(
            "2026004711")
        # the amount due of the same data composed here (the DE sample's new balance)
        assert epc_amount(fields["amount"]) == compose_country("card-invoice", "DE").amount_due


def test_finnish_bar_code_through_the_api(documents):
    response = compose(documents, "payment-reminder", "FI")
    [pdf] = [o.content for o in response.outputs if o.channel == common_pb2.CHANNEL_PRINT]
    [result] = zxingcpp.read_barcodes(last_page_image(pdf),
                                      formats=zxingcpp.BarcodeFormat.Code128)
    parsed = deconstruct_virtuaaliviivakoodi(result.text)
    expected = compose_country("payment-reminder", "FI")  # the FI sample, composed here
    assert parsed.iban == "FI2112345600000785"
    assert parsed.euro_amount == expected.amount_due
    assert parsed.reference == "20260047113"  # base 2026004711 + check digit 3 (7-3-1)
    assert parsed.due_date == expected.due_date


@pytest.mark.parametrize(("country", "changes", "fields"), [
    ("PL", {"account": {"type": "pl_nrb", "number": "61109010140000071219812875"}},
     {"$.issuer.payment_account.number"}),
    ("FI", {"account": {"type": "iban", "number": "FI2112345600000785", "bic": "NDEAXXHH"}},
     {"$.issuer.payment_account.bic"}),
    ("DE", {"payment": {"reference_scheme": "fi", "reference_base": "2026004711"}},
     {"$.payment.reference_scheme", "$.issuer.payment_account.number"}),
    ("GB", {"account": {"type": "gb_account", "number": "31926819"}},
     {"$.issuer.payment_account.sort_code"}),
    ("DK", {"payment": {"reference_scheme": "fik75",
                        "reference": "+75<0000000000000019+87654321<",
                        "creditor_number": "87654321"}}, {"$.payment.reference"}),
])
def test_payments_no_bank_reads_are_invalid_argument(documents, country, changes, fields):
    with pytest.raises(grpc.RpcError) as info:
        compose(documents, "card-invoice", country, **changes)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert {f for f, _ in field_violations(info.value)} == fields
