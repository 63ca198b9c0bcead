"""Finvoice e-invoices (e-lasku) to a Finnish consumer's online bank through the Finvoice
forwarding service: Kanal hands each Finvoice, inside its Finvoice Transmission Frame
(finvoice_frame.py), to the sender's bank or e-invoice operator over HTTP(S); the operator
routes it by the frame to the receiver's bank (the receiver's intermediator).

    [delivery.providers.finvoice-op]
    type = "finvoice"
    url = "https://operator.example/finvoice"   # the operator's receiving endpoint
    sender_intermediator = "NDEAFIHH"           # the sender's bank / operator (BIC)
    username = "..."                            # HTTP Basic credentials (or per tenant)
    password = "..."
    [delivery.tenants.fjordbank-fi.finvoice-op] # per tenant, each optional:
    sender_address = "003728470514"             # the seller's e-invoice address (default:
    sender_intermediator = "NDEAFIHH"           # the OVT code of SellerPartyIdentifier)
    username = "..."
    password = "..."
    [delivery.tenants.fjordbank-fi.channels]
    einvoice = { "finvoice-3.0" = "finvoice-op" }   # or einvoice = "finvoice-op"

The delivery's recipient is `<e-invoice address>@<intermediator BIC>` (server.delivery.
routing.finvoice_address). The frame's MessageId is derived from the delivery's message id
(`finvoice_frame.message_identifier`), the same on every attempt: an operator tells a resend
by it.

`POST {url}` with `Content-Type: text/xml; charset=utf-8`, `SOAPAction: "ProcessInvoice"`,
the frame followed by the Finvoice. The answer (SOAP 1.1 §6.2: a fault comes with HTTP 500,
its `faultcode` says whose fault it is):

    2xx (an ebXML Acknowledgment, or any body)    -> sent (the operator has it; the
                                                     receiving bank's answer is the operator's)
    409 (the MessageId is there already)          -> sent: it was accepted before
    SOAP Fault, faultcode Client (the receiver is
      unknown to its bank, the frame or Finvoice
      is wrong), or any other 4xx                 -> failed, with the operator's faultstring
    SOAP Fault, faultcode Server; 408, 429, 5xx   -> retry (with backoff, the breaker's count)
    401/403 (our credentials)                     -> retry: keep the invoice
    no answer                                     -> retry; in doubt when the request was
                                                     written (an accepted invoice is not lost
                                                     nor sent twice: the MessageId repeats)
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from server.delivery.model import Accepted, Failed, Outgoing, Result, Retry
from server.delivery.providers import http
from server.delivery.providers.base import Provider, ProviderContext, register
from server.delivery.providers.finvoice_frame import (
    EB,
    SOAP_ENV,
    NotFinvoice,
    Routing,
    message,
    message_identifier,
    ovt_code,
    parse_finvoice,
)

WHAT = "Finvoice operator"


def soap_fault(body: bytes) -> tuple[str, str] | None:
    """A SOAP 1.1 Fault's (faultcode without prefix, faultstring), or None."""
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        return None
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    if fault is None:
        return None
    code = (fault.findtext("faultcode") or "").strip()
    text = " ".join((fault.findtext("faultstring") or "").split())
    return code.rpartition(":")[2], text


def acknowledged_id(body: bytes) -> str:
    """The operator's own MessageId from an ebXML answer's MessageHeader, or ""."""
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        return ""
    return (root.findtext(f".//{{{EB}}}MessageHeader/{{{EB}}}MessageData/{{{EB}}}MessageId")
            or "").strip()


def answer_result(response: http.Response, message_id: str) -> Result:
    """The operator's answer -> a result (module docstring)."""
    fault = soap_fault(response.body)
    if 200 <= response.status < 300 and fault is None:
        return Accepted(f"accepted by the {WHAT}: HTTP {response.status}, MessageId "
                        f"{message_id}",
                        provider_message_id=acknowledged_id(response.body) or message_id)
    if response.status == 409 and fault is None:
        return Accepted(f"the {WHAT} has MessageId {message_id} already: {response.words}",
                        provider_message_id=message_id)
    if response.status in (401, 403):  # a credentials problem: keep the invoice
        return Retry(f"{WHAT} refused our credentials: {response.words}")
    if fault is not None:
        code, text = fault
        words = f"{WHAT} (HTTP {response.status}, SOAP fault {code}): {text}"
        if code == "Client":
            return Failed(f"rejected by the {WHAT}: {text} (HTTP {response.status})")
        return Retry(words, after=http.retry_after(response.headers),
                     provider_down=response.status != 429)
    return http.transient(response, WHAT) or Failed(f"rejected by the {WHAT}: "
                                                    f"{response.words}")


class FinvoiceProvider(Provider):
    channel = "einvoice"

    def __init__(self, name: str, settings: Mapping[str, Any], context: ProviderContext):
        super().__init__(name, settings, context)
        self.url = str(settings.get("url", ""))
        if not self.url:
            raise ValueError(f"delivery.providers.{name}.url: the operator's endpoint")
        self.timeout = float(settings.get("timeout", 60))
        self.ca_file = settings.get("ca_file")

    def client_reference(self, message_id: str) -> str:
        return message_identifier(message_id)

    def _setting(self, tenant: str, key: str) -> str:
        own = self.context.tenants.get(tenant, {}).get(self.name, {})
        return str(own.get(key, self.settings.get(key, "")) or "")

    def send(self, message_out: Outgoing) -> Result:
        try:
            finvoice = parse_finvoice(message_out.content)
        except NotFinvoice as exc:
            return Failed(f"not sent to the {WHAT}: {exc}")
        receiver, _, receiver_bic = message_out.recipient.rpartition("@")
        tenant = message_out.tenant
        seller_id = finvoice.findtext("SellerPartyDetails/SellerPartyIdentifier")
        sender = self._setting(tenant, "sender_address") or ovt_code(seller_id)
        sender_bic = self._setting(tenant, "sender_intermediator")
        missing = [what for what, value in (
            ("the consumer's e-invoice address@intermediator", receiver and receiver_bic),
            (f"sender_address (SellerPartyIdentifier {seller_id!r} is no Y-tunnus)", sender),
            ("sender_intermediator", sender_bic)) if not value]
        if missing:
            return Failed(f"not sent to the {WHAT}: no {', '.join(missing)}")
        message_id = message_identifier(message_out.message_id)
        routing = Routing(sender, sender_bic, receiver, receiver_bic, message_id,
                          datetime.now(UTC).replace(microsecond=0),
                          finvoice.findtext("InvoiceDetails/InvoiceNumber") or "")
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"ProcessInvoice"'}
        username = self._setting(tenant, "username")
        if username:
            secret = f"{username}:{self._setting(tenant, 'password')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(secret).decode()
        try:
            response = http.request("POST", self.url, body=message(finvoice, routing),
                                    headers=headers, timeout=self.timeout,
                                    ca_file=self.ca_file)
        except http.Unreachable as exc:
            return http.unreachable(exc, WHAT)
        return answer_result(response, message_id)


register("finvoice", FinvoiceProvider)
