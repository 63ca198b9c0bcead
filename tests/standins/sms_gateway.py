"""A stand-in of a JSON SMS gateway (the shape of server/delivery/providers/sms_gateway.py):
Bearer token, one message per POST, and `Idempotency-Key` semantics as such gateways
document them: the same key with the same body answers the first answer again (200,
`Idempotent-Replayed: true`) and sends nothing; the same key with another body is a 409.
`busy(n)` answers the next n requests 429 with `Retry-After: 1`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from tests.standins import Answer, StandIn, json_answer

TOKEN = "gw-token"
INVALID_NUMBERS = {"+4790000000"}


class SmsGateway(StandIn):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.replays = 0
        self._keys: dict[str, tuple[bytes, str]] = {}
        self._busy = 0

    def busy(self, count: int) -> None:
        with self.lock:
            self._busy = count

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes
               ) -> Answer:
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return json_answer(401, {"error": "unauthorized"})
        if method != "POST" or path != "/v1/messages":
            return json_answer(404, {"error": "not_found"})
        key = headers.get("Idempotency-Key", "")
        with self.lock:
            if self._busy:
                self._busy -= 1
                return json_answer(429, {"error": "rate_limited"}, **{"Retry-After": "1"})
            if key in self._keys:
                first_body, gateway_id = self._keys[key]
                if first_body != body:
                    return json_answer(409, {"error": "idempotency_key_reused"})
                self.replays += 1
                return json_answer(200, {"id": gateway_id, "status": "accepted"},
                                   **{"Idempotent-Replayed": "true"})
            message = json.loads(body)
            if message["to"] in INVALID_NUMBERS:
                return json_answer(422, {"error": "invalid_number", "to": message["to"]})
            gateway_id = f"gw-{secrets.token_hex(6)}"
            self._keys[key] = (body, gateway_id)
            self.messages.append({**message, "id": gateway_id, "key": key})
        return json_answer(201, {"id": gateway_id, "status": "accepted"})
