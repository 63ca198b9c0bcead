"""The journeys' tables, in the index database (own `MetaData`, `create_all` on start, like
the delivery stage's). What each holds:

- `journey_customers`: a customer's profile as events told it (attributes JSON: segment,
  country, time_zone, consents, opt_outs, recipient ...), read by conditions and the policy.
- `journey_instances`: one customer's run through one journey version, started by one
  trigger event; unique per (journey, version, customer, occurrence) where occurrence is ""
  for a `reentry = "once"` journey and the trigger event id for `"every"`. So a replayed
  event never starts a second instance.
- `journey_timers`: the durable timers: a step of an instance due at a time (waits,
  branches, and every step's first run); claimed with a lease by whichever server ticks.
- `journey_sends`: the communications: unique per (journey, customer, step, occurrence),
  inserted *before* the bulk job that composes it exists, so a step communicates at most
  once whatever crashes or replays; `state` planned -> submitting (job id reserved) ->
  submitted, with the document id the bulk path will give the document; or `refused`
  (its data names another customer: server.journeys.sends).
- `contact_log`: every communication counted by the contact policy (journeys' sends and
  whatever else calls `ContactPolicy.record`), per customer and category.
- `contact_suppressions`: every communication the policy stopped, with its reason.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from archive.tables import UTCDateTime

metadata = MetaData()
ID = BigInteger().with_variant(Integer, "sqlite")

customers = Table(
    "journey_customers", metadata,
    Column("tenant", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("attributes", Text, nullable=False, default="{}"),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant", "customer_id"),
)

instances = Table(
    "journey_instances", metadata,
    Column("instance_id", String(26), primary_key=True),
    Column("tenant", String(100), nullable=False),
    Column("journey", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("occurrence", String(26), nullable=False),  # "" or the trigger event id
    Column("trigger_event_id", String(26), nullable=False),
    Column("trigger_at", UTCDateTime(), nullable=False),  # the trigger's occurred_at
    Column("priority", Integer, nullable=False, default=0),
    Column("state", String(16), nullable=False),  # active | completed | exited
    Column("step", String(100), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    UniqueConstraint("tenant", "journey", "version", "customer_id", "occurrence",
                     name="uq_journey_instances_once"),
)
Index("ix_journey_instances_customer", instances.c.tenant, instances.c.customer_id,
      instances.c.state)

timers = Table(
    "journey_timers", metadata,
    Column("timer_id", ID, primary_key=True, autoincrement=True),
    Column("instance_id", String(26), nullable=False),
    Column("step", String(100), nullable=False),
    Column("tenant", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("category", String(16), nullable=False, default=""),  # of a send step, else ""
    Column("due_at", UTCDateTime(), nullable=False),
    Column("state", String(16), nullable=False),  # pending | done | cancelled
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime()),
    Column("fired_at", UTCDateTime()),
    UniqueConstraint("instance_id", "step", name="uq_journey_timers_step"),
)
Index("ix_journey_timers_due", timers.c.state, timers.c.due_at)
Index("ix_journey_timers_customer", timers.c.tenant, timers.c.customer_id, timers.c.state)

sends = Table(
    "journey_sends", metadata,
    Column("send_id", String(26), primary_key=True),
    Column("tenant", String(100), nullable=False),
    Column("journey", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("step", String(100), nullable=False),
    Column("occurrence", String(26), nullable=False),
    Column("instance_id", String(26), nullable=False),
    Column("category", String(16), nullable=False),
    Column("layout_id", String(100), nullable=False),
    Column("layout_version", String(50), nullable=False),
    Column("channels", String(100), nullable=False, default=""),
    Column("data", Text, nullable=False),  # the layout's data, JSON
    Column("priority", Integer, nullable=False, default=0),
    Column("state", String(16), nullable=False),  # planned|submitting|submitted|refused
    Column("planned_at", UTCDateTime(), nullable=False),
    Column("job_id", String(26)),
    Column("job_created_at", UTCDateTime()),
    Column("document_id", String(26)),
    # what the journey adds to the compose request (server.jobs.model.RecordOptions JSON:
    # the profile's consents and opt-outs when the policy decided, no fallbacks when a
    # branch of the journey reacts to this send's bounce); NULL: nothing (older rows)
    Column("options", Text),
    UniqueConstraint("tenant", "journey", "customer_id", "step", "occurrence",
                     name="uq_journey_sends_once"),
)
Index("ix_journey_sends_state", sends.c.state)
Index("ix_journey_sends_customer", sends.c.tenant, sends.c.customer_id)
Index("ix_journey_sends_document", sends.c.document_id)

contact_log = Table(
    "contact_log", metadata,
    Column("contact_id", ID, primary_key=True, autoincrement=True),
    Column("tenant", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("category", String(16), nullable=False),
    Column("source", String(300), nullable=False),  # "journey:<ref>:<step>", "survey:..."
    Column("ref", String(200), nullable=False, default=""),  # send id, document id ...
    Column("at", UTCDateTime(), nullable=False),
)
Index("ix_contact_log_customer", contact_log.c.tenant, contact_log.c.customer_id,
      contact_log.c.category, contact_log.c.at)

suppressions = Table(
    "contact_suppressions", metadata,
    Column("suppression_id", ID, primary_key=True, autoincrement=True),
    Column("tenant", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("category", String(16), nullable=False),
    Column("source", String(300), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)
Index("ix_contact_suppressions_customer", suppressions.c.tenant, suppressions.c.customer_id,
      suppressions.c.at)
