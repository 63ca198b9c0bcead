"""What goes over an SMPP 3.4 link, as values: an SMS -> its `submit_sm` parameters, and a
`deliver_sm` -> a delivery receipt. Pure; the session (smpp_session.py) does the I/O.

Submitting (SMPP 3.4 §4.4.1, 3GPP TS 23.038/23.040):

- the parts are exactly the ones the SMS channel counted (the output's `parts` and
  `data_coding` facts, server/channels/sms.py): GSM-7 as unpacked septets, one octet
  each, escape pairs included (`data_coding` 0, the SMSC packs them), UCS-2 as UTF-16BE
  (`data_coding` 8);
- a message of several parts carries the concatenation UDH `05 00 03 <ref> <total> <seq>`
  (IEI 0x00, 8-bit reference) with `esm_class` 0x40 (UDHI); the reference is derived from
  the delivery's message id, so a resend reuses it and a handset can still reassemble;
- `registered_delivery` 1: an SMSC delivery receipt on success or failure (§5.2.17), and
  `user_message_reference` (§5.3.2.17): the SMSC returns it in the receipt, which lets a
  receipt find its delivery even when the `submit_sm_resp` was lost.

Receipts (§2.11, Appendix B): `deliver_sm` with `esm_class` bits 2-5 = 0001. The text is
`id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
err:E text:...`, which operators vary (case, `submit_date`, order, missing fields, ids in
decimal where the `submit_sm_resp` gave hex): the parser takes the fields wherever they
are, and the `receipted_message_id` / `message_state` TLVs (§5.3.2.12, §5.2.28) win when
present. Final states -> outcomes: DELIVRD -> delivered; UNDELIV, REJECTD -> bounced (the
plan's next channel takes over); EXPIRED -> expired (also falls back); DELETED -> failed;
ENROUTE, ACCEPTD, UNKNOWN are not final and change nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.channels.sms import DATA_CODING, GSM7, encode_gsm7, plan_sms
from server.compose.text_limits import cut_at_space

ESM_UDHI = 0x40
ESM_DELIVERY_RECEIPT = 0x04
REGISTERED_DELIVERY_FINAL = 0x01

# SMPP 3.4 §5.2.28 message_state
MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                  6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}
OUTCOMES = {"DELIVRD": "delivered", "UNDELIV": "bounced", "REJECTD": "bounced",
            "EXPIRED": "expired", "DELETED": "failed"}


def reference(message_id: str) -> int:
    """16 bits of the message id: the `user_message_reference` of every part."""
    return int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:2], "big")


def _concat_ref(message_id: str) -> int:
    return hashlib.sha256(message_id.encode()).digest()[2]


def planned_parts(text: str, facts: Mapping[str, Any]) -> tuple[tuple[str, ...], int]:
    """(parts, data_coding) as the SMS channel planned them. The facts are the plan; they
    are checked against the archived text (joined, the parts are the text), and a text
    without facts (or whose facts disagree) is planned again the same way."""
    try:
        parts = tuple(json.loads(facts["parts"]))
        data_coding = int(facts["data_coding"])
    except (KeyError, TypeError, ValueError):
        parts, data_coding = (), -1
    if not parts or "".join(parts) != text or data_coding not in DATA_CODING.values():
        plan = plan_sms(text)
        return plan.parts, plan.data_coding
    return parts, data_coding


def encode_part(part: str, data_coding: int) -> bytes:
    if data_coding == DATA_CODING[GSM7]:
        return encode_gsm7(part)
    return part.encode("utf-16-be")


def submit_params(parts: tuple[str, ...], data_coding: int, message_id: str,
                  source: tuple[int, int, str], destination: str) -> list[dict[str, Any]]:
    """One `submit_sm` parameter set per part. `source` is (ton, npi, address);
    `destination` an E.164 number ("+4791234567")."""
    ton, npi, address = source
    common = {
        "source_addr_ton": ton, "source_addr_npi": npi, "source_addr": address,
        "dest_addr_ton": 1, "dest_addr_npi": 1,  # international, ISDN (E.164)
        "destination_addr": destination.lstrip("+"),
        "registered_delivery": REGISTERED_DELIVERY_FINAL, "data_coding": data_coding,
        "user_message_reference": reference(message_id),
    }
    if len(parts) == 1:
        return [{**common, "esm_class": 0, "short_message": encode_part(parts[0], data_coding)}]
    ref, total = _concat_ref(message_id), len(parts)
    return [{**common, "esm_class": ESM_UDHI,
             "short_message": bytes((0x05, 0x00, 0x03, ref, total, seq))
             + encode_part(part, data_coding)}
            for seq, part in enumerate(parts, start=1)]


ALPHANUMERIC_SENDER_CHARS = 11  # what a handset shows of an alphanumeric originator


def source_address(sender: str) -> tuple[int, int, str]:
    """(ton, npi, address) of a sender id: "+4722000000" international (1, 1), digits a
    short code (3, 0), anything else alphanumeric (5, 0; at most 11 characters: a longer
    one ends at the last space before the limit, "Fjordbank Sverige" -> "Fjordbank")."""
    if sender.startswith("+") and sender[1:].isdigit():
        return 1, 1, sender[1:]
    if sender.isdigit():
        return 3, 0, sender
    return 5, 0, cut_at_space(sender, ALPHANUMERIC_SENDER_CHARS) or ""


def sender_problem(sender: str) -> str | None:
    """Why `sender` cannot be an SMPP `source_addr`, or None. The field is a C-Octet String
    (SMPP 3.4 §3.1: ASCII, ending in NUL): a character outside printable ASCII ("Bank
    Łódź") cannot be sent at all, and would fail every attempt of every message."""
    bad = next((c for c in sender if not " " <= c <= "~"), None)
    if bad is not None:
        return (f"{sender!r} has {bad!r} (U+{ord(bad):04X}): an SMPP source_addr is "
                "printable ASCII (SMPP 3.4 §3.1 C-Octet String); write the sender without it")
    digits = sender.removeprefix("+")
    if digits.isdigit() and len(digits) > 20:  # a name is cut (source_address), a number not
        return f"{sender!r} is longer than the 20 digits of SMPP's source_addr"
    return None


# --- receipts -----------------------------------------------------------------------------

_KEYS = r"id|sub|dlvrd|submit[ _]date|done[ _]date|stat|err|text"
_FIELD = re.compile(rf"(?i)\b({_KEYS})\s*:\s*(.*?)(?=\s+\b(?:{_KEYS})\s*:|$)", re.S)


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    message_id: str  # as the submit_sm_resp gave it
    stat: str  # DELIVRD, UNDELIV, ...
    err: str
    words: str  # the receipt as the operator wrote it, without its `text:` sample

    @property
    def outcome(self) -> str | None:
        """delivered | bounced | expired | failed, or None while not final."""
        return OUTCOMES.get(self.stat)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return "" if value is None else str(value)


def _normalise_id(value: str, id_format: str) -> str:
    """A receipt text id in the submit_sm_resp's format: "hex-as-decimal" for operators
    that print the (hex) message id in decimal, "decimal-as-hex" the other way round."""
    try:
        if id_format == "hex-as-decimal":
            return format(int(value, 10), "X")
        if id_format == "decimal-as-hex":
            return str(int(value, 16))
    except ValueError:
        pass
    return value


def parse_receipt(short_message: bytes | str | None, receipted_message_id: Any = None,
                  message_state: int | None = None, id_format: str = "same"
                  ) -> DeliveryReceipt:
    """A delivery receipt from a deliver_sm's text and TLVs (module docstring)."""
    text = _text(short_message)
    fields = {key.lower().replace("_", " "): value.strip()
              for key, value in _FIELD.findall(text)}
    stat = fields.get("stat", "").upper()
    if message_state in MESSAGE_STATES:
        stat = MESSAGE_STATES[message_state]
    message_id = _text(receipted_message_id).strip() or _normalise_id(
        fields.get("id", ""), id_format)
    words = re.split(r"(?i)\btext\s*:", text, maxsplit=1)[0].strip()
    return DeliveryReceipt(message_id, stat, fields.get("err", ""), words or f"stat:{stat}")
