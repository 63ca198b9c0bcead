"""The contact policy: may this customer get this communication now? -> send, hold, suppress.

Checked when a journey step is about to communicate (and by any other stage through
`ContactPolicy.check_and_record`), over every communication recorded in `contact_log`, so
caps hold across all journeys and campaigns. In this order:

1. Service and legally required messages (categories `service`, `legal`) always go: never
   capped, never held (a changed-terms notice, a PIN letter, a missed-payment notice).
   The delivery stage's per-channel rules (server.delivery.rules: channel opt-outs, SMS
   quiet hours) still apply to them when they are sent.
2. Opt-out: the customer opted out of the category (profile `opt_outs`, or the delivery
   stage's `delivery_optouts` with that scope): suppressed.
3. Consent: a category in `consent_required` (default: marketing) needs the customer's
   consent (profile `consents`): without it, suppressed (GDPR art. 6/7, ePrivacy art. 13).
4. Frequency caps per category: at most `max` in `days` (default: 1 survey per 90 days,
   2 marketing per 14 days): suppressed when reached. Marketing counts the journeys' own
   and every campaign document the delivery stage sent (deliveries of layouts marked
   `marketing = true`, whoever composed them).
5. One a day: at most `daily_max` (default 1) capped communications per customer and local
   day; and when another journey with a higher priority has this customer due the same
   local day, the lower one is suppressed ("priorities").
6. Quiet hours in the customer's time zone (profile `time_zone`, else the country's, else
   `default_zone`): held until the window opens.

Every suppression is recorded (`contact_suppressions`) with its reason; ListCustomerActivity
shows them.

Settings::

    [journeys.policy]
    caps = { survey = { max = 1, days = 90 }, marketing = { max = 2, days = 14 } }
    daily_max = 1
    quiet_hours = { start = "21:00", end = "08:00" }
    default_zone = "Europe/Oslo"
    consent_required = ["marketing"]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection, Engine

from server.delivery.rules import COUNTRY_ZONES, Cap, Decision, Window
from server.delivery.tables import deliveries, delivery_optouts
from server.journeys.profiles import words as _words
from server.journeys.tables import contact_log, sends, suppressions, timers

NEVER_CAPPED = frozenset({"service", "legal"})
CATEGORIES = ("service", "legal", "marketing", "survey")
SEND = Decision("send")
DEFAULT_CAPS = {"survey": {"max": 1, "days": 90}, "marketing": {"max": 2, "days": 14}}


@dataclass(frozen=True, slots=True)
class ContactRequest:
    """One communication someone wants to make. `source`: who asks ("journey:<ref>:<step>",
    "survey:<touchpoint>"); `instance_id`: the asking journey instance (not its own rival)."""

    tenant: str
    customer_id: str
    category: str  # service | legal | marketing | survey
    source: str
    priority: int = 0
    instance_id: str = ""


@dataclass(frozen=True)
class PolicySettings:
    caps: Mapping[str, Cap] = field(default_factory=lambda: {
        k: Cap(v["max"], v["days"]) for k, v in DEFAULT_CAPS.items()})
    daily_max: int = 1
    quiet_hours: Window | None = Window(time(21), time(8))
    default_zone: str = "Europe/Oslo"
    consent_required: frozenset[str] = frozenset({"marketing"})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicySettings:
        where = "journeys.policy"
        try:
            caps = {str(k): Cap(int(v["max"]), float(v["days"]))
                    for k, v in data.get("caps", DEFAULT_CAPS).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}.caps: {{ <category> = {{ max = N, days = D }} }} "
                             f"({exc})") from exc
        bad = set(caps) - set(CATEGORIES)
        if bad or any(c in NEVER_CAPPED for c in caps):
            raise ValueError(f"{where}.caps: only marketing and survey can be capped, "
                             f"not {sorted(bad | (set(caps) & NEVER_CAPPED))}")
        quiet: Window | None = cls().quiet_hours
        if "quiet_hours" in data:
            spec = data["quiet_hours"]
            try:
                quiet = (Window(time.fromisoformat(spec["start"]), time.fromisoformat(spec["end"]))
                         if spec else None)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{where}.quiet_hours: start and end as HH:MM ({exc})") from exc
        zone = str(data.get("default_zone", cls.default_zone))
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{where}.default_zone: unknown time zone {zone!r}") from exc
        return cls(caps=caps, daily_max=int(data.get("daily_max", 1)), quiet_hours=quiet,
                   default_zone=zone,
                   consent_required=frozenset(data.get("consent_required", ["marketing"])))


def customer_zone(attributes: Mapping[str, Any], default: str) -> ZoneInfo:
    """The customer's time zone: `time_zone`, else their `country`'s, else `default`."""
    for name in (attributes.get("time_zone"),
                 COUNTRY_ZONES.get(str(attributes.get("country", "")).upper())):
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo(default)


class ContactPolicy:
    def __init__(self, settings: PolicySettings, engine: Engine):
        self.settings = settings
        self.engine = engine

    def check(self, conn: Connection, request: ContactRequest, now: datetime,
              attributes: Mapping[str, Any]) -> Decision:
        """The decision for `request` at `now` (aware); `attributes`: the customer's
        profile (server.journeys.profiles). Reads only; see `record` and `suppress`."""
        category = request.category
        if category in NEVER_CAPPED:
            return SEND
        tenant, customer = request.tenant, request.customer_id
        opted_out = _words(attributes, "opt_outs") | set(conn.execute(
            select(delivery_optouts.c.scope).where(
                delivery_optouts.c.tenant == tenant,
                delivery_optouts.c.customer_id == customer)).scalars())
        if category in opted_out or (category == "survey" and "surveys" in opted_out):
            return Decision("suppress", f"customer opted out of {category}")
        if category in self.settings.consent_required and category not in _words(
                attributes, "consents"):
            return Decision("suppress", f"no consent to {category}")
        cap = self.settings.caps.get(category)
        if cap is not None:
            since = now - timedelta(days=cap.days)
            seen = self._count(conn, tenant, customer, (category,), since,
                               now + timedelta(microseconds=1))  # what went out at `now` too
            if category == "marketing":
                seen += self._campaigns(conn, tenant, customer, since)
            if seen >= cap.max:
                return Decision("suppress", f"frequency cap {category}: {seen} of {cap.max} "
                                f"in {cap.days:g} days already")
        zone = customer_zone(attributes, self.settings.default_zone)
        local = now.astimezone(zone)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        day_end = (day_start + timedelta(days=1, hours=2)).replace(hour=0)  # DST-proof
        capped = [c for c in CATEGORIES if c not in NEVER_CAPPED]
        today = self._count(conn, tenant, customer, capped, day_start.astimezone(UTC),
                            day_end.astimezone(UTC))
        if today >= self.settings.daily_max:
            return Decision("suppress", f"already contacted today (at most "
                            f"{self.settings.daily_max} a day)")
        rival = conn.execute(select(timers.c.instance_id, timers.c.priority).where(
            timers.c.tenant == tenant, timers.c.customer_id == customer,
            timers.c.state == "pending", timers.c.category.in_(capped),
            timers.c.priority > request.priority, timers.c.instance_id != request.instance_id,
            timers.c.due_at >= day_start.astimezone(UTC),
            timers.c.due_at < day_end.astimezone(UTC)).limit(1)).first()
        if rival is not None:
            return Decision("suppress", f"a journey with a higher priority ({rival.priority} > "
                            f"{request.priority}) has this customer today "
                            f"(instance {rival.instance_id})")
        window = self.settings.quiet_hours
        if window is not None:
            opens = window.opens_after(local)
            if opens != local:
                return Decision("hold", f"quiet hours until {opens:%H:%M} {zone.key}",
                                until=opens.astimezone(UTC))
        return SEND

    @staticmethod
    def _count(conn: Connection, tenant: str, customer: str, categories: Sequence[str],
               since: datetime, until: datetime) -> int:
        return int(conn.execute(select(func.count()).select_from(contact_log).where(
            contact_log.c.tenant == tenant, contact_log.c.customer_id == customer,
            contact_log.c.category.in_(list(categories)), contact_log.c.at >= since,
            contact_log.c.at < until)).scalar() or 0)

    @staticmethod
    def _campaigns(conn: Connection, tenant: str, customer: str, since: datetime) -> int:
        """Marketing documents that reached the customer outside the journeys (campaigns
        composed by Compose or bulk jobs): the delivery stage's sent or delivered
        deliveries of marketing layouts, one per document, without the journeys' own
        (those are in contact_log already)."""
        journey_documents = select(sends.c.document_id).where(
            sends.c.tenant == tenant, sends.c.customer_id == customer,
            sends.c.document_id.is_not(None))
        rows = conn.execute(select(deliveries.c.document_id, deliveries.c.details).where(
            deliveries.c.tenant == tenant, deliveries.c.customer_id == customer,
            deliveries.c.state.in_(["sent", "delivered"]), deliveries.c.state_at >= since,
            deliveries.c.document_id.not_in(journey_documents))).all()
        return len({r.document_id for r in rows if json.loads(r.details or "{}").get(
            "marketing")})

    @staticmethod
    def record(conn: Connection, request: ContactRequest, at: datetime, ref: str = "") -> None:
        """Count a communication that is going out (in the caller's transaction)."""
        conn.execute(insert(contact_log).values(
            tenant=request.tenant, customer_id=request.customer_id, category=request.category,
            source=request.source[:300], ref=ref[:200], at=at))

    @staticmethod
    def suppress(conn: Connection, request: ContactRequest, reason: str, at: datetime) -> None:
        conn.execute(insert(suppressions).values(
            tenant=request.tenant, customer_id=request.customer_id, category=request.category,
            source=request.source[:300], reason=reason[:2000], at=at))

    def check_and_record(self, request: ContactRequest, now: datetime,
                         attributes: Mapping[str, Any] | None = None, ref: str = "",
                         profile: Callable[[Connection, str, str], Mapping[str, Any]] | None
                         = None, *, can_wait: bool = True) -> Decision:
        """For other stages (surveys): decide, and in the same transaction count the
        communication (`send`, with `ref`: the caller's id of it) or record the suppression
        (`suppress`); `hold` records nothing (ask again at `decision.until`). `can_wait`
        False: a caller that cannot ask again later (SendSurvey answers now) takes quiet
        hours as `send` (its reason says so); the delivery stage's own quiet hours still
        hold an SMS. `attributes` None: the stored profile."""
        from server.journeys.profiles import load_profile

        with self.engine.begin() as conn:
            attrs = attributes if attributes is not None else (profile or load_profile)(
                conn, request.tenant, request.customer_id)
            decision = self.check(conn, request, now, attrs)
            if decision.action == "hold" and not can_wait:
                decision = Decision("send", f"sent in {decision.reason}")
            if decision.action == "send":
                self.record(conn, request, now, ref)
            elif decision.action == "suppress":
                self.suppress(conn, request, decision.reason, now)
            return decision

    def forget(self, request: ContactRequest, ref: str) -> None:
        """Take back what `check_and_record` counted as `ref`: the communication was not
        made after all (its document could not be composed), so it caps nothing."""
        with self.engine.begin() as conn:
            conn.execute(delete(contact_log).where(
                contact_log.c.tenant == request.tenant,
                contact_log.c.customer_id == request.customer_id,
                contact_log.c.category == request.category, contact_log.c.ref == ref[:200]))
