"""Digital mailboxes and the Peppol access point end to end: Kanal composes over gRPC, plans
the `mailbox` channel for a customer who prefers it, and its dispatcher sends the print PDF
with its payment fields to local stand-ins of Kivra, Digipost and e-Boks; e-invoices go to
a stand-in access point (HTTP API and outbox folder). The stand-ins are real HTTP servers
following the published request and response shapes (tests/standins)."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import select
from stdnum import luhn

from kanal.v1 import common_pb2, deliveries_pb2, documents_pb2, documents_pb2_grpc
from server.app import KanalServer
from server.config import Settings
from server.delivery.model import Accepted, Outgoing
from server.delivery.providers.sbdh import instance_identifier
from server.printing.queue import print_pieces
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import (
    compose,
    find_delivery,
    fresh_database,
    sample,
    wait_for,
)
from tests.standins import digipost as dp
from tests.standins import eboks as eb
from tests.standins import kivra as kv
from tests.standins.peppol_ap import TOKEN as AP_TOKEN
from tests.standins.peppol_ap import FolderAp, PeppolAp

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"), ("demo", "producer"))
S = deliveries_pb2
MAILBOX, PRINT = common_pb2.CHANNEL_MAILBOX, common_pb2.CHANNEL_PRINT
EINVOICE = common_pb2.CHANNEL_EINVOICE
CPR = "0101701234"
FNR = "15076500565"
UNKNOWN_PEPPOL = "0192:923609016"
RETRY_FAST = {"backoff_seconds": 0.2, "backoff_max_seconds": 1.0, "breaker_failures": 3,
              "breaker_seconds": 1.0, "max_attempts": 50, "timeout": 5}


def personnummer() -> str:
    """A random valid 12-digit personnummer (YYYYMMDDnnnc)."""
    body = f"{random.randint(50, 99)}{random.randint(1, 12):02d}{random.randint(1, 28):02d}" \
           f"{random.randint(0, 999):03d}"
    return "19" + body + luhn.calc_check_digit(body)


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    kivra = kv.Kivra(registered=set())
    digipost = dp.Digipost(root / "digipost.pem", registered={"kari.nordmann#4AB1", FNR})
    eboks = eb.Eboks(registered={CPR})
    ap = PeppolAp(unknown={UNKNOWN_PEPPOL})
    folder = FolderAp(root / "ap-out", root / "ap-receipts")
    for server in (kivra, digipost, eboks, ap):
        server.up()
    folder.start()
    yield kivra, digipost, eboks, ap, folder
    folder.stop()
    for server in (kivra, digipost, eboks, ap):
        server.down()


@pytest.fixture(scope="module")
def kanal(tmp_path_factory, pg_url, standins):
    kivra, digipost, eboks, ap, folder = standins
    databases = fresh_database(pg_url)
    delivery = {
        "lease_seconds": 5, "poll_seconds": 0.2, "purge_seconds": 1,
        "channels": {"mailbox": {"kivra": "kivra-se", "digipost": "digipost-no",
                                 "eboks": "eboks-dk"},
                     "einvoice": "ap"},
        "providers": {
            "kivra-se": {"type": "kivra", "base_url": kivra.url, "client_id": kv.CLIENT_ID,
                         "client_secret": kv.CLIENT_SECRET, **RETRY_FAST},
            "digipost-no": {"type": "digipost", "base_url": digipost.url,
                            "broker_id": dp.BROKER_ID, "key_file": str(digipost.key_file),
                            **RETRY_FAST},
            "eboks-dk": {"type": "eboks", "base_url": eboks.url, "token": eb.TOKEN,
                         **RETRY_FAST},
            "ap": {"type": "peppol-ap", "base_url": ap.url, **RETRY_FAST},
            "ap-folder": {"type": "peppol-folder", "outbox_dir": str(folder.outbox),
                          "receipts_dir": str(folder.receipts), "poll_seconds": 0.1},
        },
        "tenants": {
            "nordkort": {"kivra-se": {"tenant_key": kv.TENANT_KEY},
                         "digipost-no": {"sender_id": "991825827"},
                         "eboks-dk": {"sender_id": eb.SENDER_ID, "document_type_id": "faktura"},
                         "ap": {"token": AP_TOKEN}},
            "demo": {"channels": {"einvoice": "ap-folder"}},
        },
    }
    settings = Settings(listen="127.0.0.1:0", state_dir=tmp_path_factory.mktemp("kanal-mbox"),
                        api_keys=KEYS.api_keys, index_url=next(databases), render_workers=0,
                        delivery=delivery)
    with KanalServer(settings) as server:
        yield server
    next(databases, None)


@pytest.fixture(scope="module")
def documents(kanal):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)


def kivra_invoice(documents, ssn: str) -> str:
    return compose(documents, "card-invoice", sample(
        "card-invoice", "anna@example.se", country="SE", sample_file="sample-sv-SE.json",
        mailbox_ids={"kivra": ssn}, preferences=["mailbox"]))


def archived(kanal: KanalServer, document_id: str, channel_name: str) -> bytes:
    record = kanal.index.get("nordkort", document_id)
    [output] = [o for o in record.outputs if o.channel == channel_name]
    return kanal.store.get(output.key, expected_sha256=output.sha256)


def printed(kanal: KanalServer, document_id: str) -> list:
    with kanal.index.engine.connect() as conn:
        return conn.execute(select(print_pieces.c.document_id).where(
            print_pieces.c.document_id == document_id)).all()


def test_a_card_invoice_for_a_kivra_recipient_reaches_kivra_with_its_payment_fields(
        kanal, documents, standins):
    kivra = standins[0]
    ssn = personnummer()
    kivra.registered.add(ssn)
    document_id = kivra_invoice(documents, ssn)

    mailbox = wait_for(lambda: find_delivery(documents, document_id, MAILBOX,
                                             S.DELIVERY_STATE_DELIVERED), "Kivra's 201")
    [content] = [c for c in kivra.contents if c.ssn == ssn]
    assert content.type == "invoice" and content.subject == "Kontoutdrag kreditkort"
    assert content.payment == {
        "payable": True, "currency": "SEK", "method": "1", "account": "56784127",
        "options": [{"due_date": "2026-03-31", "amount": "12691.81", "type": "SE_OCR",
                     "reference": "460277110223"}]}
    assert content.pdf == archived(kanal, document_id, "mailbox")  # the print PDF itself
    assert kanal.delivery.store.row(mailbox.delivery_id)["recipient"] == f"kivra:{ssn}"
    assert mailbox.provider_message_id == content.key
    assert [e.state for e in mailbox.events] == [
        S.DELIVERY_STATE_QUEUED, S.DELIVERY_STATE_SENDING, S.DELIVERY_STATE_DELIVERED]
    assert find_delivery(documents, document_id, PRINT) is None  # no letter as well


def test_a_not_registered_kivra_recipient_falls_back_to_print(kanal, documents, standins):
    kivra = standins[0]
    ssn = personnummer()  # valid, but not a Kivra user
    document_id = kivra_invoice(documents, ssn)

    letter = wait_for(lambda: find_delivery(documents, document_id, PRINT,
                                            S.DELIVERY_STATE_SENT), "the print fallback")
    mailbox = find_delivery(documents, document_id, MAILBOX)
    assert mailbox.state == S.DELIVERY_STATE_FELL_BACK and letter.fallback_of == mailbox.delivery_id
    [bounced] = [e for e in mailbox.events if e.state == S.DELIVERY_STATE_BOUNCED]
    assert "not registered" in bounced.reason and "usermatch" in bounced.reason
    assert printed(kanal, document_id) == [(document_id,)]
    assert not [c for c in kivra.contents if c.ssn == ssn]


def test_a_digipost_invoice_carries_kid_amount_account_and_due_date(kanal, documents,
                                                                    standins):
    digipost = standins[1]
    document_id = compose(documents, "card-invoice", sample(
        "card-invoice", "kari@example.no", preferences=["mailbox"],
        mailbox_ids={"digipost": "kari.nordmann#4AB1"}))
    mailbox = wait_for(lambda: find_delivery(documents, document_id, MAILBOX,
                                             S.DELIVERY_STATE_DELIVERED), "Digipost's DELIVERED")
    [letter] = [x for x in digipost.letters if x.message_id == mailbox.message_id]
    assert letter.recipient == "kari.nordmann#4AB1" and letter.subject == "Kredittkortfaktura"
    assert letter.invoice == {"due-date": "2026-03-25T00:00:00+01:00", "sum": "34708.17",
                              "creditor-account": "15031234562", "kid": "201844551238"}
    assert letter.pdf == archived(kanal, document_id, "mailbox")

    # By fødselsnummer too; and a person Digipost does not know gets the letter instead.
    by_id = compose(documents, "card-invoice", sample(
        "card-invoice", "kari@example.no", preferences=["mailbox"], mailbox_ids={},
        national_id=FNR))
    wait_for(lambda: find_delivery(documents, by_id, MAILBOX, S.DELIVERY_STATE_DELIVERED),
             "Digipost by fødselsnummer")
    unknown = compose(documents, "card-invoice", sample(
        "card-invoice", "kari@example.no", preferences=["mailbox"], mailbox_ids={},
        national_id="17054026641"))  # a valid fødselsnummer Digipost does not know
    wait_for(lambda: find_delivery(documents, unknown, PRINT), "the print fallback")
    assert any("UNKNOWN_RECIPIENT" in e.reason for e in find_delivery(
        documents, unknown, MAILBOX).events)


def test_a_norwegian_customer_living_in_sweden_reaches_digipost_by_fodselsnummer(
        kanal, documents, standins):
    # The mailbox of the number's scheme, not of the address: Kivra finds people by
    # personnummer (was: routed to Kivra by the Swedish address, refused, and printed).
    kivra, digipost = standins[0], standins[1]
    document_id = compose(documents, "card-invoice", sample(
        "card-invoice", "kari@example.se", preferences=["mailbox"], mailbox_ids={},
        national_id=FNR, address={"lines": ["Drottninggatan 1"], "postal_code": "11151",
                                  "city": "Stockholm", "country": "SE"}))
    mailbox = wait_for(lambda: find_delivery(documents, document_id, MAILBOX,
                                             S.DELIVERY_STATE_DELIVERED),
                       "Digipost by fødselsnummer for an address in Sweden",
                       explain=lambda: find_delivery(documents, document_id, MAILBOX))
    assert kanal.delivery.store.row(mailbox.delivery_id)["recipient"] == f"digipost:{FNR}"
    [letter] = [x for x in digipost.letters if x.message_id == mailbox.message_id]
    assert letter.recipient == FNR
    assert letter.pdf == archived(kanal, document_id, "mailbox")
    assert find_delivery(documents, document_id, PRINT) is None  # no letter as well
    assert not [c for c in kivra.contents if c.ssn.endswith(FNR)]


def test_e_boks_by_cpr(kanal, documents, standins):
    eboks = standins[2]
    document_id = compose(documents, "card-invoice", sample(
        "card-invoice", "kari@example.no", country="DK", preferences=["mailbox"],
        mailbox_ids={}, national_id=CPR))
    mailbox = wait_for(lambda: find_delivery(documents, document_id, MAILBOX,
                                             S.DELIVERY_STATE_DELIVERED), "e-Boks")
    message = eboks.messages[mailbox.message_id]
    assert message.cpr == CPR and message.document_type_id == "faktura"
    assert message.pdf == archived(kanal, document_id, "mailbox")
    assert kanal.delivery.store.row(mailbox.delivery_id)["recipient"] == f"eboks:{CPR}"


def test_an_einvoice_reaches_the_access_point_and_its_receipt_marks_it_delivered(
        kanal, documents, standins):
    ap = standins[3]
    document_id = compose(documents, "b2b-invoice", sample("b2b-invoice", "ap@example.no"))
    einvoice = wait_for(lambda: find_delivery(documents, document_id, EINVOICE,
                                              S.DELIVERY_STATE_DELIVERED), "the AP's receipt")
    [sent] = [s for s in ap.sent if s.instance == instance_identifier(einvoice.message_id)]
    assert sent.receiver == "0192:987654325" and sent.sender.startswith("0192:")
    assert sent.document_type.startswith("urn:oasis:names:specification:ubl:schema:xsd:"
                                         "Invoice-2::Invoice##urn:cen.eu:en16931:2017")
    assert sent.process == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert b"987654325" in sent.ubl and sent.ubl.lstrip().startswith(b"<Invoice")
    assert einvoice.provider_message_id == sent.as4_message_id
    assert "AS4 receipt" in einvoice.events[-1].reason

    gone = compose(documents, "b2b-invoice", sample(
        "b2b-invoice", "ap@example.no", peppol_id=UNKNOWN_PEPPOL))
    wait_for(lambda: find_delivery(documents, gone, PRINT), "the print fallback")
    assert any("no SMP" in e.reason or "SMP endpoint" in e.reason
               for e in find_delivery(documents, gone, EINVOICE).events)


def test_the_access_point_outbox_folder(kanal, standins):
    folder = standins[4]
    with channel(kanal.address, KEYS["demo", "producer"]) as ch:
        demo = documents_pb2_grpc.DocumentsStub(ch)
        document_id = compose(demo, "b2b-invoice", sample("b2b-invoice", "ap@example.no"))
        einvoice = wait_for(lambda: find_delivery(demo, document_id, EINVOICE,
                                                  S.DELIVERY_STATE_DELIVERED),
                            "the AP's report from its receipts folder")
    instance = instance_identifier(einvoice.message_id)
    assert folder.taken.count(f"{instance}.xml") == 1
    assert einvoice.provider_message_id == instance and "AS4 receipt" in einvoice.reason
    assert (folder.receipts / "processed" / f"{instance}.json").exists()
    # Handed over already: a resend (an answer lost) writes nothing again.
    provider = kanal.delivery.dispatcher.slots["ap-folder"].provider
    ubl = kanal.store.get(kanal.index.get("demo", document_id).outputs[0].key)
    again = provider.send(Outgoing(einvoice.delivery_id, "demo", document_id, "c",
                                   "einvoice", "", ubl, "application/xml",
                                   einvoice.message_id, 2))
    assert isinstance(again, Accepted) and "already" in again.reason
    assert not list(folder.outbox.glob("*.xml"))


def test_an_outage_of_each_provider_then_recovery_delivers_each_exactly_once(
        kanal, documents, standins):
    kivra, digipost, eboks, ap, _ = standins
    ssn = personnummer()
    kivra.registered.add(ssn)
    for server in (kivra, digipost, eboks, ap):
        server.down()
    try:
        ids = {
            "kivra": kivra_invoice(documents, ssn),
            "digipost": compose(documents, "card-invoice", sample(
                "card-invoice", "kari@example.no", preferences=["mailbox"],
                mailbox_ids={"digipost": "kari.nordmann#4AB1"})),
            "eboks": compose(documents, "card-invoice", sample(
                "card-invoice", "kari@example.no", country="DK", preferences=["mailbox"],
                mailbox_ids={}, national_id=CPR)),
            "ap": compose(documents, "b2b-invoice", sample("b2b-invoice", "ap@example.no")),
        }
        channel_of = {"kivra": MAILBOX, "digipost": MAILBOX, "eboks": MAILBOX, "ap": EINVOICE}
        wait_for(lambda: all((d := find_delivery(documents, i, channel_of[k])) and d.attempts >= 2
                             and d.state == S.DELIVERY_STATE_QUEUED for k, i in ids.items()),
                 "retries during the outage")
    finally:
        for server in (kivra, digipost, eboks, ap):
            server.up()
    done = {k: wait_for(lambda k=k, i=i: find_delivery(documents, i, channel_of[k],
                                                       S.DELIVERY_STATE_DELIVERED),
                        f"{k} after the outage", 60) for k, i in ids.items()}
    assert len([c for c in kivra.contents if c.ssn == ssn]) == 1 and kivra.duplicates == 0
    assert [x.message_id for x in digipost.letters].count(done["digipost"].message_id) == 1
    assert done["eboks"].message_id in eboks.messages and eboks.repeats == 0
    instance = instance_identifier(done["ap"].message_id)
    assert [s.instance for s in ap.sent].count(instance) == 1
    for delivery in done.values():
        assert [a.outcome for a in delivery.attempt_log][-1] == "accepted"
        assert {a.outcome for a in delivery.attempt_log[:-1]} == {"retry"}
        assert "Connection refused" in delivery.attempt_log[0].reason


def test_kivra_receives_the_identical_payload_on_a_resend(kanal, documents, standins):
    """Kivra's duplicate control: a resend after a lost answer is the same payload."""
    kivra = standins[0]
    ssn = personnummer()
    kivra.registered.add(ssn)
    document_id = kivra_invoice(documents, ssn)
    mailbox = wait_for(lambda: find_delivery(documents, document_id, MAILBOX,
                                             S.DELIVERY_STATE_DELIVERED), "Kivra")
    provider = kanal.delivery.dispatcher.slots["kivra-se"].provider
    row = kanal.delivery.store.row(mailbox.delivery_id)
    again = provider.send(Outgoing(
        mailbox.delivery_id, "nordkort", document_id, "c", "mailbox", row["recipient"],
        archived(kanal, document_id, "mailbox"), "application/pdf", mailbox.message_id, 2,
        details=json.loads(row["details"])))
    assert isinstance(again, Accepted) and again.provider_message_id == mailbox.provider_message_id
    assert kivra.duplicates == 1 and len([c for c in kivra.contents if c.ssn == ssn]) == 1



def test_an_einvoice_no_access_point_carries_is_archived_and_not_sent(kanal, documents,
                                                                      standins):
    # QA: a Factur-X PDF (a consumer without a Peppol id) and a Finvoice were handed to the
    # Peppol AP and failed for good ("not XML", "not a UBL invoice"), with a failed webhook.
    # They are archived; nobody here carries them, so they are not planned for delivery.
    ap = standins[3]
    before = len(ap.sent)
    cases = [
        ("factur-x-en16931", compose(documents, "card-invoice", sample(
            "card-invoice", "kari@example.no"))),
        # a consumer with an e-invoice address: nordkort's e-invoice provider is the
        # Peppol AP, no Finvoice operator (server.delivery.providers.finvoice)
        ("finvoice-3.0", compose(documents, "card-invoice", sample(
            "card-invoice", "aino@example.fi", country="FI", sample_file="samples/fi-FI.json",
            finvoice={"address": "FI4950009420028730", "intermediator": "OKOYFIHH"}))),
        ("factur-x-en16931", compose(documents, "b2b-invoice", sample(
            "b2b-invoice", "ekonomi@example.se", country="SE",
            sample_file="samples/sv-SE.json"))),
    ]
    for syntax, document_id in cases:
        record = kanal.index.get("nordkort", document_id)
        [einvoice] = [o for o in record.outputs if o.channel == "einvoice"]
        assert einvoice.facts["syntax"] == syntax  # rendered and archived ...
        found = documents.GetDocument(documents_pb2.GetDocumentRequest(
            document_id=document_id))
        assert found.deliveries, syntax  # ... its other channels planned ...
        assert find_delivery(documents, document_id, EINVOICE) is None, syntax  # ... not it
    wait_for(lambda: find_delivery(documents, cases[2][1], PRINT, S.DELIVERY_STATE_SENT),
             "the b2b invoice's letter (factur-x-and-paper)")

    # Asked for the e-invoice alone: the plan's print fallback takes over at once, not
    # after the AP refused it.
    asked = compose(documents, "card-invoice", sample("card-invoice", "kari@example.no"),
                    channels=[EINVOICE])
    letter = wait_for(lambda: find_delivery(documents, asked, PRINT), "the print fallback")
    einvoice = find_delivery(documents, asked, EINVOICE)
    assert letter.fallback_of == einvoice.delivery_id
    assert einvoice.state == S.DELIVERY_STATE_FELL_BACK and einvoice.attempts == 0
    assert "archived, not sent" in einvoice.events[0].reason
    assert len(ap.sent) == before  # nothing reached the access point
