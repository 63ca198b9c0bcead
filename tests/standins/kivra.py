"""A stand-in of Kivra's Tenant API, from its published OpenAPI description (the
`swagger.yml` of github.com/kivra/developer.kivra.com) and error codes
(github.com/kivra/kivra-api-errors):

- `POST /v1/auth`: OAuth2 client credentials (Basic auth) -> {"access_token", "expires_in"};
  every other call needs `Authorization: Bearer <token>` (401, code 40100, without);
- `POST /v2/tenant/{tenantKey}/usermatch/ssn` {"list": [ssn, ...]} -> the ones registered;
- `POST /v2/tenant/{tenantKey}/content`: Content_user_v2 checked as the schema says
  (`subject`, `type`, a 12-digit `ssn`, PDF `parts`, `payment_multiple_options` with
  `payable`, `currency` SEK, `method` "1"/"2", `account`, options with `due_date`,
  `amount` >= 1, `type` SE_OCR (Luhn-checked: 40044 Invalid OCR) or TENANT_REF and a
  reference of at most 25 characters); 1 MB per content (413); an unregistered ssn ->
  400 code 40032 "User Not Found"; -> 201 with `kivra-objkey`;
- duplicate control: a payload seen before (all but `generated_at`) answers 201 with the
  first content's key and delivers nothing more.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stdnum import luhn

from tests.standins import Answer, StandIn, json_answer

CLIENT_ID, CLIENT_SECRET, TENANT_KEY = "kanal-client", "kivra-secret", "4a5f0c2e9b"
ONE_MB = 1024 * 1024


def error(status: int, code: int, short: str) -> Answer:
    return json_answer(status, {"code": code, "short_message": short,
                                "long_message": short})


@dataclass
class Content:
    key: str
    ssn: str
    subject: str
    type: str
    pdf: bytes
    payment: dict[str, Any] | None
    generated_at: str


@dataclass
class Kivra(StandIn):
    registered: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()
        self.contents: list[Content] = []
        self.duplicates = 0
        self._seen: dict[str, str] = {}  # payload digest -> content key

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes
               ) -> Answer:
        if method == "POST" and path == "/v1/auth":
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if headers.get("Authorization") != f"Basic {basic}" or \
                    b"grant_type=client_credentials" not in body:
                return error(401, 40104, "Invalid Client")
            token = secrets.token_hex(16)
            with self.lock:
                self.tokens.add(token)
            return json_answer(200, {"access_token": token, "expires_in": 3600,
                                     "token_type": "bearer"})
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return error(401, 40100, "Unauthorized")
        match = re.fullmatch(r"/v2/tenant/([0-9a-f]+)/(usermatch/ssn|content)", path)
        if method != "POST" or match is None:
            return error(404, 40400, "Not Found")
        if match[1] != TENANT_KEY:
            return error(403, 40300, "Forbidden")
        try:
            payload = json.loads(body)
        except ValueError:
            return error(400, 40008, "Malformed JSON Payload")
        if match[2] == "usermatch/ssn":
            return json_answer(200, {"list": [s for s in payload.get("list", [])
                                              if s in self.registered]})
        return self._content(payload, body)

    def _content(self, payload: dict[str, Any], body: bytes) -> Answer:
        if len(body) > ONE_MB:
            return error(413, 41300, "Payload Too Large")
        if not payload.get("subject") or not payload.get("type"):
            return error(400, 40001, "Invalid Request")
        ssn = str(payload.get("ssn", ""))
        if not re.fullmatch(r"\d{12}", ssn) or not luhn.is_valid(ssn[2:]):
            return error(400, 40009, "Invalid SSN")
        parts = payload.get("parts") or []
        if not parts or any(p.get("content_type") != "application/pdf" for p in parts):
            return error(400, 40028, "Unsupported File Type")
        pdf = base64.b64decode(parts[0]["data"])
        if not pdf.startswith(b"%PDF"):
            return error(400, 40019, "Invalid Files")
        payment = payload.get("payment_multiple_options")
        if payload["type"].startswith("invoice"):
            problem = self._payment_problem(payment)
            if problem is not None:
                return problem
        if ssn not in self.registered:
            return error(400, 40032, "User Not Found")
        digest = hashlib.sha256(json.dumps(
            {k: v for k, v in payload.items() if k != "generated_at"}, sort_keys=True
        ).encode()).hexdigest()
        with self.lock:
            key = self._seen.get(digest)
            if key is not None:
                self.duplicates += 1
            else:
                key = secrets.token_hex(20)
                self._seen[digest] = key
                self.contents.append(Content(key, ssn, payload["subject"], payload["type"],
                                             pdf, payment, payload.get("generated_at", "")))
        return json_answer(201, {"subject": payload["subject"], "type": payload["type"],
                                 "generated_at": payload.get("generated_at")},
                           **{"kivra-objkey": key})

    @staticmethod
    def _payment_problem(payment: Any) -> Answer | None:
        if not isinstance(payment, dict) or payment.get("payable") is not True:
            return error(400, 40001, "Invalid Request")
        if payment.get("currency") != "SEK" or payment.get("method") not in ("1", "2") \
                or not payment.get("account"):
            return error(400, 40021, "Invalid Bank Account")
        for option in payment.get("options") or [None]:
            if not isinstance(option, dict) or not {"due_date", "amount", "type",
                                                    "reference"} <= option.keys():
                return error(400, 40001, "Invalid Request")
            if Decimal(option["amount"]) < 1:
                return error(400, 40042, "Invalid Amount")
            reference = str(option["reference"])
            if len(reference) > 25 or (option["type"] == "SE_OCR"
                                       and not luhn.is_valid(reference)):
                return error(400, 40044, "Invalid OCR")
        return None
