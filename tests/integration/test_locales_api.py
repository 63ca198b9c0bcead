"""Every 2.0.0 layout x the nine locales of the eight countries, end to end over gRPC (issue
15): each country's sample composes with the locale its data decides, the archived print PDF
(the layout's engine) and a render with the other engine say the locale's labels, amounts,
payment reference and the address block inside the country's address field; e-mail and SMS
speak the locale; the archive keeps the document for the issuer's country's period."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime

import pytest

from archive.retention import RetentionPolicy
from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc
from server.app import KanalServer
from server.channels.pdf import PrintEngines, engine_of
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import PRINT_ENGINES, LayoutRegistry
from server.compose.model import Channel, Composition
from server.config import Settings
from tests.client import Keys, channel
from tests.pdf_inspect import Box, find_text, normalise, pages_text

pytestmark = pytest.mark.integration

LAYOUTS = LayoutRegistry()
LOCALES = ("nb-NO", "sv-SE", "da-DK", "fi-FI", "sv-FI", "de-DE", "de-AT", "pl-PL", "en-GB")
# the document layouts (they print); the NPS survey (e-mail and SMS) speaks five locales
CASES = [(layout.id, locale) for layout in LAYOUTS.latest() if Channel.PRINT in layout.channels
         for locale in LOCALES]
KEYS = Keys(("nordkort", "producer"))
CHANNELS = {"print": common_pb2.CHANNEL_PRINT, "email": common_pb2.CHANNEL_EMAIL,
            "sms": common_pb2.CHANNEL_SMS}
ENGINES = PrintEngines()


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-locales")
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, api_keys=KEYS.api_keys,
                              max_data_bytes=512 * 1024)) as server:
        yield server


@pytest.fixture(scope="module")
def documents(kanal: KanalServer):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)


def sample_text(layout_id: str, locale: str) -> str:
    layout = LAYOUTS.get(layout_id)
    return (layout.path / layout.manifest["samples"][locale]).read_text(encoding="utf-8")


def what_it_must_say(c: Composition) -> list[str]:
    """The locale's own words on the first page's reader path, by layout."""
    labels = c.context["labels"]
    if c.layout_id == "card-invoice":
        return [labels["document_title"], labels["due_date"], labels["summary_title"],
                labels["new_balance"], c.context["summary"]["amount_due"]]
    if c.layout_id == "payment-reminder":
        return [c.context["title"], labels["new_due_date"], labels["fee"], labels["total"],
                c.context["claim"]["total"]]
    if c.layout_id == "b2b-invoice":
        return [labels["title_invoice"], labels["due_date"], labels["vat_title"],
                labels["payable"]]
    return [c.context["letter"]["greeting"], labels["closing"]]


def inside(box: Box, field: dict, play: float = 0.6) -> bool:
    area = Box(field["x"] - play, field["y"] - play, field["x"] + field["width"] + play,
               field["y"] + field["height"] + play)
    return box.inside(area)


def check_pdf(pdf: bytes, c: Composition, engine: str) -> None:
    whole = normalise(" ".join(pages_text(pdf)))
    for words in what_it_must_say(c):
        assert normalise(words) in whole, f"{c.layout_id} {c.locale} ({engine}): {words!r}"
    if c.payment_reference is not None and c.amount_due:
        reference = c.payment_reference
        assert reference.display in whole or reference.value in whole.replace(" ", "")
    field = c.context["address_field"]
    for line in c.context["window"]:
        boxes = find_text(pdf, line)
        assert any(inside(box, field) for box in boxes), (
            f"{c.layout_id} {c.locale} ({engine}): {line!r} at {boxes} is not in the "
            f"{field['id']} address field")


@pytest.mark.parametrize(("layout_id", "locale"), CASES)
def test_every_layout_in_every_locale(kanal, documents, layout_id, locale):
    layout = LAYOUTS.get(layout_id)
    data = sample_text(layout_id, locale)
    wanted = [CHANNELS[c] for c in ("print", "email", "sms") if Channel(c) in layout.channels]
    response = documents.Compose(documents_pb2.ComposeRequest(
        tenant="nordkort", layout_id=layout_id, data_json=data, channels=wanted))
    assert response.locale == locale  # the data decided it: no locale in the request

    expected = compose(ComposeRequest(
        tenant="nordkort", layout=layout, data=data, document_id="x",
        now=datetime.now(UTC), channels=tuple(Channel(c) for c in ("print", "email", "sms")
                                              if Channel(c) in layout.channels)))
    outputs = {o.channel: o for o in response.outputs}

    # print, archived by the server with the layout's engine, and the other engine here
    pdf = kanal.store.get(outputs[common_pb2.CHANNEL_PRINT].archive_key)
    check_pdf(pdf, expected, engine_of(layout))
    for engine, key in PRINT_ENGINES.items():
        if engine != engine_of(layout) and layout.section("print").get(key):
            check_pdf(ENGINES.engine(engine).render(layout, expected).content, expected, engine)

    if common_pb2.CHANNEL_EMAIL in outputs:
        message = email.message_from_bytes(kanal.store.get(
            outputs[common_pb2.CHANNEL_EMAIL].archive_key), policy=email.policy.default)
        html = next(p for p in message.walk() if p.get_content_type() == "text/html")
        assert f'lang="{locale[:2]}"' in html.get_content()
        plain = next(p for p in message.walk() if p.get_content_type() == "text/plain")
        assert normalise(what_it_must_say(expected)[1]) in normalise(plain.get_content())
    if common_pb2.CHANNEL_SMS in outputs:
        text = kanal.store.get(outputs[common_pb2.CHANNEL_SMS].archive_key).decode()
        assert expected.context["payment"]["reference"] in text

    # the archive keeps it for the issuer's country's period (archive/retention.toml)
    document = documents.GetDocument(documents_pb2.GetDocumentRequest(
        tenant="nordkort", document_id=response.document_id))
    created = response.created_at.ToDatetime(tzinfo=UTC)
    years = RetentionPolicy.default().years(expected.kind.value,
                                            expected.context["sender_country"])
    assert document.retain_until.ToDatetime(tzinfo=UTC) == datetime(
        created.year + years + 1, 1, 1, tzinfo=UTC)


def test_a_reminder_fee_over_the_cap_is_invalid_argument_over_grpc(documents):
    import grpc

    from server.api.errors import field_violations
    data = json.loads(sample_text("payment-reminder", "da-DK"))
    data["reminder"]["fee"] = "150.00"  # renteloven § 9 b: at most 100 kr
    with pytest.raises(grpc.RpcError) as info:
        documents.Compose(documents_pb2.ComposeRequest(
            tenant="nordkort", layout_id="payment-reminder", data_json=json.dumps(data)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "$.reminder.fee" in dict(field_violations(info.value))
