"""RFC 3464 DSNs -> receipts (real Postfix DSNs, captured from the test instance), VERP
return paths, and webhook signatures."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

from server.delivery.bounces import delivery_of, parse_dsn, return_path
from server.delivery.model import DeliveryEvent, State
from server.delivery.webhooks import event_body, signature, verify

DATA = Path(__file__).parent / "data"
DELIVERY = "01M8N1XH1T0X6MVPG205JXFRP9"


def test_a_postfix_unknown_user_dsn_is_a_permanent_bounce_in_postfixs_words() -> None:
    [receipt] = parse_dsn((DATA / "dsn-postfix-unknown-user.eml").read_bytes(), DELIVERY)
    assert receipt.outcome == "bounced" and receipt.delivery_id == DELIVERY
    assert receipt.reason == ('DSN failed: 5.1.1 X-Postfix; unknown user: '
                              '"nobody@example.no"')


def test_a_success_dsn_marks_delivered_and_envid_names_the_delivery() -> None:
    [receipt] = parse_dsn((DATA / "dsn-postfix-delivered.eml").read_bytes())
    assert receipt.outcome == "delivered"
    assert receipt.delivery_id == "abc"  # Original-Envelope-Id when there is no VERP
    assert "2.0.0" in receipt.reason and "delivered to maildir" in receipt.reason
    assert receipt.final  # RFC 3464 `delivered`: nothing reopens it
    raw = (DATA / "dsn-postfix-delivered.eml").read_bytes()
    for action in (b"relayed", b"expanded"):  # handed on: a later hop may still bounce it
        [handed_on] = parse_dsn(raw.replace(b"Action: delivered", b"Action: " + action))
        assert handed_on.outcome == "delivered" and not handed_on.final


def test_a_4xx_failure_is_a_retry_and_a_delay_changes_nothing() -> None:
    raw = (DATA / "dsn-postfix-unknown-user.eml").read_bytes()
    transient = raw.replace(b"Status: 5.1.1", b"Status: 4.4.1")
    [receipt] = parse_dsn(transient, DELIVERY)
    assert receipt.outcome == "retry" and receipt.reason.startswith("DSN failed: 4.4.1")
    delayed = raw.replace(b"Action: failed", b"Action: delayed")
    assert parse_dsn(delayed, DELIVERY) == []


def test_dsns_about_an_smtputf8_message_are_read_too() -> None:
    """Postfix reports on a message sent with SMTPUTF8 in an RFC 6533
    message/global-delivery-status part (8bit UTF-8), which the listener used to take for
    'not a DSN': a UTF-8 address's success was never `delivered` and its bounce never
    started the fallback."""
    [delivered] = parse_dsn((DATA / "dsn-postfix-utf8-delivered.eml").read_bytes())
    assert (delivered.outcome, delivered.delivery_id) == ("delivered", "abc")
    assert delivered.reason == ("DSN delivered: 2.0.0 X-Postfix; delivery via virtual: "
                                "delivered to maildir")
    raw = (DATA / "dsn-postfix-utf8-unknown-user.eml").read_bytes()
    [bounced] = parse_dsn(raw, DELIVERY)
    assert (bounced.outcome, bounced.delivery_id) == ("bounced", DELIVERY)
    assert bounced.reason == 'DSN failed: 5.1.1 X-Postfix; unknown user: "øystein@example.no"'


def test_a_base64_global_delivery_status_part_is_decoded() -> None:
    """RFC 6533 lets the part travel base64 (e.g. through a relay without 8BITMIME)."""
    raw = (DATA / "dsn-postfix-utf8-unknown-user.eml").read_bytes()
    head, _, rest = raw.partition(b"Content-Type: message/global-delivery-status\r\n")
    cte, _, rest = rest.partition(b"\r\n\r\n")
    body, boundary, tail = rest.partition(b"\r\n--")
    assert b"8bit" in cte and b"Status: 5.1.1" in body  # the part as Postfix wrote it
    rewritten = (head + b"Content-Type: message/global-delivery-status\r\n"
                 + b"Content-Transfer-Encoding: base64\r\n\r\n"
                 + base64.encodebytes(body).replace(b"\n", b"\r\n") + boundary + tail)
    [bounced] = parse_dsn(rewritten, DELIVERY)
    assert bounced.outcome == "bounced" and "øystein@example.no" in bounced.reason


def test_a_message_that_is_not_a_dsn_is_ignored() -> None:
    assert parse_dsn(b"From: a@b\r\nSubject: out of office\r\n\r\nI am away.\r\n") == []


def test_verp_return_paths_carry_the_delivery_and_a_tag_only_kanal_can_make() -> None:
    address = return_path(DELIVERY, "bounces.bank.no", b"secret")
    assert address.startswith(f"bounces+{DELIVERY}-") and address.endswith("@bounces.bank.no")
    assert delivery_of(f"<{address}>", b"secret") == DELIVERY
    assert delivery_of(address, b"another secret") is None
    forged = address.replace(DELIVERY, "01M8N1XH1T0X6MVPG205JXFRP8")
    assert delivery_of(forged, b"secret") is None
    assert delivery_of("postmaster@bounces.bank.no", b"secret") is None


def test_webhook_signature_covers_timestamp_and_body() -> None:
    event = DeliveryEvent(7, DELIVERY, "nordkort", "DOC", "email", State.BOUNCED,
                          datetime(2026, 11, 30, 1, 31, tzinfo=UTC), "5.1.1 unknown user")
    body = event_body(event)
    assert b'"state": "bounced"' in body and b'"event_id": 7' in body
    sig = signature("whsec", 1796002304, body)
    assert sig.startswith("v1=") and len(sig) == 67
    assert verify("whsec", "1796002304", body, sig, now=1796002310)
    assert not verify("whsec", "1796002304", body + b"x", sig, now=1796002310)
    assert not verify("whsec", "1796002305", body, sig, now=1796002310)
    assert not verify("other", "1796002304", body, sig, now=1796002310)
    assert not verify("whsec", "1796002304", body, sig, now=1796002304 + 3600)  # replayed
