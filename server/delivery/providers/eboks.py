"""e-Boks (Denmark): the print PDF and its payment fields -> the recipient's e-Boks.

e-Boks publishes its sender API reference to contracted senders only; what is public
(e-Boks as described by Nets for senders, nets.eu "e-Boks channel") fixes the concepts
this adapter implements: a sender and a document type (content type) configured per
sender, recipients addressed by CPR (10 digits, DDMMYYXXXX, no separator) or CVR, a
subscription check (a recipient who has not signed up for the sender is not delivered to:
"the document will proceed to the next channel"), optional mandatory delivery, and the
Danish payment slip data (FI card type 71/73/75, payment id, creditor number) behind the
pay button. The JSON shape below is Kanal's rendering of those concepts, kept in this
module only, so that aligning it with a bank's contracted e-Boks specification changes
nothing else:

    GET {base}/senders/{sender_id}/recipients/cpr/{cpr}
        -> 200 {"registered": true|false}   (404: unknown to e-Boks)
    PUT {base}/senders/{sender_id}/messages/{message id}    (the delivery's message id:
        a PUT of the same id again changes nothing, which makes resends safe)
        {"recipient": {"type": "cpr", "id"}, "documentTypeId", "subject", "mandatory",
         "document": {"contentType": "application/pdf", "data": base64},
         "payment": {"amount", "currency": "DKK", "dueDate", "cardType", "paymentId",
                     "creditorNumber"}}
        -> 201 Created / 200 OK {"messageId", "status": "delivered"}

Not registered -> `bounced`, the plan's next channel takes over. No size, page or margin
limits are published: set `max_bytes` / `max_pages` / `min_left_margin_mm` from the sender
agreement.

Settings::

    [delivery.providers.eboks-dk]
    type = "eboks"
    base_url = "https://..."
    token = "..."                    # Authorization: Bearer
    sender_id = "..."                # or per tenant: [delivery.tenants.<t>.eboks-dk] sender_id
    document_type_id = "..."         # likewise
    mandatory = false
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from server.delivery.model import Accepted, Failed, Outgoing, Result, State
from server.delivery.providers import http
from server.delivery.providers.base import register
from server.delivery.providers.mailbox import MailboxProvider, national_id

_FIK = re.compile(r"^\+?(?P<card>7[135])[<#]?(?P<payment>\d{15,16})")


def payment_block(payment: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Danish payment slip data, for a DKK bill with an FIK reference."""
    if not payment or payment.get("currency") != "DKK":
        return None
    reference = str(payment.get("reference", ""))
    match = _FIK.match(reference)
    card, payment_id = (match["card"], match["payment"]) if match else ("71", reference)
    return {"amount": payment["amount"], "currency": "DKK", "dueDate": payment["due_date"],
            "cardType": card, "paymentId": payment_id,
            "creditorNumber": str(payment.get("account", ""))[-8:]}


class EboksProvider(MailboxProvider):
    service = "eboks"

    def __init__(self, name: str, settings: Mapping[str, Any], context: Any):
        super().__init__(name, settings, context)
        self.base_url = str(settings.get("base_url", "")).rstrip("/")
        self.token = str(settings.get("token", ""))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def deliver(self, message: Outgoing, recipient: str, details: Mapping[str, Any]) -> Result:
        cpr = national_id("DK", recipient)
        sender = self.tenant_setting(message.tenant, "sender_id")
        if not sender:
            return Failed(f"no e-Boks sender id for tenant {message.tenant}")
        refused = self.check(message.content)
        if refused is not None:
            return refused
        base = f"{self.base_url}/senders/{sender}"
        body = json.dumps({
            "recipient": {"type": "cpr", "id": cpr},
            "documentTypeId": str(self.tenant_setting(message.tenant, "document_type_id", "")),
            "subject": str(details.get("subject", "")),
            "mandatory": bool(self.tenant_setting(message.tenant, "mandatory", False)),
            "document": {"contentType": "application/pdf",
                         "data": base64.b64encode(message.content).decode("ascii")},
            "payment": payment_block(details.get("payment") or {}),
        }, sort_keys=True).encode()
        try:
            check = http.request("GET", f"{base}/recipients/cpr/{cpr}", headers=self._headers(),
                                 timeout=self.timeout, ca_file=self.ca_file)
            if check.status == 404 or (check.status == 200
                                       and not (check.json() or {}).get("registered")):
                return Failed("e-Boks: recipient not registered for this sender "
                              f"({check.words})", State.BOUNCED)
            if (retry := http.transient(check, "e-Boks")) is not None:
                return retry
            response = http.request("PUT", f"{base}/messages/{message.message_id}", body=body,
                                    headers=self._headers(), timeout=self.timeout,
                                    ca_file=self.ca_file)
        except http.Unreachable as exc:
            return http.unreachable(exc, "e-Boks")
        if response.status in (200, 201):
            answer = response.json() or {}
            return Accepted(f"e-Boks {response.words}",
                            provider_message_id=str(answer.get("messageId", message.message_id)),
                            delivered=True)
        retry = http.transient(response, "e-Boks")
        if retry is not None:
            return retry
        if response.status == 404:
            return Failed(f"e-Boks: recipient not registered ({response.words})", State.BOUNCED)
        return Failed(f"e-Boks refused the message: {response.words}")


register("eboks", EboksProvider)
