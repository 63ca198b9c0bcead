"""A stand-in of e-Boks for senders, in the JSON shape of server/delivery/providers/eboks.py
(e-Boks publishes its sender API to contracted senders only; the concepts -- CPR
addressing, a sender's document type, the subscription check, Danish payment slip data --
are the public ones, see that module):

- `GET /senders/{sender}/recipients/cpr/{cpr}` -> {"registered": bool} (404: unknown);
- `PUT /senders/{sender}/messages/{id}`: a registered CPR, a PDF, the document type;
  the same id again changes nothing and answers 200 (the first time 201).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.standins import Answer, StandIn, json_answer

SENDER_ID, TOKEN = "sender-7731", "eboks-token"


@dataclass
class Message:
    message_id: str
    cpr: str
    subject: str
    document_type_id: str
    payment: dict[str, Any] | None
    pdf: bytes


class Eboks(StandIn):
    def __init__(self, registered: set[str]):
        super().__init__()
        self.registered = registered
        self.messages: dict[str, Message] = {}
        self.repeats = 0

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes
               ) -> Answer:
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return json_answer(401, {"error": "unauthorized"})
        lookup = re.fullmatch(rf"/senders/{SENDER_ID}/recipients/cpr/(\d{{10}})", path)
        if method == "GET" and lookup:
            return json_answer(200, {"registered": lookup[1] in self.registered})
        put = re.fullmatch(rf"/senders/{SENDER_ID}/messages/([0-9A-Za-z<>@._-]+)", path)
        if method != "PUT" or put is None:
            return json_answer(404, {"error": "not found"})
        payload = json.loads(body)
        cpr = payload["recipient"]["id"]
        if cpr not in self.registered:
            return json_answer(404, {"error": "recipient not registered"})
        pdf = base64.b64decode(payload["document"]["data"])
        if payload["document"]["contentType"] != "application/pdf" or not pdf.startswith(b"%PDF"):
            return json_answer(400, {"error": "a PDF document is required"})
        with self.lock:
            if put[1] in self.messages:
                self.repeats += 1
                return json_answer(200, {"messageId": put[1], "status": "delivered"})
            self.messages[put[1]] = Message(put[1], cpr, payload["subject"],
                                            payload["documentTypeId"], payload["payment"], pdf)
        return json_answer(201, {"messageId": put[1], "status": "delivered"})
