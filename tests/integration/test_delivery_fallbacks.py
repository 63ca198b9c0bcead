"""The fallback chain end to end: Kanal (in-process, on PostgreSQL, its embedded SeaweedFS)
composes over gRPC an SMS-first payment reminder (plan: SMS, then e-mail, then print); the
SMS goes to the HTTP SMS gateway's stand-in, which refuses the number (a bounce), and the
plan's fallbacks take over. No e-mail provider is configured here; print is built in.

* a fallback channel nobody sends is skipped with that reason and the chain goes on: the
  letter is printed (M1);
* a fallback whose print page cannot hold the document is known while composing: the
  Compose response, GetDocument and the index list it in `plan.skipped` (H2);
* a fallback that cannot be rendered when it is due (a document accepted before the check,
  here: composed against a layouts folder without the envelope window's limit) ends the
  chain in a final state with its reason, an event and a webhook, never a retry loop (H2).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from archive.metadata import decode_metadata_value
from kanal.v1 import common_pb2, deliveries_pb2, documents_pb2, documents_pb2_grpc
from server.app import KanalServer
from server.cli import main
from server.compose.layouts import LayoutRegistry
from server.config import DEFAULT_LAYOUTS_DIR, Settings
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import (
    WebhookReceiver,
    find_delivery,
    fresh_database,
    sample,
    wait_for,
)
from tests.standins.sms_gateway import INVALID_NUMBERS, TOKEN, SmsGateway

pytestmark = pytest.mark.integration

KEYS = Keys(("demo", "producer"), ("demo", "admin"))
S = deliveries_pb2
SMS, EMAIL, PRINT = common_pb2.CHANNEL_SMS, common_pb2.CHANNEL_EMAIL, common_pb2.CHANNEL_PRINT
REFUSED = sorted(INVALID_NUMBERS)[0]  # the gateway answers 422 invalid_number
SKIP_WHY = "the print page cannot hold this document's text"


@pytest.fixture(scope="module")
def gateway():
    with SmsGateway() as gateway:
        yield gateway


@pytest.fixture(scope="module")
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def database(pg_url):
    yield from fresh_database(pg_url)


def delivery(gateway: SmsGateway, webhook: WebhookReceiver, *, dispatch: bool = True) -> dict:
    """`[delivery]`: SMS by the gateway (one attempt), no e-mail provider, print built in."""
    return {
        "dispatch": dispatch, "lease_seconds": 5, "poll_seconds": 0.2, "purge_seconds": 1,
        "channels": {"sms": "gateway"},
        "providers": {"gateway": {
            "type": "sms-gateway", "url": f"{gateway.url}/v1/messages", "token": TOKEN,
            "timeout": 5, "max_attempts": 1}},
        "tenants": {"demo": {"sms_sender": "Demobank", "webhook_url": webhook.url,
                             "webhook_secret": "whsec-test"}},
        "rules": {"quiet_hours": {"sms": {}}},  # these tests run at any hour
    }


def settings(state_dir: Path, database: str, delivery: dict, **more) -> Settings:
    return Settings(listen="127.0.0.1:0", state_dir=state_dir, api_keys=KEYS.api_keys,
                    index_url=database, render_workers=0, delivery=delivery, **more)


@pytest.fixture(scope="module")
def kanal(tmp_path_factory, database, gateway, webhook):
    with KanalServer(settings(tmp_path_factory.mktemp("kanal-fallbacks"), database,
                              delivery(gateway, webhook))) as server:
        yield server


@pytest.fixture(scope="module")
def documents(kanal):
    with channel(kanal.address, KEYS["demo", "producer"]) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)


def reminder(**customer) -> str:
    """The payment reminder's sample (plan: SMS first, then e-mail, then print) to a number
    the gateway refuses; `customer` replaces the customer's fields."""
    return sample("payment-reminder", "kari@example.no", mobile=REFUSED, **customer)


def long_address() -> dict:
    """Name, address lines and city at their longest: the address block no longer fits
    the envelope window (the tester's max-payment-reminder-Wi.json, its address part)."""
    words = "Wi " * 40
    return {"name": words[:70], "address": {"lines": [words[:70], words[:70]],
                                            "postal_code": "0358", "city": words[:60],
                                            "country": "NO"}}


def events_of(webhook: WebhookReceiver, delivery_id: str) -> list[dict]:
    posted = [json.loads(body) for _, body in webhook.received]
    return [p for p in posted if p["delivery_id"] == delivery_id]


def test_a_fallback_without_a_provider_is_skipped_and_the_letter_is_printed(
        documents, webhook):
    composed = documents.Compose(documents_pb2.ComposeRequest(
        layout_id="payment-reminder", data_json=reminder()))
    assert list(composed.plan.channels) == [SMS]
    assert list(composed.plan.fallbacks) == [EMAIL, PRINT] and not composed.plan.skipped

    printed = wait_for(lambda: find_delivery(documents, composed.document_id, PRINT),
                       "the print fallback after the e-mail one was skipped", timeout=30)
    sms = find_delivery(documents, composed.document_id, SMS)
    assert printed.fallback_of == sms.delivery_id
    assert sms.state == S.DELIVERY_STATE_FELL_BACK
    assert "email fallback skipped: no email provider configured" in sms.reason
    assert f"-> print delivery {printed.delivery_id}" in sms.reason
    # nothing was rendered or recorded for the e-mail nobody could send
    assert find_delivery(documents, composed.document_id, EMAIL) is None
    # the skip is an event of its own: the bank's system is told why no e-mail came
    skipped = wait_for(lambda: [e for e in events_of(webhook, sms.delivery_id)
                                if "email fallback skipped" in e["reason"]],
                       "the skip's webhook")
    assert skipped[0]["state"] == "bounced"


def test_a_fallback_the_print_page_cannot_carry_is_skipped_while_composing(
        kanal, documents):
    composed = documents.Compose(documents_pb2.ComposeRequest(
        layout_id="payment-reminder", data_json=reminder(**long_address())))
    # the reminder is still owed by SMS; e-mail (its PDF attached) and print cannot carry it
    assert list(composed.plan.channels) == [SMS] and not composed.plan.fallbacks
    assert [s.channel for s in composed.plan.skipped] == [EMAIL, PRINT]
    for skipped in composed.plan.skipped:
        assert skipped.reason.startswith(SKIP_WHY) and "envelope window" in skipped.reason
        assert skipped.field == "$.customer.name"
    # GetDocument and the index say the same
    record = documents.GetDocument(documents_pb2.GetDocumentRequest(
        document_id=composed.document_id))
    assert list(record.plan.skipped) == list(composed.plan.skipped)
    assert not record.plan.fallbacks
    indexed = kanal.index.get("demo", composed.document_id)
    assert [s.channel for s in indexed.skipped_channels] == ["email", "print"]
    # the SMS bounces and nothing is left to try: a final state, no fallback rows
    sms = wait_for(lambda: find_delivery(documents, composed.document_id, SMS,
                                         S.DELIVERY_STATE_BOUNCED), "the SMS bounce")
    assert not sms.fallbacks
    assert [d.channel for d in documents.GetDocument(documents_pb2.GetDocumentRequest(
        document_id=composed.document_id)).deliveries] == [SMS]


@pytest.fixture
def own_database(pg_url):
    yield from fresh_database(pg_url)


def test_a_fallback_that_cannot_be_rendered_when_due_ends_visibly(
        tmp_path, own_database, gateway, webhook, capsys):
    """Documents accepted before the compose-time check (or by a layout that checked less)
    still sit in outboxes: their fallback's render is refused when it is due. (A database
    of its own: the module's server must not dispatch these rows.)"""
    database = own_database
    loose = tmp_path / "layouts"
    shutil.copytree(DEFAULT_LAYOUTS_DIR, loose)
    # the newest version's own folder (2.2.0 is whole; a based version's is its base's)
    newest = LayoutRegistry().get("payment-reminder").path.name
    manifest = loose / "payment-reminder" / newest / "manifest.toml"
    text = manifest.read_text(encoding="utf-8")
    assert "\nwindow_mm = " in text
    manifest.unlink()  # a real copy: never write through to the project's file
    manifest.write_text("\n".join(line for line in text.splitlines()
                                  if not line.startswith("window_mm = ")), encoding="utf-8")
    state = tmp_path / "state"
    # composed by a server that does not dispatch (a job worker), its layouts checking less
    with KanalServer(settings(state, database, delivery(gateway, webhook, dispatch=False),
                              layouts_dir=loose)) as composer, channel(
            composer.address, KEYS["demo", "producer"]) as ch:
        composed = documents_pb2_grpc.DocumentsStub(ch).Compose(
            documents_pb2.ComposeRequest(layout_id="payment-reminder",
                                         data_json=reminder(**long_address())))
    assert list(composed.plan.fallbacks) == [EMAIL, PRINT]

    # the dispatching server, with the project's layouts, sends the SMS; it bounces
    with KanalServer(settings(state, database, delivery(gateway, webhook))) as server, channel(
            server.address, KEYS["demo", "producer"]) as ch:
        documents = documents_pb2_grpc.DocumentsStub(ch)
        sms = wait_for(lambda: (d := find_delivery(documents, composed.document_id, SMS,
                                                   S.DELIVERY_STATE_BOUNCED))
                       and not d.fallbacks and d,
                       "the SMS's chain to end", timeout=30,
                       explain=lambda: find_delivery(documents, composed.document_id, SMS))
        # e-mail is skipped (no provider), print with the print page's refusal; the chain
        # ends there
        assert "email fallback skipped: no email provider configured" in sms.reason
        assert f"print fallback skipped: cannot be rendered: {SKIP_WHY}" in sms.reason
        assert "envelope window" in sms.reason
        assert [d.channel for d in documents.GetDocument(documents_pb2.GetDocumentRequest(
            document_id=composed.document_id)).deliveries] == [SMS]
        events = [e for e in sms.events if "fallback skipped" in e.reason]
        assert len(events) == 2
        # a webhook for it, as for any failure
        wait_for(lambda: [e for e in events_of(webhook, sms.delivery_id)
                          if "print fallback skipped" in e["reason"]], "the skip's webhook")
        # and it stays so: no retry round renders it again (housekeeping runs every 5 s)
        time.sleep(6)
        again = find_delivery(documents, composed.document_id, SMS)
        assert len(again.events) == len(sms.events) and again.reason == sms.reason
        # the operators' CLI shows it
        cli = ["deliveries", "--address", server.address, "--key", KEYS["demo", "admin"]]
        capsys.readouterr()
        assert main([*cli, "list", "--document", composed.document_id]) == 0
        [listed] = [line for line in capsys.readouterr().out.splitlines()
                    if sms.delivery_id in line]
        assert "bounced" in listed and "…print fallback skipped: cannot be rendered" in listed
        assert main([*cli, "show", sms.delivery_id]) == 0
    shown = capsys.readouterr().out
    assert "print fallback skipped: cannot be rendered" in shown


def test_a_fallback_is_archived_with_the_documents_own_metadata(kanal, documents):
    # QA: print.pdf rendered for a fallback said `locale-decision: "request: given in the
    # request"` while the document's other objects and the index said `rule: $.currency =
    # NOK -> NO`: it was composed again with the resolved locale as if requested. A
    # Swedish reminder (SEK -> sv-SE, not the layout's default nb-NO) shows it best.
    for sample_file, country in (("sample.json", "NO"), ("sample-sv-SE.json", "SE")):
        document_id = compose_reminder(documents, sample_file, country)
        wait_for(lambda: find_delivery(documents, document_id, PRINT),  # noqa: B023
                 "the print fallback", timeout=30)
        record = kanal.index.get("demo", document_id)
        assert record.locale_decision.startswith("rule: $.currency = "), record.locale_decision
        keys = {o.channel: o.key for o in record.outputs}
        sms, fallback = (kanal.store.head(keys[c]).metadata for c in ("sms", "print"))
        assert decode_metadata_value(fallback["locale-decision"]) == record.locale_decision
        own = {"channel", "facts", "pages"}  # the output's, not the document's
        assert {k: v for k, v in fallback.items() if k not in own} == {
            k: v for k, v in sms.items() if k not in own}  # locale, decision, input hash ...


def compose_reminder(documents, sample_file: str, country: str) -> str:
    return documents.Compose(documents_pb2.ComposeRequest(
        layout_id="payment-reminder", data_json=sample(
            "payment-reminder", "kari@example.no", mobile=REFUSED, country=country,
            sample_file=sample_file))).document_id
