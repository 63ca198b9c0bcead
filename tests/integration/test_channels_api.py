"""Every channel over gRPC: a real KanalServer (embedded SeaweedFS) composes each layout's
samples; every planned channel's output is archived with its sha256 and indexed with its
channel; the UBL from the archive validates (XSD + EN 16931 schematron); bad input answers
INVALID_ARGUMENT naming the field; a tenant's plan rules from the config win."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import grpc
import pikepdf
import pytest

from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc
from server.api.errors import field_violations
from server.app import KanalServer
from server.compose.layouts import LayoutRegistry
from server.config import Settings
from tests.client import Keys, channel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import einvoice_validation as ev  # noqa: E402

pytestmark = pytest.mark.integration

LAYOUTS = LayoutRegistry()
KEYS = Keys(("nordkort", "producer"), ("collector", "producer"))
CH = common_pb2
NAMES = {CH.CHANNEL_PRINT: "print", CH.CHANNEL_EMAIL: "email", CH.CHANNEL_SMS: "sms",
         CH.CHANNEL_EINVOICE: "einvoice", CH.CHANNEL_MAILBOX: "mailbox"}
# tenant "collector" sends first reminders by email, whatever the layout says
PLAN = {"collector": {"payment-reminder": {"rules": [
    {"name": "collector-email-first", "when": {"stage": "reminder"}, "primary": ["email"]}]}}}
SAMPLES = [(layout_id, name) for layout_id in ("card-invoice", "payment-reminder", "b2b-invoice")
           for name in sorted(p.name for p in LAYOUTS.get(layout_id).path.glob("sample*.json"))]


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-channels")
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, api_keys=KEYS.api_keys,
                              plan=PLAN)) as server:
        yield server


@pytest.fixture(scope="module")
def documents(kanal: KanalServer):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)


def sample(layout_id: str, name: str = "sample.json") -> dict:
    return json.loads((LAYOUTS.get(layout_id).path / name).read_text(encoding="utf-8"))


def locale_of(layout_id: str, name: str) -> str:
    suffix = Path(name).stem.removeprefix("sample").removeprefix("-")
    layout = LAYOUTS.get(layout_id)
    return suffix if suffix in layout.locales else layout.default_locale


def compose(documents, layout_id: str, data: dict, channels=(), locale: str = ""):
    return documents.Compose(documents_pb2.ComposeRequest(
        layout_id=layout_id, data_json=json.dumps(data, ensure_ascii=False),
        channels=list(channels), locale=locale))


def bad(documents, layout_id: str, data: dict, channels=()) -> list[str]:
    with pytest.raises(grpc.RpcError) as info:
        compose(documents, layout_id, data, channels)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    return [field for field, _ in field_violations(info.value)]


@pytest.mark.parametrize(("layout_id", "name"), SAMPLES)
def test_every_planned_channel_is_archived_and_indexed(documents, kanal, layout_id, name):
    response = compose(documents, layout_id, sample(layout_id, name),
                       locale=locale_of(layout_id, name))
    planned = [NAMES[c] for c in response.plan.channels]
    assert planned and response.plan.reason
    assert [NAMES[o.channel] for o in response.outputs] == planned
    for output in response.outputs:
        stored = kanal.store.get(output.archive_key)  # verifies the sha256 metadata
        assert hashlib.sha256(stored).hexdigest() == output.sha256 and len(stored) == output.size
        assert NAMES[output.channel] in output.archive_key
    document = documents.GetDocument(documents_pb2.GetDocumentRequest(
        document_id=response.document_id))
    assert sorted((NAMES[o.channel], o.sha256, o.archive_key) for o in document.outputs) == \
        sorted((NAMES[o.channel], o.sha256, o.archive_key) for o in response.outputs)
    assert [NAMES[c] for c in document.plan.channels] == planned


def test_sample_plans_follow_the_rules(documents):
    reminder = compose(documents, "payment-reminder", sample("payment-reminder"))
    assert ([NAMES[c] for c in reminder.plan.channels], reminder.plan.reason) == \
        (["sms"], "first-missed-payment")
    assert [NAMES[c] for c in reminder.plan.fallbacks] == ["email", "print"]
    b2b = compose(documents, "b2b-invoice", sample("b2b-invoice"))
    assert (b2b.plan.reason, [NAMES[c] for c in b2b.plan.fallbacks]) == \
        ("peppol-receiver", ["print"])


def test_all_channels_of_card_invoice_and_reminder(documents, kanal):
    wanted = [CH.CHANNEL_PRINT, CH.CHANNEL_EMAIL, CH.CHANNEL_SMS]
    for layout_id in ("card-invoice", "payment-reminder"):
        response = compose(documents, layout_id, sample(layout_id), wanted)
        assert [o.channel for o in response.outputs] == wanted
        sms = response.outputs[2]
        assert sms.media_type == "text/plain; charset=utf-8"
        assert (sms.facts["encoding"], sms.facts["data_coding"]) == ("GSM-7", "0")
        text = kanal.store.get(sms.archive_key).decode()
        assert json.loads(sms.facts["parts"]) == [text] and sms.facts["segments"] == "1"
        assert "KID 20 18445 5" in text and " kr " in text


def test_peppol_ubl_through_the_api_validates(documents, kanal):
    response = compose(documents, "b2b-invoice", sample("b2b-invoice"))
    [einvoice] = response.outputs
    assert (einvoice.channel, einvoice.media_type) == (CH.CHANNEL_EINVOICE, "application/xml")
    assert (einvoice.facts["syntax"], einvoice.facts["document_type"]) == \
        ("peppol-bis-3-ubl", "380")
    report = ev.validate_ubl(kanal.store.get(einvoice.archive_key))
    assert report.errors == [] and report.warnings == []


def test_credit_note_without_peppol_id_is_factur_x(documents, kanal):
    response = compose(documents, "b2b-invoice", sample("b2b-invoice", "sample-credit-note.json"))
    einvoice = next(o for o in response.outputs if o.channel == CH.CHANNEL_EINVOICE)
    assert (einvoice.facts["syntax"], einvoice.facts["document_type"]) == \
        ("factur-x-en16931", "381")
    pdf = kanal.store.get(einvoice.archive_key)
    assert pdf.startswith(b"%PDF-") and b"factur-x.xml" in pdf
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        cii = doc.attachments["factur-x.xml"].get_file().read_bytes()
    assert ev.validate_cii(cii).errors == []


def test_missing_buyer_reference_for_peppol_invoice(documents):
    data = sample("b2b-invoice")
    del data["buyer_reference"], data["order_reference"]
    assert bad(documents, "b2b-invoice", data) == ["$.buyer_reference"]


def test_vat_category_without_rate(documents):
    data = sample("b2b-invoice")
    del data["lines"][2]["vat_rate"]
    assert bad(documents, "b2b-invoice", data) == ["$.lines[2].vat_rate"]


def test_sms_too_long(documents):
    data = sample("card-invoice")
    data["customer"]["name"] = "Šárka Nováková-Lindqvist"  # forces UCS-2: 70 units a segment
    # card-invoice 2.0.0 writes the name in GSM-7 letters to fit its one segment
    response = compose(documents, "card-invoice", data, [CH.CHANNEL_SMS])
    [sms] = response.outputs
    assert (sms.facts["segments"], sms.facts["adapted"]) == ("1", "transliterated")
    # 1.0.0 allows nothing to fit: a requested SMS that cannot fit is the caller's error
    with pytest.raises(grpc.RpcError) as info:
        documents.Compose(documents_pb2.ComposeRequest(
            layout_id="card-invoice", layout_version="1.0.0", data_json=json.dumps(data),
            channels=[CH.CHANNEL_SMS]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(info.value)] == ["sms.max_segments"]


def test_sms_requested_without_mobile(documents):
    data = sample("payment-reminder")
    del data["customer"]["mobile"]
    assert bad(documents, "payment-reminder", data, [CH.CHANNEL_SMS]) == ["$.customer.mobile"]


def test_no_mobile_falls_back_to_email(documents):
    data = sample("payment-reminder")
    del data["customer"]["mobile"]
    response = compose(documents, "payment-reminder", data)
    assert [NAMES[o.channel] for o in response.outputs] == ["email"]
    assert response.plan.reason == "first-missed-payment (sms unreachable)"


def test_tenant_plan_rules_from_config(kanal):
    with channel(kanal.address, KEYS["collector", "producer"]) as ch:
        response = compose(documents_pb2_grpc.DocumentsStub(ch), "payment-reminder",
                           sample("payment-reminder"))
    assert (response.plan.reason, [NAMES[o.channel] for o in response.outputs]) == \
        ("collector-email-first", ["email"])
