"""Delivery end to end through a real MTA: Kanal (in-process, on PostgreSQL) composes over
gRPC, its dispatcher sends through a private Postfix (STARTTLS) into local Maildirs, and
Postfix's real DSNs come back to Kanal's bounce listener."""

from __future__ import annotations

import json
import re
import smtplib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dkim
import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from kanal.v1 import (
    common_pb2,
    deliveries_pb2,
    deliveries_pb2_grpc,
    documents_pb2,
    portal_pb2,
    portal_pb2_grpc,
)
from server.cli import main
from server.delivery.tables import delivery_inputs
from server.delivery.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from server.printing.queue import print_pieces
from tests.client import channel
from tests.integration.delivery_fixtures import (
    DkimKey,
    WebhookReceiver,
    address,
    compose,
    fresh_database,
    mailbox_user,
    sample,
    start_postfix,
    wait_for,
)
from tests.integration.delivery_fixtures import find_delivery as delivery
from tests.integration.smtp_delivery_fixtures import (
    KEYS,
    QUIET_COUNTRY,
    documents_stub,
    start_kanal,
)
from tests.postfix import BOUNCE_DOMAIN, DOMAIN, IDN_DOMAIN, IDN_DOMAIN_ASCII

pytestmark = pytest.mark.integration

S = deliveries_pb2


@pytest.fixture(scope="module")
def postfix():
    postfix = start_postfix()
    yield postfix
    postfix.remove()


@pytest.fixture(scope="module")
def database(pg_url):
    yield from fresh_database(pg_url)


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory):
    return DkimKey(tmp_path_factory.mktemp("dkim"))


@pytest.fixture(scope="module")
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def kanal(tmp_path_factory, postfix, database, dkim_key, webhook):
    yield from start_kanal(tmp_path_factory.mktemp("kanal-state"), postfix, database,
                           dkim_key, webhook)


@pytest.fixture(scope="module")
def documents(kanal):
    yield from documents_stub(kanal)


def test_a_card_invoice_composed_in_real_time_reaches_the_mailbox(documents, postfix,
                                                                  dkim_key, webhook):
    user = mailbox_user()
    document_id = compose(documents, "card-invoice", sample("card-invoice", address(user)))

    [raw] = wait_for(lambda: postfix.mailbox(user), "the e-mail in the Postfix mailbox")
    message = postfix.messages(user)[0]
    assert message["Message-ID"] == f"<{document_id}@fjordbank.no>"
    assert message["To"].addresses[0].addr_spec == address(user)
    assert "Kredittkortfaktura" in message["Subject"] or message["Subject"]
    assert message["List-Unsubscribe"] is None  # an invoice is not marketing
    assert any(p.get_content_type() == "application/pdf" for p in message.walk())
    # Signed with the tenant's DKIM key (verified against its public key as DNS would serve it)
    assert message["DKIM-Signature"] is not None
    assert dkim.verify(raw, dnsfunc=dkim_key.dns)
    # VERP: the return path names this delivery
    email = wait_for(lambda: delivery(documents, document_id, common_pb2.CHANNEL_EMAIL,
                                      S.DELIVERY_STATE_DELIVERED), "the success DSN")
    assert message["Return-Path"].startswith(f"<bounces+{email.delivery_id}-")
    assert message["Return-Path"].endswith(f"@{BOUNCE_DOMAIN}>")
    assert email.message_id == message["Message-ID"]
    states = [e.state for e in email.events]
    assert states == [S.DELIVERY_STATE_QUEUED, S.DELIVERY_STATE_SENDING,
                      S.DELIVERY_STATE_SENT, S.DELIVERY_STATE_DELIVERED]
    assert email.events[2].reason.startswith("250 2.0.0 Ok: queued as")  # Postfix's words
    assert email.provider_message_id and email.provider_message_id in email.events[2].reason
    assert "2.0.0" in email.events[3].reason and "delivered" in email.events[3].reason
    [attempt] = email.attempt_log
    assert attempt.outcome == "accepted" and attempt.message_id == message["Message-ID"]

    # Channels without a provider here (SMS, e-invoice) say so; only the primary falls back.
    sms = delivery(documents, document_id, common_pb2.CHANNEL_SMS)
    assert sms.state == S.DELIVERY_STATE_FAILED and "no sms provider" in sms.reason

    # The bank's system was told by signed webhooks, in order.
    posted = wait_for(lambda: [json.loads(b) for h, b in webhook.received
                               if json.loads(b)["delivery_id"] == email.delivery_id
                               and json.loads(b)["state"] == "delivered"],
                      "the delivered webhook")
    assert posted
    for headers, body in webhook.received:
        assert verify("whsec-test", headers[TIMESTAMP_HEADER], body,
                      headers[SIGNATURE_HEADER], now=time.time())
    assert not verify("whsec-test", headers[TIMESTAMP_HEADER], body + b" ",
                      headers[SIGNATURE_HEADER], now=time.time())
    assert REGISTRY.get_sample_value("kanal_delivery_sent_total", {"provider": "relay"}) >= 1


def test_international_addresses_composed_in_real_time_are_delivered(documents, postfix):
    """The new-user test's case: an IDN domain and a UTF-8 local part, accepted at Compose,
    were retried for an hour (UnicodeEncodeError) and never sent. Now: one attempt each,
    in the mailbox, and `delivered` by Postfix's success DSN (for the UTF-8 address an
    RFC 6533 global DSN); a UTF-8 address Postfix bounces falls back to print."""
    for user, domain, as_delivered in ((mailbox_user(), IDN_DOMAIN, IDN_DOMAIN_ASCII),
                                       (f"ok-øystein-{mailbox_user()[3:]}", DOMAIN, DOMAIN)):
        document_id = compose(documents, "card-invoice",
                              sample("card-invoice", f"{user}@{domain}"))
        wait_for(lambda: postfix.mailbox(user, as_delivered),  # noqa: B023 - used at once
                 f"the e-mail to {user}@{domain} in the Postfix mailbox")
        email = wait_for(lambda: delivery(documents, document_id,  # noqa: B023
                                          common_pb2.CHANNEL_EMAIL,
                                          S.DELIVERY_STATE_DELIVERED),
                         f"the success DSN for {user}@{domain}")
        assert [a.outcome for a in email.attempt_log] == ["accepted"]

    gone = f"øystein-{mailbox_user()}@{DOMAIN}"  # accepted, then bounced: unknown user
    document_id = compose(documents, "card-invoice", sample("card-invoice", gone))
    wait_for(lambda: delivery(documents, document_id, common_pb2.CHANNEL_PRINT),
             "the print fallback", 90)
    email = delivery(documents, document_id, common_pb2.CHANNEL_EMAIL)
    bounced = [e for e in email.events if e.state == S.DELIVERY_STATE_BOUNCED]
    assert bounced and "5.1.1" in bounced[0].reason and gone in bounced[0].reason


def test_a_hard_bounce_ends_in_a_print_piece(kanal, documents, postfix):
    gone = f"gone-{mailbox_user()}"  # Postfix accepts it, then bounces it: unknown user
    document_id = compose(documents, "card-invoice", sample("card-invoice", address(gone)))

    printed = wait_for(lambda: delivery(documents, document_id, common_pb2.CHANNEL_PRINT,
                                        S.DELIVERY_STATE_SENT), "the print fallback", 90)
    email = delivery(documents, document_id, common_pb2.CHANNEL_EMAIL)
    assert email.state == S.DELIVERY_STATE_FELL_BACK
    bounced = [e for e in email.events if e.state == S.DELIVERY_STATE_BOUNCED]
    assert bounced and "5.1.1" in bounced[0].reason and "unknown user" in bounced[0].reason
    assert printed.fallback_of == email.delivery_id
    assert printed.delivery_id in email.reason  # the chain is recorded both ways
    assert "queued for print shop demo-print" in printed.reason

    with kanal.index.engine.connect() as conn:
        pieces = conn.execute(select(print_pieces.c.document_id, print_pieces.c.pdf_sha256).where(
            print_pieces.c.document_id == document_id)).all()
    record = kanal.index.get("nordkort", document_id)
    [pdf] = [o for o in record.outputs if o.channel == "print"]  # archived and indexed
    assert pieces == [(document_id, pdf.sha256)]
    assert kanal.store.get(pdf.key, expected_sha256=pdf.sha256).startswith(b"%PDF")

    # Every delivery has ended: the sealed compose input is purged.
    def purged():
        with kanal.index.engine.connect() as conn:
            return conn.execute(select(delivery_inputs.c.document_id).where(
                delivery_inputs.c.document_id == document_id)).first() is None
    wait_for(purged, "the sealed input to be purged")


def test_a_failure_dsn_after_a_delivered_one_changes_nothing(kanal, documents, postfix):
    # QA: Postfix reported the e-mail delivered to the maildir (RFC 3464 `Action:
    # delivered`, final); a later failure DSN for the same VERP address switched it to
    # bounced and printed a letter. It is recorded delivered and stays so.
    user = mailbox_user()
    document_id = compose(documents, "card-invoice", sample("card-invoice", address(user)))
    email = wait_for(lambda: delivery(documents, document_id, common_pb2.CHANNEL_EMAIL,
                                      S.DELIVERY_STATE_DELIVERED), "the success DSN")
    assert list(email.fallbacks) == [common_pb2.CHANNEL_PRINT]
    return_path = postfix.messages(user)[0]["Return-Path"].strip("<>")
    dsn = (Path(__file__).parents[1] / "unit" / "data" / "dsn-postfix-unknown-user.eml"
           ).read_bytes().replace(b"nobody@example.no", address(user).encode())
    with smtplib.SMTP("127.0.0.1", postfix.bounce_port, timeout=10) as listener:
        assert listener.sendmail("", [return_path], dsn) == {}  # taken: 250 after applying
    time.sleep(2)  # a fallback would have started by now
    after = delivery(documents, document_id, common_pb2.CHANNEL_EMAIL)
    assert after.state == S.DELIVERY_STATE_DELIVERED
    assert [e.state for e in after.events] == [e.state for e in email.events]
    assert delivery(documents, document_id, common_pb2.CHANNEL_PRINT) is None
    with kanal.index.engine.connect() as conn:
        assert conn.execute(select(print_pieces.c.document_id).where(
            print_pieces.c.document_id == document_id)).first() is None


def test_a_retried_bounce_is_attempt_two_and_holds_up_no_other_mail(kanal, documents, postfix):
    """An operator retries a bounced e-mail that has no fallback (a survey sent by e-mail
    only): the new attempt is numbered after the first, and the mail after it goes out.
    (The retry once reset the attempt counter, its attempt row collided with the first,
    and every dispatch round failed on it: no e-mail left the server.)"""
    gone = f"gone-{mailbox_user()}"
    survey = compose(documents, "nps-survey", sample("nps-survey", address(gone),
                                                     consents=("email",)))
    bounced = wait_for(lambda: delivery(documents, survey, common_pb2.CHANNEL_EMAIL,
                                        S.DELIVERY_STATE_BOUNCED), "the bounce", 90)
    assert [a.number for a in bounced.attempt_log] == [1]
    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch:
        retried = deliveries_pb2_grpc.DeliveriesStub(ch).RetryDelivery(
            S.DeliveryActionRequest(delivery_id=bounced.delivery_id))
    assert retried.state == S.DELIVERY_STATE_QUEUED

    user = mailbox_user()
    after = compose(documents, "nps-survey", sample("nps-survey", address(user),
                                                    consents=("email",)))
    wait_for(lambda: postfix.mailbox(user), "the next e-mail in the Postfix mailbox", 90)
    wait_for(lambda: delivery(documents, after, common_pb2.CHANNEL_EMAIL,
                              S.DELIVERY_STATE_DELIVERED), "its success DSN", 90)

    def bounced_twice():
        d = delivery(documents, survey, common_pb2.CHANNEL_EMAIL, S.DELIVERY_STATE_BOUNCED)
        return d if d is not None and len(d.attempt_log) == 2 else None
    again = wait_for(bounced_twice, "the retried e-mail to bounce again", 90)
    assert [a.number for a in again.attempt_log] == [1, 2]
    assert "retried by nordkort-admin" in [e.reason for e in again.events]


def test_an_smtp_outage_then_recovery_delivers_each_exactly_once(documents, postfix):
    users = [mailbox_user() for _ in range(3)]
    postfix.stop()
    try:
        ids = [compose(documents, "card-invoice", sample("card-invoice", address(u)))
               for u in users]
        retried = wait_for(lambda: all(
            (d := delivery(documents, i, common_pb2.CHANNEL_EMAIL)) and d.attempts >= 2
            and d.state == S.DELIVERY_STATE_QUEUED for i in ids), "retries during the outage")
        assert retried
        assert REGISTRY.get_sample_value("kanal_delivery_breaker_state",
                                         {"provider": "relay"}) in (1.0, 2.0)
        down = delivery(documents, ids[0], common_pb2.CHANNEL_EMAIL)
        assert "cannot reach relay" in down.reason
    finally:
        postfix.start()
    for document_id in ids:
        wait_for(lambda i=document_id: delivery(documents, i, common_pb2.CHANNEL_EMAIL,
                                                S.DELIVERY_STATE_DELIVERED),
                 "delivery after the outage", 90)
    for user, document_id in zip(users, ids, strict=True):
        assert [m["Message-ID"] for m in postfix.messages(user)] == [
            f"<{document_id}@fjordbank.no>"]
        email = delivery(documents, document_id, common_pb2.CHANNEL_EMAIL)
        assert [a.outcome for a in email.attempt_log][-1] == "accepted"
        assert {a.outcome for a in email.attempt_log[:-1]} == {"retry"}


def test_contact_rules_at_send_time(kanal, documents, postfix):
    # A marketing message: List-Unsubscribe; the second within 14 days is capped.
    customer, user = "cap-" + mailbox_user(), mailbox_user()
    data = sample("welcome-letter", address(user), customer_id=customer,
                  consents=("email", "marketing"))
    email_only = [common_pb2.CHANNEL_EMAIL]  # the layout's default plan prints
    first = compose(documents, "welcome-letter", data, email_only)
    wait_for(lambda: delivery(documents, first, common_pb2.CHANNEL_EMAIL,
                              S.DELIVERY_STATE_DELIVERED), "the first marketing e-mail")
    [message] = postfix.messages(user)
    assert message["List-Unsubscribe"] and message["List-Unsubscribe-Post"] == (
        "List-Unsubscribe=One-Click")
    second = compose(documents, "welcome-letter", data, email_only)
    capped = wait_for(lambda: delivery(documents, second, common_pb2.CHANNEL_EMAIL,
                                       S.DELIVERY_STATE_SUPPRESSED), "the cap")
    assert "frequency cap marketing" in capped.reason
    assert not capped.fallbacks  # a capped message does not go out on paper instead

    # Marketing without consent: suppressed, no fallback.
    no_consent = compose(documents, "welcome-letter", sample(
        "welcome-letter", address(mailbox_user()), consents=("email",)), email_only)
    refused = wait_for(lambda: delivery(documents, no_consent, common_pb2.CHANNEL_EMAIL,
                                        S.DELIVERY_STATE_SUPPRESSED), "the consent check")
    assert "no consent to marketing" in refused.reason

    # A welcome letter on paper (the layout's default plan) needs no marketing consent.
    letter = compose(documents, "welcome-letter", sample(
        "welcome-letter", address(mailbox_user()), consents=()), [common_pb2.CHANNEL_PRINT])
    wait_for(lambda: delivery(documents, letter, common_pb2.CHANNEL_PRINT,
                              S.DELIVERY_STATE_SENT), "the welcome letter on paper")

    # Invoices are never capped (the cap for invoices here is 0).
    invoice_customer = "inv-" + mailbox_user()
    for _ in range(2):
        document_id = compose(documents, "card-invoice", sample(
            "card-invoice", address(mailbox_user()), customer_id=invoice_customer))
        wait_for(lambda i=document_id: delivery(documents, i, common_pb2.CHANNEL_EMAIL,
                                                S.DELIVERY_STATE_DELIVERED), "an invoice")

    # An opt-out of e-mail after composing: suppressed, and the letter goes out instead.
    opted = "opt-" + mailbox_user()
    kanal.delivery.store.opt_out("nordkort", opted, "email", datetime.now(UTC), "test")
    document_id = compose(documents, "card-invoice", sample(
        "card-invoice", address(mailbox_user()), customer_id=opted))
    wait_for(lambda: delivery(documents, document_id, common_pb2.CHANNEL_PRINT,
                              S.DELIVERY_STATE_SENT), "the print fallback of an opt-out")
    email = delivery(documents, document_id, common_pb2.CHANNEL_EMAIL)
    assert email.state == S.DELIVERY_STATE_FELL_BACK
    assert any("opted out of email" in e.reason for e in email.events
               if e.state == S.DELIVERY_STATE_SUPPRESSED)

    # Quiet hours in the customer's time zone: held, not sent, no attempt counted.
    held_user = mailbox_user()
    document_id = compose(documents, "card-invoice", sample(
        "card-invoice", address(held_user), country=QUIET_COUNTRY))
    held = wait_for(lambda: (d := delivery(documents, document_id, common_pb2.CHANNEL_EMAIL))
                    and "quiet hours" in d.reason and d, "the quiet-hours hold")
    assert held.state == S.DELIVERY_STATE_QUEUED and held.attempts == 0
    assert held.next_attempt_at.ToDatetime(tzinfo=UTC) > datetime.now(UTC) + timedelta(hours=1)
    assert "Europe/Stockholm" in held.reason
    assert postfix.mailbox(held_user) == []


def test_a_letter_the_contact_rules_suppress_is_not_printed(kanal, documents):
    """The print queue is what the print shop prints: a printed marketing letter that the
    send-time rules suppress (an opt-out of marketing, the frequency cap) must not be in it,
    while one they let through is."""
    def pieces(document_id: str) -> list:
        with kanal.index.engine.connect() as conn:
            return conn.execute(select(print_pieces.c.document_id).where(
                print_pieces.c.document_id == document_id)).all()

    paper = [common_pb2.CHANNEL_PRINT]
    capped_customer = "capp-" + mailbox_user()
    letter = sample("welcome-letter", address(mailbox_user()), customer_id=capped_customer,
                    consents=("marketing",))
    first = compose(documents, "welcome-letter", letter, paper)
    wait_for(lambda: delivery(documents, first, common_pb2.CHANNEL_PRINT,
                              S.DELIVERY_STATE_SENT), "the first welcome letter")
    assert pieces(first) == [(first,)]
    second = compose(documents, "welcome-letter", letter, paper)
    capped = wait_for(lambda: delivery(documents, second, common_pb2.CHANNEL_PRINT,
                                       S.DELIVERY_STATE_SUPPRESSED), "the cap on paper")
    assert "frequency cap marketing" in capped.reason
    assert pieces(second) == []

    opted = "optm-" + mailbox_user()
    kanal.delivery.store.opt_out("nordkort", opted, "marketing", datetime.now(UTC), "test")
    request = documents_pb2.ComposeRequest(
        layout_id="welcome-letter", channels=paper, idempotency_key=f"letter-{opted}",
        data_json=sample("welcome-letter", address(mailbox_user()), customer_id=opted))
    unwanted = documents.Compose(request).document_id
    refused = wait_for(lambda: delivery(documents, unwanted, common_pb2.CHANNEL_PRINT,
                                        S.DELIVERY_STATE_SUPPRESSED), "the opt-out on paper")
    assert "opted out of marketing" in refused.reason
    assert pieces(unwanted) == []
    # the caller retries (its response was lost): the replay queues nothing either
    replay = documents.Compose(request)
    assert replay.replayed and replay.document_id == unwanted
    assert pieces(unwanted) == []


def test_operators_and_portal_see_deliveries(kanal, documents, capsys):
    user = mailbox_user()
    document_id = compose(documents, "card-invoice", sample("card-invoice", address(user),
                                                            country=QUIET_COUNTRY))
    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch:
        admin = deliveries_pb2_grpc.DeliveriesStub(ch)
        watch = admin.WatchDeliveries(S.WatchDeliveriesRequest(document_id=document_id),
                                      timeout=30)
        first = next(watch)
        assert first.document_id == document_id and first.state == S.DELIVERY_STATE_QUEUED
        email = wait_for(lambda: delivery(documents, document_id, common_pb2.CHANNEL_EMAIL),
                         "the e-mail delivery")
        held = wait_for(lambda: "quiet hours" in admin.GetDelivery(S.GetDeliveryRequest(
            delivery_id=email.delivery_id)).reason, "held")
        assert held
        cancelled = admin.CancelDelivery(S.DeliveryActionRequest(delivery_id=email.delivery_id))
        assert cancelled.state == S.DELIVERY_STATE_FAILED and "cancelled by" in cancelled.reason
        listed = admin.ListDeliveries(S.ListDeliveriesRequest(
            document_id=document_id, states=[S.DELIVERY_STATE_FAILED]))
        assert email.delivery_id in [d.delivery_id for d in listed.deliveries]
        for event in watch:  # the cancellation arrives on the stream
            if event.delivery_id == email.delivery_id and event.state == S.DELIVERY_STATE_FAILED:
                assert "cancelled by" in event.reason
                break
        watch.cancel()
    # A channel nobody is configured to send does not turn into paper by itself.
    sms_only = compose(documents, "card-invoice", sample("card-invoice", address(user)),
                       [common_pb2.CHANNEL_SMS])
    sms = wait_for(lambda: delivery(documents, sms_only, common_pb2.CHANNEL_SMS), "the sms row")
    assert sms.state == S.DELIVERY_STATE_FAILED and not sms.fallbacks
    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch, pytest.raises(
            grpc.RpcError) as refused:
        deliveries_pb2_grpc.DeliveriesStub(ch).RetryDelivery(
            S.DeliveryActionRequest(delivery_id=sms.delivery_id))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no sms provider is configured" in refused.value.details()
    kanal.delivery.dispatcher.tick()  # a round that would start any fallback
    assert delivery(documents, sms_only, common_pb2.CHANNEL_PRINT) is None

    # The operators' CLI: show, retry (held again: still quiet hours), list dead letters.
    cli = ["deliveries", "--address", kanal.address, "--key", KEYS["nordkort", "admin"]]
    capsys.readouterr()
    assert main([*cli, "show", email.delivery_id]) == 0
    shown = capsys.readouterr().out
    assert f"delivery  {email.delivery_id}" in shown and "cancelled by nordkort-admin" in shown
    assert "via relay" in shown and "events:" in shown
    assert main([*cli, "retry", email.delivery_id]) == 0
    assert "retried by nordkort-admin" in capsys.readouterr().out
    wait_for(lambda: delivery(documents, document_id, common_pb2.CHANNEL_EMAIL).reason.startswith(
        "quiet hours"), "the retried delivery held again")
    assert main([*cli, "list", "--document", document_id, "--state", "failed"]) == 0
    listed = capsys.readouterr().out
    assert "sms" in listed and email.delivery_id not in listed
    assert main([*cli, "cancel", "01M8N1XH1T0X6MVPG205JXFRP9"]) == 1  # unknown: NOT_FOUND
    assert "NOT_FOUND" in capsys.readouterr().err

    with channel(kanal.address, KEYS["nordkort", "service"]) as ch:
        portal = portal_pb2_grpc.PortalStub(ch)
        shown = portal.GetDocument(portal_pb2.PortalGetDocumentRequest(document_id=document_id))
        [mail] = [d for d in shown.deliveries if d.channel == common_pb2.CHANNEL_EMAIL]
        assert mail.state == S.DELIVERY_STATE_QUEUED and mail.events and not mail.attempt_log
        assert [e.state for e in mail.events].count(S.DELIVERY_STATE_FAILED) == 1


def test_the_delivery_list_pages_through_every_row_once(kanal, documents, capsys):
    # More deliveries than a page (a tenant with 1,000 failed ones could not see the rest).
    for _ in range(3):
        compose(documents, "card-invoice", sample("card-invoice", address(mailbox_user())),
                [common_pb2.CHANNEL_SMS])
    with channel(kanal.address, KEYS["nordkort", "admin"]) as ch:
        admin = deliveries_pb2_grpc.DeliveriesStub(ch)
        everything = admin.ListDeliveries(S.ListDeliveriesRequest(page_size=1000))
        assert not everything.next_page_token and len(everything.deliveries) >= 3
        paged, token = [], ""
        while True:
            page = admin.ListDeliveries(S.ListDeliveriesRequest(page_size=2, page_token=token))
            paged += [d.delivery_id for d in page.deliveries]
            token = page.next_page_token
            if not token:
                break
            assert len(page.deliveries) == 2
        # compose more while paging would only add newer rows: the old pages stand
        assert paged == [d.delivery_id for d in everything.deliveries]
        with pytest.raises(grpc.RpcError) as refused:
            admin.ListDeliveries(S.ListDeliveriesRequest(page_token="not-a-token"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in refused.value.details()
        # a token of this listing, used with other filters
        first = admin.ListDeliveries(S.ListDeliveriesRequest(page_size=1))
        with pytest.raises(grpc.RpcError) as refused:
            admin.ListDeliveries(S.ListDeliveriesRequest(
                page_size=1, page_token=first.next_page_token,
                states=[S.DELIVERY_STATE_FAILED]))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a page token of this listing" in refused.value.details()

    cli = ["deliveries", "--address", kanal.address, "--key", KEYS["nordkort", "admin"]]
    capsys.readouterr()
    assert main([*cli, "list", "--limit", "1"]) == 0
    first = capsys.readouterr()
    token = first.err.split("more: --page-token ")[1].split()[0]
    assert main([*cli, "list", "--limit", "1", "--page-token", token]) == 0
    second = capsys.readouterr().out

    def listed(out: str) -> list[str]:  # the delivery lines (logs may share stdout)
        return [line.split()[0] for line in out.splitlines()
                if re.match(r"[0-9A-HJKMNP-TV-Z]{26}\s", line)]
    assert listed(first.out) == paged[:1] and listed(second) == paged[1:2]
