"""A stand-in of a Peppol access point with the HTTP API of phase4's Peppol standalone AP
(github.com/phax/phase4-peppol-standalone: `POST /sendsbdh`, the `X-Token` header, the
JSON sending report of its docs/example-sending-report-*.json), and the same AP taking
files from an outbox folder and writing its report as `<InstanceIdentifier>.json`.

The SBDH is checked as an AP checks it before sending (Peppol Envelope Specification:
header version, sender/receiver with the iso6523-actorid-upis authority, the DOCUMENTID,
PROCESSID and COUNTRY_C1 scopes, a UBL document after the header); a receiver in
`unknown` is in no SMP (no `c3EndpointUrl`, as phase4 answers when the lookup fails).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from server.delivery.providers.sbdh import SBDH, UBL_ROOTS
from tests.standins import Answer, StandIn, json_answer

TOKEN = "NjIh9tIx3Rgzme19mGIy"  # the phase4 standalone's documented default X-Token


@dataclass
class Sent:
    instance: str
    sender: str
    receiver: str
    document_type: str
    process: str
    ubl: bytes
    as4_message_id: str


def report(sbdh: bytes, unknown: set[str], sent: list[Sent]) -> dict:
    """Check the SBDH and 'send' it: the phase4 sending report."""
    root = etree.fromstring(sbdh)
    ns = {"s": SBDH}
    header = root.find("s:StandardBusinessDocumentHeader", ns)
    assert header is not None and header.findtext("s:HeaderVersion", namespaces=ns) == "1.0"
    ids = {name: header.find(f"s:{name}/s:Identifier", ns) for name in ("Sender", "Receiver")}
    assert all(i is not None and i.get("Authority") == "iso6523-actorid-upis"
               for i in ids.values())
    scopes = {s.findtext("s:Type", namespaces=ns): s.findtext("s:InstanceIdentifier",
                                                              namespaces=ns)
              for s in header.iterfind("s:BusinessScope/s:Scope", ns)}
    assert {"DOCUMENTID", "PROCESSID", "COUNTRY_C1"} <= scopes.keys()
    document = header.getnext()
    assert document is not None and etree.QName(document).namespace in UBL_ROOTS
    instance = header.findtext("s:DocumentIdentification/s:InstanceIdentifier", namespaces=ns)
    receiver = ids["Receiver"].text
    base = {"currentDateTimeUTC": datetime.now(UTC).isoformat(), "phase4Version": "3.1.1",
            "senderId": f"iso6523-actorid-upis::{ids['Sender'].text}",
            "receiverId": f"iso6523-actorid-upis::{receiver}",
            "docTypeId": f"busdox-docid-qns::{scopes['DOCUMENTID']}",
            "processId": f"cenbii-procid-ubl::{scopes['PROCESSID']}",
            "countryC1": scopes["COUNTRY_C1"], "sbdhInstanceIdentifier": instance}
    if receiver in unknown:
        return {**base, "sendingException": {
            "class": "com.helger.phase4.util.Phase4Exception",
            "message": f"Failed to resolve SMP endpoint for participant {receiver}"},
            "sendingSuccess": False, "overallSuccess": False}
    as4 = f"{uuid.uuid4()}@phase4"
    sent.append(Sent(instance, ids["Sender"].text, receiver, scopes["DOCUMENTID"],
                     scopes["PROCESSID"], etree.tostring(document), as4))
    receipt = (f"<eb:SignalMessage xmlns:eb=\"http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/"
               f"ns/core/200704/\"><eb:MessageInfo><eb:RefToMessageId>{as4}"
               "</eb:RefToMessageId></eb:MessageInfo><eb:Receipt/></eb:SignalMessage>")
    return {**base, "c3EndpointUrl": "https://ap.receiver.example/as4",
            "c3CertCheckResult": "VALID", "as4MessageId": as4,
            "as4ConversationId": f"phase4@Conv{uuid.uuid4().int % 10**19}",
            "sendingResult": "SUCCESS", "as4ReceivedSignalMsg": receipt,
            "as4ResponseError": False, "sendingSuccess": True, "overallSuccess": True}


class PeppolAp(StandIn):
    def __init__(self, unknown: set[str] | None = None):
        super().__init__()
        self.unknown = unknown or set()
        self.sent: list[Sent] = []

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes
               ) -> Answer:
        if headers.get("X-Token") != TOKEN:
            return json_answer(403, {"error": "invalid X-Token"})
        if method != "POST" or path != "/sendsbdh":
            return json_answer(404, {"error": path})
        with self.lock:
            return json_answer(200, report(body, self.unknown, self.sent))


class FolderAp:
    """The AP reading `outbox` (only complete `*.xml` files: it ignores dot files) and
    writing its report into `receipts`, written under a temporary name, then renamed."""

    def __init__(self, outbox: Path, receipts: Path, unknown: set[str] | None = None):
        self.outbox, self.receipts = outbox, receipts
        self.unknown = unknown or set()
        self.sent: list[Sent] = []
        self.taken: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.receipts.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for path in sorted(self.outbox.glob("*.xml")):
                result = report(path.read_bytes(), self.unknown, self.sent)
                self.taken.append(path.name)
                temporary = self.receipts / f".{path.stem}.tmp"
                temporary.write_text(json.dumps(result))
                temporary.rename(self.receipts / f"{path.stem}.json")
                path.unlink()
