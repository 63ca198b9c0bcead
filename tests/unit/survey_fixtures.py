"""A survey stage on a fresh SQLite index with a clock the test moves and a stand-in for
the document stage that keeps what it was asked to compose."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archive.index import DocumentIndex
from server.surveys import SurveyStage
from server.surveys.settings import SurveySettings
from tests.layouts import shipped

LAYOUTS = shipped()
SETTINGS = {
    "listen": "127.0.0.1:0", "link_secret": "s" * 40, "link_days": 14, "follow_up_hours": 48,
    "surveys": {"nps-service": {"reply_code": "NPS", "reply_number": "2222"}},
    "experiments": {"survey-wording": {"variants": {"A": 50, "B": 50},
                                       "conversion_events": ["first_deposit"]}},
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class _Composed:
    document_id: str
    replayed: bool = False


@dataclass
class StubDocuments:
    """Unit stand-in for DocumentService.compose: keeps the requests."""

    requests: list[Any] = field(default_factory=list)

    def compose(self, request: Any) -> _Composed:
        self.requests.append(request)
        return _Composed("01DOC" + uuid.uuid4().hex[:21].upper())

    def last_data(self) -> dict[str, Any]:
        return json.loads(self.requests[-1].data)

    def last_token(self) -> str:
        return urlsplit(self.last_data()["response"]["url"]).path.rsplit("/", 1)[1]


def survey_data(customer_id: str, *, mobile: str = "+4791234567", locale: str = "nb-NO"
                ) -> str:
    data = json.loads((LAYOUTS.get("nps-survey").path / "sample.json").read_text())
    data.pop("response")
    data["locale"] = locale
    data["customer"].update(customer_id=customer_id, mobile=mobile)
    return json.dumps(data)


def make_stage(tmp_path: Path, clock: Clock, webhook_url: str = "",
               **overrides: Any) -> tuple[SurveyStage, StubDocuments]:
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    index.create_schema()
    documents = StubDocuments()
    tenants = {"nordkort": {"webhook_url": webhook_url, "webhook_secret": "whsec-test"}}
    stage = SurveyStage(SurveySettings.from_dict({**SETTINGS, **overrides}), index,
                        documents, LAYOUTS, tmp_path, tenants,  # type: ignore[arg-type]
                        clock=clock, webhook_poll_seconds=0.1)
    stage.create_schema()
    return stage, documents
