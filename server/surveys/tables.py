"""The survey stage's tables, in the index database (own `MetaData`, created with
`create_all` on start like the delivery outbox's; the archive's migrations never see them).

- `survey_invitations`: one row per survey sent: who, which survey and touchpoint, the
  document that carried it, the link's expiry, the reply code and mobile an SMS answer
  comes from, the experiment variant; `responded_at` is set once, by a compare-and-set
  (the link is single use).
- `survey_responses`: the answer (score 0-10, comment, how it came); the invitation id is
  the primary key, so an invitation has at most one answer whatever races.
- `survey_follow_ups`: a detractor's follow-up with its deadline, open until closed.
- `survey_webhooks`: follow-ups still to post to the tenant's webhook URL (an outbox row
  written in the response's transaction).
- `experiment_exposures`: a customer saw a variant (first time, and how often).
- `experiment_conversions`: a customer converted (once per experiment and event type).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from archive.tables import UTCDateTime

metadata = MetaData()

survey_invitations = Table(
    "survey_invitations", metadata,
    Column("invitation_id", String(26), primary_key=True),
    Column("tenant", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("survey_id", String(64), nullable=False),
    Column("touchpoint", String(64), nullable=False),
    Column("touchpoint_ref", String(200), nullable=False, default=""),
    Column("locale", String(16), nullable=False),
    Column("sender_name", String(80), nullable=False, default=""),  # the page's question
    Column("document_id", String(128), nullable=False, default=""),
    Column("mobile", String(16), nullable=False, default=""),
    Column("reply_code", String(10), nullable=False),
    Column("experiment_id", String(100), nullable=False, default=""),
    Column("variant", String(64), nullable=False, default=""),
    Column("idempotency_key", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("responded_at", UTCDateTime()),
)
Index("ix_survey_invitations_report", survey_invitations.c.tenant,
      survey_invitations.c.survey_id, survey_invitations.c.created_at)
Index("ix_survey_invitations_sms", survey_invitations.c.tenant, survey_invitations.c.mobile,
      survey_invitations.c.reply_code, survey_invitations.c.created_at)
# An SMS answer through a gateway the tenants share names no tenant (`latest_for_sms`):
# found by number and code, not by reading every invitation ever sent (8.8 ms on SQLite,
# 12.6 on PostgreSQL at 100,000 without it).
Index("ix_survey_invitations_reply", survey_invitations.c.mobile,
      survey_invitations.c.reply_code, survey_invitations.c.created_at)
Index("ix_survey_invitations_key", survey_invitations.c.tenant,
      survey_invitations.c.idempotency_key, unique=True)

survey_responses = Table(
    "survey_responses", metadata,
    Column("invitation_id", String(26), primary_key=True),
    Column("tenant", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("survey_id", String(64), nullable=False),
    Column("touchpoint", String(64), nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("channel", String(16), nullable=False),  # link | api | sms
    Column("at", UTCDateTime(), nullable=False),
    Column("experiment_id", String(100), nullable=False, default=""),
    Column("variant", String(64), nullable=False, default=""),
)
Index("ix_survey_responses_customer", survey_responses.c.tenant, survey_responses.c.customer_id)

survey_follow_ups = Table(
    "survey_follow_ups", metadata,
    Column("follow_up_id", String(26), primary_key=True),
    Column("tenant", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("invitation_id", String(26), nullable=False, unique=True),
    Column("survey_id", String(64), nullable=False),
    Column("touchpoint", String(64), nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("deadline", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
    Column("closed_by", String(100), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
)
Index("ix_survey_follow_ups_open", survey_follow_ups.c.tenant, survey_follow_ups.c.closed_at,
      survey_follow_ups.c.deadline)

survey_webhooks = Table(
    "survey_webhooks", metadata,
    Column("webhook_id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(100), nullable=False),
    Column("follow_up_id", String(26), nullable=False),
    Column("body", Text, nullable=False),  # JSON, as posted
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("done", Boolean, nullable=False, default=False),
    Column("last_error", Text, nullable=False, default=""),
)
Index("ix_survey_webhooks_due", survey_webhooks.c.done, survey_webhooks.c.next_attempt_at)

experiment_exposures = Table(
    "experiment_exposures", metadata,
    Column("tenant", String(100), nullable=False),
    Column("experiment_id", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("document_id", String(128), nullable=False, default=""),
    PrimaryKeyConstraint("tenant", "experiment_id", "customer_id"),
)

experiment_conversions = Table(
    "experiment_conversions", metadata,
    Column("tenant", String(100), nullable=False),
    Column("experiment_id", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant", "experiment_id", "customer_id", "event_type"),
)
