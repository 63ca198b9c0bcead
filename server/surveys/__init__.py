"""The survey stage: NPS surveys after a touchpoint, their answers, detractors' follow-ups,
and A/B variants with their rates (issue 16 items 4 and 5).

    settings.py     [surveys]: page address, link key and lifetimes, surveys, experiments
    links.py        signed single-use response links (JWT, bound to the invitation)
    replies.py      inbound SMS answers ("NPS 9 great service")
    stats.py        NPS and the Wilson score interval
    tables.py       its tables in the index database; store.py their reads and writes
    service.py      SurveyService: send, record, report, experiments (the entry point)
    reports.py      NPS per touchpoint and period; rates per variant
    webhooks.py     follow-ups -> the tenant's signed webhook (server.delivery's machinery)
    page.py         the HTTP page the link lands on
    hooks.py        the event hook the lead wires to server.events
    experiments.py  exposures of A/B campaign areas, written with the document

`SurveyStage` puts them together for `server.app`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.index import DocumentIndex
from server.compose.layouts import LayoutRegistry
from server.delivery.sealed import secret_file
from server.documents import DocumentService
from server.errors import NotFound
from server.surveys.links import LinkSigner
from server.surveys.page import ResponsePages
from server.surveys.service import SurveyService
from server.surveys.settings import SurveySettings
from server.surveys.store import SurveyStore
from server.surveys.webhooks import FollowUpWebhooks


def link_secret(configured: str, state_dir: Path) -> bytes:
    """The configured key, else one made once (0600) in state_dir/surveys-link.key."""
    if configured:
        return configured.encode()
    return secret_file(state_dir / "surveys-link.key",
                       lambda: secrets.token_urlsafe(48).encode())


class SurveyStage:
    """Store, service, follow-up webhooks and the response page of one server."""

    def __init__(self, settings: SurveySettings, index: DocumentIndex,
                 documents: DocumentService | None, layouts: LayoutRegistry, state_dir: Path,
                 webhook_tenants: Mapping[str, Mapping[str, Any]], *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 webhook_poll_seconds: float = 1.0):
        self.settings = settings
        self.store = SurveyStore(index.engine, [
            t for t, spec in webhook_tenants.items() if spec.get("webhook_url")])
        self.webhooks = FollowUpWebhooks(self.store, webhook_tenants, clock=clock,
                                         attempts=settings.webhook_attempts,
                                         poll_seconds=webhook_poll_seconds)
        try:
            layout = layouts.get(settings.layout)
        except NotFound as exc:  # a deployment without the survey layout: no surveys
            if settings.surveys or settings.listen not in ("", "off"):
                raise ValueError(f"surveys.layout: {exc}") from exc
            layout = None
        self.service = SurveyService(
            settings, self.store,
            LinkSigner(link_secret(settings.link_secret, state_dir), settings.max_link_seconds),
            documents, settings.public_url, clock=clock, on_follow_up=self.webhooks.notify)
        self.pages: ResponsePages | None = None
        if layout is not None and settings.listen not in ("", "off"):
            self.pages = ResponsePages(self.service, layout, settings.listen)
            if not settings.public_url:  # development: links point at the page itself
                self.service.public_url = f"http://{self.pages.address}"

    def create_schema(self) -> None:
        self.store.create_schema()

    def start(self, *, post_webhooks: bool = True) -> None:
        """`post_webhooks`: in the server that dispatches deliveries (one place posts)."""
        if post_webhooks and self.store.webhook_tenants:
            self.webhooks.start()
        if self.pages is not None:
            self.pages.start()

    def stop(self) -> None:
        if self.pages is not None:
            self.pages.stop()
            self.pages = None
        self.webhooks.stop()
