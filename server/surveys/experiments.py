"""Exposures of A/B campaign areas: a composed document -> the statements that record which
variant its customer saw, run in the document's own index transaction (beside the delivery
outbox), so every archived document with a variant counts and nothing else does.

The composer chose the variant (server/compose/rules.py with server/compose/variants.py)
and recorded it in `Composition.campaigns`; this only writes it down. A preview is never
archived, so it never counts as an exposure.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from server.compose.model import CampaignArea, Composition
from server.surveys.store import SurveyStore


class CampaignExposures:
    def __init__(self, store: SurveyStore):
        self.store = store

    def statements(self, composition: Composition) -> Callable[[Connection], None] | None:
        """None when the document shows no variant."""
        shown = [c for c in composition.campaigns if c.experiment_id and c.variant
                 and _shown(composition, c)]
        if not shown:
            return None

        def write(conn: Connection) -> None:
            for campaign in shown:
                self.store.expose(conn, composition.tenant, campaign.experiment_id,
                                  composition.recipient.customer_id, campaign.variant,
                                  composition.created_at, composition.document_id)
        return write


def _shown(composition: Composition, campaign: CampaignArea) -> bool:
    """The welcome letter's data may bring its own campaign, which then fills the `main`
    slot instead of the rules' (server.compose.rules.campaign_context): that customer saw
    no variant."""
    if campaign.area != "main" or "campaign" not in composition.context:
        return True
    slot = composition.context["campaign"]
    return bool(slot) and slot.get("title") == campaign.title
