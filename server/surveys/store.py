"""Survey rows in the index database (server.surveys.tables): invitations, the single use of
a link (a compare-and-set on `responded_at`), responses with their follow-up and its webhook
row in one transaction, exposures and conversions, and the report's reads."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from server.schema import create_tables
from server.surveys.tables import (
    experiment_conversions,
    experiment_exposures,
    metadata,
    survey_follow_ups,
    survey_invitations,
    survey_responses,
    survey_webhooks,
)


@dataclass(frozen=True, slots=True)
class Answer:
    """A response as recorded (and the follow-up it raised, if any)."""

    invitation: Mapping[str, Any]
    score: int
    comment: str
    channel: str
    at: datetime
    follow_up: Mapping[str, Any] | None


class AlreadyAnswered(Exception):
    pass


class Expired(Exception):
    pass


class SurveyStore:
    def __init__(self, engine: Engine, webhook_tenants: Sequence[str] = ()):
        self.engine = engine
        self.webhook_tenants = frozenset(webhook_tenants)

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            create_tables(conn, metadata)

    # --- invitations ---------------------------------------------------------------------

    def add_invitation(self, row: Mapping[str, Any]) -> None:
        """Raises IntegrityError when the idempotency key is taken (see `by_key`)."""
        with self.engine.begin() as conn:
            conn.execute(insert(survey_invitations).values(**row))

    def set_document(self, invitation_id: str, document_id: str, locale: str) -> None:
        """The document that carried the invitation, and the locale it was composed in
        (the page answers in it)."""
        values = {"document_id": document_id, **({"locale": locale} if locale else {})}
        with self.engine.begin() as conn:
            conn.execute(update(survey_invitations)
                         .where(survey_invitations.c.invitation_id == invitation_id)
                         .values(**values))

    def discard_unsent(self, invitation_id: str) -> None:
        """Remove an invitation whose document was never made."""
        with self.engine.begin() as conn:
            conn.execute(delete(survey_invitations).where(
                survey_invitations.c.invitation_id == invitation_id,
                survey_invitations.c.document_id == "",
                survey_invitations.c.responded_at.is_(None)))

    def invitation(self, invitation_id: str) -> RowMapping | None:
        with self.engine.connect() as conn:
            return conn.execute(select(survey_invitations).where(
                survey_invitations.c.invitation_id == invitation_id)).mappings().first()

    def by_key(self, tenant: str, key: str) -> RowMapping | None:
        with self.engine.connect() as conn:
            return conn.execute(select(survey_invitations).where(
                survey_invitations.c.tenant == tenant,
                survey_invitations.c.idempotency_key == key)).mappings().first()

    def latest_for_sms(self, tenant: str | None, mobile: str, code: str, now: datetime
                       ) -> RowMapping | None:
        """The newest unanswered, unexpired invitation sent to `mobile` with `code` (any
        tenant when None: an SMS gateway shared by tenants)."""
        query = select(survey_invitations).where(
            survey_invitations.c.mobile == mobile, survey_invitations.c.reply_code == code,
            survey_invitations.c.responded_at.is_(None),
            survey_invitations.c.expires_at > now)
        if tenant is not None:
            query = query.where(survey_invitations.c.tenant == tenant)
        with self.engine.connect() as conn:
            return conn.execute(query.order_by(survey_invitations.c.created_at.desc())
                                .limit(1)).mappings().first()

    # --- answering -----------------------------------------------------------------------

    def answer(self, invitation: Mapping[str, Any], score: int, comment: str, channel: str,
               now: datetime, follow_up: Mapping[str, Any] | None) -> Answer:
        """Record the one answer of `invitation`: AlreadyAnswered or Expired when the link
        cannot be used (any more). A detractor's `follow_up` row and its webhook row go in
        the same transaction."""
        inv = invitation
        with self.engine.begin() as conn:
            taken = conn.execute(update(survey_invitations).where(
                survey_invitations.c.invitation_id == inv["invitation_id"],
                survey_invitations.c.responded_at.is_(None),
                survey_invitations.c.expires_at > now).values(responded_at=now)).rowcount
            if taken != 1:
                current = conn.execute(select(survey_invitations.c.responded_at).where(
                    survey_invitations.c.invitation_id == inv["invitation_id"])).scalar()
                raise AlreadyAnswered() if current is not None else Expired()
            conn.execute(insert(survey_responses).values(
                invitation_id=inv["invitation_id"], tenant=inv["tenant"],
                customer_id=inv["customer_id"], survey_id=inv["survey_id"],
                touchpoint=inv["touchpoint"], score=score, comment=comment, channel=channel,
                at=now, experiment_id=inv["experiment_id"], variant=inv["variant"]))
            if follow_up is not None:
                conn.execute(insert(survey_follow_ups).values(**follow_up))
                if inv["tenant"] in self.webhook_tenants:
                    conn.execute(insert(survey_webhooks).values(
                        tenant=inv["tenant"], follow_up_id=follow_up["follow_up_id"],
                        body=json.dumps(follow_up_body(follow_up, inv), sort_keys=True,
                                        ensure_ascii=False),
                        attempts=0, next_attempt_at=now, done=False, last_error=""))
        return Answer(inv, score, comment, channel, now, follow_up)

    # --- follow-ups ----------------------------------------------------------------------

    def close_follow_up(self, tenant: str, follow_up_id: str, who: str, note: str,
                        now: datetime) -> RowMapping | None:
        with self.engine.begin() as conn:
            conn.execute(update(survey_follow_ups).where(
                survey_follow_ups.c.tenant == tenant,
                survey_follow_ups.c.follow_up_id == follow_up_id,
                survey_follow_ups.c.closed_at.is_(None)).values(
                    closed_at=now, closed_by=who[:100], note=note))
            return conn.execute(select(survey_follow_ups).where(
                survey_follow_ups.c.tenant == tenant,
                survey_follow_ups.c.follow_up_id == follow_up_id)).mappings().first()

    def open_follow_ups(self, tenant: str) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(survey_follow_ups).where(
                survey_follow_ups.c.tenant == tenant, survey_follow_ups.c.closed_at.is_(None))
                .order_by(survey_follow_ups.c.deadline)).mappings())

    # --- webhooks (server.surveys.webhooks) ------------------------------------------------

    def webhooks_due(self, now: datetime, limit: int = 100) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(survey_webhooks).where(
                survey_webhooks.c.done.is_(False), survey_webhooks.c.next_attempt_at <= now)
                .order_by(survey_webhooks.c.webhook_id).limit(limit)).mappings())

    def webhook_done(self, webhook_id: int, *, ok: bool, error: str,
                     retry_at: datetime | None) -> None:
        values: dict[str, Any] = {"attempts": survey_webhooks.c.attempts + 1,
                                  "last_error": error[:2000]}
        if ok or retry_at is None:
            values["done"] = True
        else:
            values["next_attempt_at"] = retry_at
        with self.engine.begin() as conn:
            conn.execute(update(survey_webhooks)
                         .where(survey_webhooks.c.webhook_id == webhook_id).values(**values))

    # --- experiments ---------------------------------------------------------------------

    def expose(self, conn: Connection, tenant: str, experiment_id: str, customer_id: str,
               variant: str, now: datetime, document_id: str = "") -> None:
        """The customer saw `variant`: the first exposure counts, a later one changes
        nothing (INSERT ... ON CONFLICT DO NOTHING, so a race never fails the document's
        transaction this runs in)."""
        dialect_insert = {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(
            conn.dialect.name)
        values = dict(tenant=tenant, experiment_id=experiment_id, customer_id=customer_id,
                      variant=variant, first_at=now, document_id=document_id)
        if dialect_insert is not None:
            conn.execute(dialect_insert(experiment_exposures).values(**values)
                         .on_conflict_do_nothing())
            return
        exists = conn.execute(select(experiment_exposures.c.variant).where(
            experiment_exposures.c.tenant == tenant,
            experiment_exposures.c.experiment_id == experiment_id,
            experiment_exposures.c.customer_id == customer_id)).first()
        if exists is None:
            conn.execute(insert(experiment_exposures).values(**values))

    def expose_now(self, tenant: str, experiment_id: str, customer_id: str, variant: str,
                   now: datetime, document_id: str = "") -> None:
        with self.engine.begin() as conn:
            self.expose(conn, tenant, experiment_id, customer_id, variant, now, document_id)

    def exposure(self, tenant: str, experiment_id: str, customer_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(experiment_exposures.c.variant).where(
                experiment_exposures.c.tenant == tenant,
                experiment_exposures.c.experiment_id == experiment_id,
                experiment_exposures.c.customer_id == customer_id)).scalar()

    def convert(self, tenant: str, experiment_id: str, customer_id: str, event_type: str,
                variant: str, at: datetime) -> bool:
        """False when this conversion was already counted."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(experiment_conversions).values(
                    tenant=tenant, experiment_id=experiment_id, customer_id=customer_id,
                    event_type=event_type, variant=variant, at=at))
        except IntegrityError:
            return False
        return True

    def experiment_counts(self, tenant: str, experiment_id: str) -> dict[str, dict[str, int]]:
        """variant -> exposed, converted (customers), invited, responded, promoters,
        detractors."""
        counts: dict[str, dict[str, int]] = {}

        def add(variant: str, name: str, value: int) -> None:
            counts.setdefault(variant, {"exposed": 0, "converted": 0, "invited": 0,
                                        "responded": 0, "promoters": 0, "detractors": 0})
            counts[variant][name] += int(value or 0)

        e, c = experiment_exposures, experiment_conversions
        i, r = survey_invitations, survey_responses
        with self.engine.connect() as conn:
            for variant, n in conn.execute(select(e.c.variant, func.count()).where(
                    e.c.tenant == tenant, e.c.experiment_id == experiment_id)
                    .group_by(e.c.variant)):
                add(variant, "exposed", n)
            for variant, n in conn.execute(select(c.c.variant,
                                                  func.count(func.distinct(c.c.customer_id)))
                                           .where(c.c.tenant == tenant,
                                                  c.c.experiment_id == experiment_id)
                                           .group_by(c.c.variant)):
                add(variant, "converted", n)
            for variant, n in conn.execute(select(i.c.variant, func.count()).where(
                    i.c.tenant == tenant, i.c.experiment_id == experiment_id)
                    .group_by(i.c.variant)):
                add(variant, "invited", n)
            for variant, score in conn.execute(select(r.c.variant, r.c.score).where(
                    r.c.tenant == tenant, r.c.experiment_id == experiment_id)):
                add(variant, "responded", 1)
                add(variant, "promoters", score >= 9)
                add(variant, "detractors", score <= 6)
        return counts

    # --- report --------------------------------------------------------------------------

    def report_rows(self, tenant: str, survey_id: str, touchpoint: str, start: datetime,
                    end: datetime) -> list[tuple[str, datetime, int | None]]:
        """(touchpoint, sent at, score or None) of every invitation sent in [start, end)."""
        i, r = survey_invitations, survey_responses
        query = (select(i.c.touchpoint, i.c.created_at, r.c.score)
                 .select_from(i.outerjoin(r, r.c.invitation_id == i.c.invitation_id))
                 .where(i.c.tenant == tenant, i.c.created_at >= start, i.c.created_at < end,
                        i.c.document_id != ""))  # sent: its document was made
        if survey_id:
            query = query.where(i.c.survey_id == survey_id)
        if touchpoint:
            query = query.where(i.c.touchpoint == touchpoint)
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]

    def overdue_follow_ups(self, tenant: str, now: datetime, survey_id: str = "",
                           touchpoint: str = "") -> list[RowMapping]:
        f = survey_follow_ups
        query = select(f).where(f.c.tenant == tenant, f.c.closed_at.is_(None),
                                f.c.deadline < now)
        if survey_id:
            query = query.where(f.c.survey_id == survey_id)
        if touchpoint:
            query = query.where(f.c.touchpoint == touchpoint)
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(f.c.deadline).limit(1000)).mappings())

    def open_follow_up_count(self, tenant: str) -> int:
        f = survey_follow_ups
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(
                f.c.tenant == tenant, f.c.closed_at.is_(None))).scalar() or 0)


def follow_up_body(follow_up: Mapping[str, Any], invitation: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """The webhook's JSON (see server.surveys.webhooks)."""
    return {
        "type": "follow_up_required", "follow_up_id": follow_up["follow_up_id"],
        "tenant": follow_up["tenant"], "customer_id": follow_up["customer_id"],
        "invitation_id": follow_up["invitation_id"], "survey_id": follow_up["survey_id"],
        "touchpoint": follow_up["touchpoint"],
        "touchpoint_ref": invitation.get("touchpoint_ref", ""),
        "document_id": invitation.get("document_id", ""),
        "score": follow_up["score"], "comment": follow_up["comment"],
        "at": follow_up["created_at"].isoformat(), "deadline": follow_up["deadline"].isoformat(),
    }
