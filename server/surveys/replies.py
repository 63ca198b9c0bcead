"""Inbound SMS answers: "NPS 9 great service" -> (reply code, score, comment).

The survey SMS and e-mail ask the customer to send the survey's reply code and a number
from 0 to 10 to the bank's short number. What people actually send varies: "nps 9",
"NPS9", "Nps: 10 Veldig fornøyd!", " NPS 7, ok". The code is matched case-insensitively,
followed by optional punctuation and spaces, the score (0-10, digits only) and, after a
separator, the comment. Anything else is refused with a reason (the gateway can answer
the customer with it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.errors import InvalidInput, quote

MAX_COMMENT = 2000
MAX_TEXT = 2500  # a long concatenated SMS (16 segments of 153) and some
_REPLY = re.compile(
    r"^\s*(?P<code>[A-Za-z]{2,10})\s*[:.,-]?\s*(?P<score>\d{1,2})(?!\d)"
    r"(?:[\s:.,;!-]+(?P<comment>.*))?\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class SmsReply:
    code: str  # upper case
    score: int
    comment: str


def parse_reply(text: str) -> SmsReply:
    """The reply code, score and comment of an inbound SMS, or InvalidInput saying why."""
    if len(text or "") > MAX_TEXT:
        raise InvalidInput.field("text", f"longer than {MAX_TEXT} characters")
    match = _REPLY.match(text or "")
    if match is None:
        raise InvalidInput.field(
            "text", f"{quote(text)} is not '<code> <0-10> [comment]' (e.g. 'NPS 9 great')")
    score = int(match["score"])
    if score > 10:
        raise InvalidInput.field("text", f"the score {score} is not within 0..10")
    comment = (match["comment"] or "").strip()
    return SmsReply(match["code"].upper(), score, comment[:MAX_COMMENT])
