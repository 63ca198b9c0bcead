"""Kivra (Sweden): the print PDF and its payment fields -> the recipient's Kivra inbox.

Follows Kivra's published Tenant API (developer.kivra.com, the OpenAPI `swagger.yml` of
github.com/kivra/developer.kivra.com; error codes from github.com/kivra/kivra-api-errors):

    POST {base}/v1/auth              OAuth2 client credentials (Basic client_id:secret,
                                     grant_type=client_credentials) -> access_token
    POST {base}/v2/tenant/{tenantKey}/usermatch/ssn   {"list": ["YYYYMMDDnnnn"]}
                                     -> {"list": [...]}: the ones who can receive from this
                                     tenant; empty: not registered (or opted out)
    POST {base}/v2/tenant/{tenantKey}/content         Content_user_v2 (JSON):
        {"ssn", "subject", "generated_at", "type": "invoice" | "letter",
         "parts": [{"name", "data" (base64), "content_type": "application/pdf"}],
         "payment_multiple_options": {"payable": true, "currency": "SEK",
             "method": "1" (bankgiro) | "2" (plusgiro), "account",
             "options": [{"due_date", "amount", "type": "SE_OCR" | "TENANT_REF",
                          "reference"}]}}
        -> 201 Created, `kivra-objkey` header: the content's key

Recipient not registered: usermatch finds nobody, or the content call answers 40032 (User
Not Found) / 40105 (no send request): `bounced`, the next channel takes over. Limits: 1 MB
for the whole JSON content (Kivra's "Content File-size"), checked before sending; `SEK`
only, and an amount of at least 1 (a credit balance goes as a plain letter).

Idempotency: Kivra's duplicate control drops a content whose payload (all of it but
`generated_at`) it has already received and still answers OK. So every attempt sends the
identical payload: the archived PDF (immutable), the payment fields kept in the outbox row,
`generated_at` from the composition, and keys in one order.

Settings::

    [delivery.providers.kivra-se]
    type = "kivra"
    base_url = "https://sender.api.kivra.com"
    client_id = "..."
    client_secret = "..."
    tenant_key = "..."          # or per tenant: [delivery.tenants.<t>.kivra-se] tenant_key
    max_bytes = 1048576         # Kivra's limit per content (the JSON request)
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from server.compose.text_limits import cut_at_space
from server.delivery.model import Accepted, Failed, Outgoing, Result, State
from server.delivery.providers import http
from server.delivery.providers.base import register
from server.delivery.providers.mailbox import Limits, MailboxProvider, national_id

NOT_REGISTERED = frozenset({40032, 40105})  # User Not Found, Invalid Sendrequest
PAYMENT_METHOD = {"bankgiro": "1", "plusgiro": "2"}
SUBJECT_CHARS = 60  # the longest subject sent to Kivra (as before: [:60])


def content_payload(ssn: str, details: Mapping[str, Any], pdf: bytes, name: str) -> bytes:
    """The Content_user_v2 JSON, the same bytes on every attempt. A subject over
    `SUBJECT_CHARS` ends at the last space before the limit, never inside a word."""
    payment = details.get("payment") or {}
    method = PAYMENT_METHOD.get(str(payment.get("account_kind", "")))
    payable = bool(payment) and payment.get("currency") == "SEK" and method is not None \
        and Decimal(str(payment.get("amount", "0"))) >= 1
    content: dict[str, Any] = {
        "ssn": ssn, "subject": cut_at_space(str(details.get("subject", "")), SUBJECT_CHARS),
        "generated_at": str(details.get("generated_at", "")),
        "type": "invoice" if payable else "letter",
        "parts": [{"name": name, "content_type": "application/pdf",
                   "data": base64.b64encode(pdf).decode("ascii")}],
    }
    if payable:
        content["payment_multiple_options"] = {
            "payable": True, "currency": "SEK", "method": method,
            "account": payment["account"],
            "options": [{"due_date": payment["due_date"], "amount": payment["amount"],
                         "type": "SE_OCR" if payment.get("reference_scheme") == "ocr"
                         else "TENANT_REF", "reference": payment["reference"]}],
        }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


class KivraProvider(MailboxProvider):
    service = "kivra"
    documented_limits = Limits(max_bytes=1024 * 1024)

    def __init__(self, name: str, settings: Mapping[str, Any], context: Any):
        super().__init__(name, settings, context)
        self.base_url = str(settings.get("base_url", "https://sender.api.kivra.com")).rstrip("/")
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()

    # --- OAuth2 ---------------------------------------------------------------------------

    def _access_token(self, renew: bool = False) -> str:
        with self._token_lock:
            if self._token is not None and not renew and self._token[1] > time.monotonic():
                return self._token[0]
            client = self.settings.get("client_id", ""), self.settings.get("client_secret", "")
            secret = f"{client[0]}:{client[1]}"
            response = http.request(
                "POST", f"{self.base_url}/v1/auth", body=b"grant_type=client_credentials",
                headers={"Authorization": "Basic " + base64.b64encode(secret.encode()).decode(),
                         "Content-Type": "application/x-www-form-urlencoded"},
                timeout=self.timeout, ca_file=self.ca_file)
            answer = response.json() if response.status == 200 else None
            if not isinstance(answer, dict) or "access_token" not in answer:
                raise http.Unreachable(f"Kivra refused our client credentials: {response.words}")
            ttl = float(answer.get("expires_in", 3600))
            self._token = (str(answer["access_token"]), time.monotonic() + ttl * 0.9)
            return self._token[0]

    def _call(self, path: str, body: bytes) -> http.Response:
        for renew in (False, True):
            response = http.request(
                "POST", f"{self.base_url}{path}", body=body, timeout=self.timeout,
                ca_file=self.ca_file,
                headers={"Authorization": f"Bearer {self._access_token(renew)}",
                         "Content-Type": "application/json", "Accept": "application/json"})
            if response.status != 401:
                return response
        return response

    # --- one delivery ---------------------------------------------------------------------

    def deliver(self, message: Outgoing, recipient: str, details: Mapping[str, Any]) -> Result:
        ssn = national_id("SE", recipient)
        tenant_key = self.tenant_setting(message.tenant, "tenant_key")
        if not tenant_key:
            return Failed(f"no Kivra tenant key for tenant {message.tenant}")
        payload = content_payload(ssn, details, message.content, f"{message.document_id}.pdf")
        refused = self.check(message.content, size=len(payload))
        if refused is not None:
            return refused
        try:
            match = self._call(f"/v2/tenant/{tenant_key}/usermatch/ssn",
                               json.dumps({"list": [ssn]}).encode())
            if match.status == 200:
                if ssn not in ((match.json() or {}).get("list") or []):
                    return Failed("Kivra: recipient not registered (usermatch/ssn found no "
                                  "user who can receive from this tenant)", State.BOUNCED)
            elif (retry := http.transient(match, "Kivra usermatch")) is not None:
                return retry
            response = self._call(f"/v2/tenant/{tenant_key}/content", payload)
        except http.Unreachable as exc:
            return http.unreachable(exc, "Kivra")
        if response.status in (200, 201):
            key = next((v for k, v in response.headers.items() if k.lower() == "kivra-objkey"), "")
            return Accepted(f"Kivra {response.words or response.status}".strip(),
                            provider_message_id=key, delivered=True)
        retry = http.transient(response, "Kivra")
        if retry is not None:
            return retry
        code = (response.json() or {}).get("code") if isinstance(response.json(), dict) else None
        if code in NOT_REGISTERED or str(code) in {str(c) for c in NOT_REGISTERED}:
            return Failed(f"Kivra: recipient not registered ({response.words})", State.BOUNCED)
        return Failed(f"Kivra refused the content: {response.words}")


register("kivra", KivraProvider)
