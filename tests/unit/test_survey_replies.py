"""Inbound SMS answers as customers write them."""

from __future__ import annotations

import pytest

from server.errors import InvalidInput
from server.surveys.replies import SmsReply, parse_reply


@pytest.mark.parametrize(("text", "expected"), [
    ("NPS 9 great service", SmsReply("NPS", 9, "great service")),
    ("nps 10", SmsReply("NPS", 10, "")),
    ("NPS9", SmsReply("NPS", 9, "")),
    ("Nps: 7, ok men treg levering", SmsReply("NPS", 7, "ok men treg levering")),
    ("  NPS 0\nHelt elendig!  ", SmsReply("NPS", 0, "Helt elendig!")),
    ("SVAR 3 för dyrt", SmsReply("SVAR", 3, "för dyrt")),
])
def test_replies_as_people_write_them(text, expected):
    assert parse_reply(text) == expected


@pytest.mark.parametrize("text", ["", "hello", "NPS", "NPS eleven", "9 NPS", "NPS 123"])
def test_not_an_answer_is_refused_naming_the_form(text):
    with pytest.raises(InvalidInput) as error:
        parse_reply(text)
    assert error.value.violations[0].field == "text"


def test_score_over_ten_is_refused():
    with pytest.raises(InvalidInput, match="not within 0..10"):
        parse_reply("NPS 11 super")


def test_mobile_originated_text_is_decoded_as_the_smsc_sent_it():
    from server.channels.sms import decode_gsm7, encode_gsm7
    from server.delivery.providers.smpp import mo_text
    text = "NPS 3 Æøå er fine, men {pakken} kom for sent €"
    assert decode_gsm7(encode_gsm7(text)) == text
    assert mo_text(encode_gsm7(text), 0) == text
    assert mo_text("NPS 9 Så bra!".encode("utf-16-be"), 8) == "NPS 9 Så bra!"
    assert mo_text("NPS 9 café".encode("latin-1"), 3) == "NPS 9 café"
    assert parse_reply(mo_text(encode_gsm7("nps 10 Kjempebra"), 0)) == SmsReply(
        "NPS", 10, "Kjempebra")
