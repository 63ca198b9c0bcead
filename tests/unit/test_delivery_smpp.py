"""SMPP values without a link: submit_sm parameters from the SMS channel's parts (GSM-7
septets, UCS-2, the concatenation UDH) and delivery receipts as operators write them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from server.channels.sms import encode_gsm7, plan_sms
from server.delivery.providers.base import ProviderContext
from server.delivery.providers.smpp import SmppProvider
from server.delivery.providers.smpp_messages import (
    parse_receipt,
    planned_parts,
    reference,
    source_address,
    submit_params,
)


def facts(text: str) -> dict:
    plan = plan_sms(text)
    return {"parts": json.dumps(list(plan.parts), ensure_ascii=False),
            "data_coding": plan.data_coding, "segments": plan.segments}


def test_one_gsm7_part_is_sent_as_septets_without_a_udh():
    text = "Faktura 1 234,50 kr forfaller 25.03. KID 201844551238 {€}"
    parts, coding = planned_parts(text, facts(text))
    [params] = submit_params(parts, coding, "01MSG", (5, 0, "Fjordbank"), "+4791234567")
    assert coding == 0 and params["esm_class"] == 0
    assert params["short_message"] == encode_gsm7(text)  # the escape pairs of { € } included
    assert len(params["short_message"]) == plan_sms(text).units
    assert params["destination_addr"] == "4791234567"
    assert (params["dest_addr_ton"], params["dest_addr_npi"]) == (1, 1)
    assert params["registered_delivery"] == 1
    assert params["user_message_reference"] == reference("01MSG") < 2**16


def test_a_long_ucs2_text_goes_as_the_channels_parts_with_the_concatenation_udh():
    text = "Hei Łucja ✓ — betal innen fredag 🙂 " * 6
    plan = plan_sms(text)
    parts, coding = planned_parts(text, facts(text))
    sent = submit_params(parts, coding, "01MSG", (5, 0, "Fjordbank"), "+4791234567")
    assert coding == 8 and len(sent) == plan.segments > 2
    refs = set()
    for n, (params, part) in enumerate(zip(sent, plan.parts, strict=True), start=1):
        udh, payload = params["short_message"][:6], params["short_message"][6:]
        assert params["esm_class"] == 0x40 and udh[:3] == b"\x05\x00\x03"
        assert udh[4:] == bytes((plan.segments, n))
        refs.add(udh[3])
        assert payload == part.encode("utf-16-be") and len(payload) <= 134
    assert len(refs) == 1
    # The same message id makes the same reference: a resend can still be reassembled.
    assert submit_params(parts, coding, "01MSG", (5, 0, "F"), "+47")[0]["short_message"][:6] \
        == sent[0]["short_message"][:6]


def test_parts_are_the_channels_unless_its_facts_disagree_with_the_text():
    text = "Hei! " * 40
    assert planned_parts(text, facts(text)) == (plan_sms(text).parts, 0)
    wrong = {**facts(text), "parts": json.dumps(["Hei!"])}
    assert planned_parts(text, wrong) == (plan_sms(text).parts, 0)
    assert planned_parts(text, {}) == (plan_sms(text).parts, 0)


@pytest.mark.parametrize(("sender", "expected"), [
    ("Fjordbank", (5, 0, "Fjordbank")), ("Fjordbank Sverige", (5, 0, "Fjordbank")),
    ("Nordkort Sp. z o.o.", (5, 0, "Nordkort")), ("Kortservicebanken", (5, 0, "Kortservice")),
    ("+4722000000", (1, 1, "4722000000")), ("2020", (3, 0, "2020"))])
def test_source_address(sender, expected):
    assert source_address(sender) == expected


@pytest.mark.parametrize(("tenants", "setting"), [
    ({"pl": {"sms_sender": "Bank Łódź"}}, "delivery.tenants.pl.sms_sender"),
    ({}, "delivery.providers.smsc.source_addr")])
def test_a_sender_smpp_cannot_carry_is_refused_when_the_provider_is_built(tenants, setting):
    """SMPP's source_addr is ASCII: such a sender failed every attempt of every SMS (and
    opened the SMSC's breaker for every tenant) instead of stopping the start."""
    spec = {"type": "smpp", "host": "127.0.0.1", "port": 1, "system_id": "kanal",
            "password": "pw", "source_addr": "Fjordbank" if tenants else "Sparebank Øst"}
    with pytest.raises(ValueError, match=re.escape(setting)) as refused:
        SmppProvider("smsc", spec, ProviderContext(Path("."), tenants=tenants))
    assert "ASCII" in str(refused.value) and ("'Ł'" in str(refused.value)
                                              or "'Ø'" in str(refused.value))


def test_a_long_sender_name_is_cut_not_refused_and_a_long_number_is_refused():
    tenants = {"no": {"sms_sender": "Fjordbank Kortservice Norge AS"}}
    spec = {"type": "smpp", "host": "127.0.0.1", "port": 1, "system_id": "kanal",
            "password": "pw", "source_addr": "Fjordbank"}
    provider = SmppProvider("smsc", spec, ProviderContext(Path("."), tenants=tenants))
    assert provider._source("no") == (5, 0, "Fjordbank")
    with pytest.raises(ValueError, match="source_addr"):
        SmppProvider("smsc", {**spec, "source_addr": "+" + "4" * 21},
                     ProviderContext(Path(".")))


def test_a_receipt_with_its_tlvs():
    receipt = parse_receipt(
        b"id:CF0E60001 sub:001 dlvrd:001 submit date:2611300343 done date:2611300343 "
        b"stat:DELIVRD err:000 text:Faktura 1 234,50 kr",
        receipted_message_id=b"CF0E60001", message_state=2)
    assert (receipt.message_id, receipt.stat, receipt.err, receipt.outcome) == (
        "CF0E60001", "DELIVRD", "000", "delivered")
    assert receipt.words.endswith("stat:DELIVRD err:000") and "Faktura" not in receipt.words


@pytest.mark.parametrize(("text", "outcome"), [
    ("id:1 sub:001 dlvrd:000 submit date:2611300343 done date:2611300343 stat:UNDELIV "
     "err:001 text:x", "bounced"),
    ("ID:1 SUB:001 DLVRD:000 SUBMIT DATE:2611300343 DONE DATE:2611300343 STAT:REJECTD "
     "ERR:0B", "bounced"),
    ("id:1 submit_date:2611300343 done_date:2611300343 stat:EXPIRED err:000", "expired"),
    ("stat:DELETED id:1", "failed"),
    ("id:1 sub:001 dlvrd:000 stat:ENROUTE err:000", None),
    ("id:1 stat:ACCEPTD", None)])
def test_receipt_text_as_operators_write_it(text, outcome):
    receipt = parse_receipt(text.encode())
    assert receipt.message_id == "1" and receipt.outcome == outcome


def test_the_message_state_tlv_wins_over_the_text_and_ids_in_the_other_base():
    receipt = parse_receipt(b"id:123 stat:DELIVRD", message_state=5)
    assert receipt.stat == "UNDELIV" and receipt.outcome == "bounced"
    # An operator printing the (hex) submit_sm_resp id in decimal: 0x1A2B = 6699.
    assert parse_receipt(b"id:6699 stat:DELIVRD", id_format="hex-as-decimal").message_id \
        == "1A2B"
    assert parse_receipt(b"id:1A2B stat:DELIVRD", id_format="decimal-as-hex").message_id \
        == "6699"
    assert parse_receipt(b"id:6699 stat:DELIVRD", receipted_message_id="1A2B",
                         id_format="hex-as-decimal").message_id == "1A2B"
