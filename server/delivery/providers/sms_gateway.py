"""SMS through an HTTP gateway: one archived SMS text -> one JSON POST with an
idempotency key.

The gateway API is the common shape of SMS gateways' send endpoints (one message per
request, the sender id, the text, and a client key that makes a repeated request harmless):

    POST {url}
    Authorization: Bearer {token}
    Idempotency-Key: {delivery message id}          (the same on every attempt)
    Content-Type: application/json
    {"to": "+4791234567", "from": "Fjordbank", "text": "...", "encoding": "GSM-7",
     "segments": 1, "reference": "{delivery message id}"}

    201 Created / 200 OK {"id": "...", "status": "accepted"}  -> Accepted (the gateway's id;
        a replay of a key it has seen answers with the first request's id)
    400 / 422 {"error": "invalid_number", ...}              -> Failed(bounced)
    409 (the key was used with another body), other 4xx    -> Failed
    408, 429 (Retry-After), 5xx, no answer                  -> Retry; no answer after the
        request was written is in doubt, and the key makes the resend safe anyway

The gateway gets the text and splits it itself; `encoding` and `segments` are the SMS
channel's count, so a gateway that would split differently can refuse the message. This
adapter has no delivery receipts: `sent` is the last state it records.

Settings::

    [delivery.providers.sms-gateway]
    type = "sms-gateway"
    url = "https://sms.gateway.example/v1/messages"
    token = "..."
    source_addr = "Fjordbank"   # a tenant's own: [delivery.tenants.<t>] sms_sender
    timeout = 10
    ca_file = "/etc/ssl/gateway-ca.pem"
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from server.delivery.model import Accepted, Failed, Outgoing, Result, State
from server.delivery.providers import http
from server.delivery.providers.base import Provider, ProviderContext, register

INVALID_RECIPIENT = frozenset({"invalid_number", "invalid_recipient", "unknown_subscriber"})


class SmsGatewayProvider(Provider):
    channel = "sms"

    def __init__(self, name: str, settings: Mapping[str, Any], context: ProviderContext):
        super().__init__(name, settings, context)
        self.url = str(settings["url"])
        self.token = str(settings.get("token", ""))
        self.source_addr = str(settings.get("source_addr", "Kanal"))
        self.timeout = float(settings.get("timeout", 10))
        self.ca_file = settings.get("ca_file")

    def send(self, message: Outgoing) -> Result:
        sender = self.context.tenants.get(message.tenant, {}).get("sms_sender")
        body = json.dumps({
            "to": message.recipient, "from": str(sender or self.source_addr),
            "text": message.content.decode("utf-8"),
            "encoding": message.facts.get("encoding", ""),
            "segments": int(message.facts.get("segments") or 1),
            "reference": message.message_id,
        }, ensure_ascii=False, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.message_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = http.request("POST", self.url, body=body, headers=headers,
                                    timeout=self.timeout, ca_file=self.ca_file)
        except http.Unreachable as exc:
            return http.unreachable(exc, "SMS gateway")
        if response.status in (200, 201):
            answer = response.json() or {}
            return Accepted(f"SMS gateway {response.words}",
                            provider_message_id=str(answer.get("id", "")))
        retry = http.transient(response, "SMS gateway")
        if retry is not None:
            return retry
        error = (response.json() or {}).get("error") if isinstance(response.json(), dict) \
            else None
        if response.status in (400, 422) and error in INVALID_RECIPIENT:
            return Failed(f"SMS gateway {response.words}", State.BOUNCED)
        return Failed(f"SMS gateway {response.words}")


register("sms-gateway", SmsGatewayProvider)
