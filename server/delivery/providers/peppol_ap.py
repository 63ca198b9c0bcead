"""E-invoices to a Peppol access point (the sender's AP, corner 2), configured per tenant
(`[delivery.tenants.<t>.channels] einvoice = "<provider>"`): the UBL in a Peppol SBDH
(Peppol Envelope Specification, SBDH 1.3 profile) over the AP's HTTP API, or dropped in
its outbox folder. The AP's acknowledgement -- the AS4 Receipt signal of the receiving AP
(corner 3) -- is recorded as `delivered`.

The SBDH is built from the UBL (sbdh.py): sender and receiver participant ids (the
parties' EndpointID), document type and process ids, C1's country, and an
InstanceIdentifier derived from the delivery's message id, the same on every attempt.

HTTP (`type = "peppol-ap"`): the API of phase4's Peppol standalone AP
(github.com/phax/phase4-peppol-standalone, the open-source AP stack many Peppol APs run):

    POST {base}/sendsbdh          X-Token: {token}   body: the SBDH (XML)
    -> 200 JSON sending report: "sendingResult": "SUCCESS", "overallSuccess": true,
       "as4MessageId", "sbdhInstanceIdentifier", "c3EndpointUrl", "as4ReceivedSignalMsg"
       (the receipt)                                       -> delivered (the AS4 message id)
    no "c3EndpointUrl" (the receiver is in no SMP)          -> bounced: the next channel
    "AS4_ERROR_MESSAGE_RECEIVED" (corner 3 refused it)     -> failed: the next channel
    "TRANSPORT_ERROR", no answer, 401/403, 5xx              -> retry (with backoff)
    "NO_SIGNAL_MESSAGE_RECEIVED" (sent, no receipt)         -> retry in doubt

The API has no idempotency key of its own: a resend carries the same SBDH
InstanceIdentifier, by which the receiving side can tell it is the same document; an
attempt whose answer was lost waits `in_doubt_seconds` first.

Folder (`type = "peppol-folder"`): the SBDH is written to `outbox_dir` as
`.<id>.tmp` and renamed to `<InstanceIdentifier>.xml` (a reader never sees half a file;
an existing file or acknowledgement with that name means it was handed over already: not
written again). The AP answers with its sending report (the JSON above) as
`<InstanceIdentifier>.json` in `receipts_dir`, which this adapter polls; the report becomes
the delivery's receipt and the file moves to `receipts_dir/processed/`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server import logs
from server.delivery.model import Accepted, Failed, Outgoing, Receipt, Result, Retry, State
from server.delivery.providers import http
from server.delivery.providers.base import Provider, ProviderContext, ReceiptSink, register
from server.delivery.providers.sbdh import NotUbl, instance_identifier, wrap

log = logs.get_logger(__name__)

IN_DOUBT = frozenset({"NO_SIGNAL_MESSAGE_RECEIVED", "INVALID_SIGNAL_MESSAGE_RECEIVED"})
REFUSED = frozenset({"AS4_ERROR_MESSAGE_RECEIVED"})


def report_outcome(report: Mapping[str, Any]) -> tuple[str, str]:
    """A phase4 sending report -> (delivered | bounced | failed | retry | in_doubt, words)."""
    result = str(report.get("sendingResult", ""))
    words = (f"AP sending report: {result or 'no result'}, as4MessageId "
             f"{report.get('as4MessageId', '-')}, SBDH {report.get('sbdhInstanceIdentifier', '-')}")
    if report.get("overallSuccess") and result == "SUCCESS":
        return "delivered", f"{words}, AS4 receipt from {report.get('c3EndpointUrl', '?')}"
    if not report.get("c3EndpointUrl"):
        problem = report.get("sendingException") or report.get("as4SendingException") or {}
        reason = problem.get("message", "") if isinstance(problem, dict) else str(problem)
        return "bounced", f"{words}: receiver not reachable in Peppol ({reason or 'no SMP entry'})"
    errors = "; ".join(f"{e.get('errorCode')} {e.get('errorDetails') or e.get('description')}"
                       for e in report.get("as4ResponseErrors") or [])
    if result in REFUSED:
        return "failed", f"{words}: {errors}"
    if result in IN_DOUBT:
        return "in_doubt", words
    return "retry", f"{words}{': ' + errors if errors else ''}"


def _ubl_sbdh(message: Outgoing) -> bytes:
    return wrap(message.content, instance_identifier(message.message_id))


class PeppolApProvider(Provider):
    channel = "einvoice"

    def __init__(self, name: str, settings: Mapping[str, Any], context: ProviderContext):
        super().__init__(name, settings, context)
        self.base_url = str(settings.get("base_url", "")).rstrip("/")
        self.timeout = float(settings.get("timeout", 60))
        self.ca_file = settings.get("ca_file")

    def client_reference(self, message_id: str) -> str:
        return instance_identifier(message_id)

    def send(self, message: Outgoing) -> Result:
        try:
            sbdh = _ubl_sbdh(message)
        except NotUbl as exc:
            return Failed(f"not sent to the Peppol AP: {exc}")
        token = self.context.tenants.get(message.tenant, {}).get(self.name, {}).get(
            "token", self.settings.get("token", ""))
        try:
            response = http.request("POST", f"{self.base_url}/sendsbdh", body=sbdh,
                                    headers={"Content-Type": "application/xml",
                                             "X-Token": str(token)},
                                    timeout=self.timeout, ca_file=self.ca_file)
        except http.Unreachable as exc:
            return http.unreachable(exc, "Peppol AP")
        report = response.json()
        if response.status != 200 or not isinstance(report, dict):
            if response.status in (401, 403):  # a credentials problem: keep the invoice
                return Retry(f"Peppol AP refused our token: {response.words}")
            return http.transient(response, "Peppol AP") or Failed(
                f"Peppol AP: {response.words}")
        outcome, words = report_outcome(report)
        if outcome == "delivered":
            return Accepted(words, provider_message_id=str(report.get("as4MessageId", "")),
                            delivered=True)
        if outcome == "bounced":
            return Failed(words, State.BOUNCED)
        if outcome == "failed":
            return Failed(words)
        return Retry(words, in_doubt=outcome == "in_doubt")


class PeppolFolderProvider(Provider):
    channel = "einvoice"

    def __init__(self, name: str, settings: Mapping[str, Any], context: ProviderContext):
        super().__init__(name, settings, context)
        self.outbox = Path(settings["outbox_dir"])
        self.receipts_dir = Path(settings["receipts_dir"])
        self.poll_seconds = float(settings.get("poll_seconds", 1.0))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: ReceiptSink = lambda receipt: None

    def client_reference(self, message_id: str) -> str:
        return instance_identifier(message_id)

    def start(self, receipts: ReceiptSink) -> None:
        self._sink = receipts
        self.outbox.mkdir(parents=True, exist_ok=True)
        (self.receipts_dir / "processed").mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._poll, name=f"peppol-{self.name}",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def send(self, message: Outgoing) -> Result:
        try:
            sbdh = _ubl_sbdh(message)
        except NotUbl as exc:
            return Failed(f"not sent to the Peppol AP: {exc}")
        instance = instance_identifier(message.message_id)
        final = self.outbox / f"{instance}.xml"
        if final.exists() or (self.receipts_dir / f"{instance}.json").exists() or (
                self.receipts_dir / "processed" / f"{instance}.json").exists():
            return Accepted(f"already in the AP's outbox as {final.name}",
                            provider_message_id=instance)
        temporary = self.outbox / f".{instance}.tmp"
        try:
            with open(temporary, "wb") as out:
                out.write(sbdh)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)  # atomic: the AP sees all of it or nothing
        except OSError as exc:
            return Retry(f"cannot write to the AP's outbox {self.outbox}: {exc}")
        return Accepted(f"dropped as {final} for the AP", provider_message_id=instance)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                for path in sorted(self.receipts_dir.glob("*.json")):
                    self._receipt(path)
            except Exception as exc:  # a folder or the database away: the next round
                log.warning("peppol receipts not read", provider=self.name, error=repr(exc))

    def _receipt(self, path: Path) -> None:
        try:
            report = json.loads(path.read_text())
        except ValueError:
            return  # still being written; the AP renames when done, but be patient
        outcome, words = report_outcome(report)
        receipt_outcome = {"delivered": "delivered", "bounced": "bounced",
                           "failed": "failed"}.get(outcome)
        if receipt_outcome is not None:
            self._sink(Receipt(receipt_outcome, words, provider=self.name,
                               provider_message_id=path.stem))
        os.replace(path, self.receipts_dir / "processed" / path.name)


register("peppol-ap", PeppolApProvider)
register("peppol-folder", PeppolFolderProvider)
