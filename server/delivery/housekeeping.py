"""The outbox's housekeeping, run by the dispatcher on every tick: rows left `sending` by a
dispatcher that died mid-attempt are reaped, queued rows past their expiry expire (and then
fall back), and sealed inputs no delivery can need any more are purged. Part of
`server.delivery.store.DeliveryStore`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update

from server.delivery import metrics
from server.delivery.model import FINAL, HANDS_OVER, MAY_STILL_BOUNCE, State
from server.delivery.rules import HELD
from server.delivery.tables import deliveries, delivery_inputs
from server.delivery.transitions import OutboxTransitions


class OutboxHousekeeping(OutboxTransitions):
    """Reaping lapsed leases, expiring queued rows, purging sealed inputs."""

    def reap(self, now: datetime, resend_at: Mapping[str, datetime]) -> list[str]:
        """Rows left `sending` past their lease (a dispatcher died mid-attempt): close the
        attempt as `interrupted` and queue the row again at `resend_at[provider]` (a
        provider that may have accepted it waits for a receipt first)."""
        with self.engine.begin() as conn:
            rows = conn.execute(select(deliveries).where(
                deliveries.c.state == State.SENDING.value,
                deliveries.c.lease_until < now)).mappings().all()
            reaped = []
            for row in rows:
                at = resend_at.get(row["provider"], now)
                reason = "attempt interrupted (the dispatcher stopped mid-attempt)"
                moved = conn.execute(update(deliveries).where(
                    deliveries.c.delivery_id == row["delivery_id"],
                    deliveries.c.state == State.SENDING.value,
                    deliveries.c.attempts == row["attempts"],
                ).values(state=State.QUEUED.value, state_at=now, reason=reason,
                         next_attempt_at=at, lease_owner=None, lease_until=None))
                if moved.rowcount == 1:
                    self._close_attempt(conn, row["delivery_id"], row["attempts"],
                                        "interrupted", reason, now)
                    self._record(conn, row, State.QUEUED, reason, now)
                    reaped.append(row["delivery_id"])
            return reaped

    def held(self, now: datetime) -> list[dict[str, Any]]:
        """Queued rows held by quiet hours (server.delivery.rules.HELD) and not due yet:
        delivery id, channel, details and when they are due."""
        with self.engine.begin() as conn:
            return [dict(r) for r in conn.execute(select(
                deliveries.c.delivery_id, deliveries.c.channel, deliveries.c.details,
                deliveries.c.next_attempt_at).where(
                deliveries.c.state == State.QUEUED.value,
                deliveries.c.reason.startswith(HELD, autoescape=True),
                deliveries.c.next_attempt_at > now)).mappings()]

    def due_now(self, delivery_ids: Sequence[str], now: datetime) -> int:
        """These held rows (`held`) are due at `now`, those still queued and not due
        (a few hundred per statement). -> how many."""
        due = 0
        with self.engine.begin() as conn:
            for start in range(0, len(delivery_ids), 500):
                due += conn.execute(update(deliveries).where(
                    deliveries.c.delivery_id.in_(delivery_ids[start:start + 500]),
                    deliveries.c.state == State.QUEUED.value,
                    deliveries.c.next_attempt_at > now,
                ).values(next_attempt_at=now)).rowcount or 0
        return due

    def expire(self, now: datetime) -> list[str]:
        """Queued rows past their `expires_at` -> `expired` (which falls back)."""
        with self.engine.begin() as conn:
            due = conn.execute(select(deliveries.c.delivery_id, deliveries.c.provider).where(
                deliveries.c.state == State.QUEUED.value,
                deliveries.c.expires_at < now)).all()
            expired = [(d, provider) for d, provider in due if self.move(
                d, State.EXPIRED, "not sent before it expired", now,
                only_from=[State.QUEUED], conn=conn)]
        for _, provider in expired:
            metrics.failed(provider, State.EXPIRED.value)
        return [d for d, _ in expired]

    def purge_inputs(self, now: datetime, sent_grace: timedelta) -> int:
        """Drop sealed inputs whose deliveries have all ended (a `sent` row counts as ended
        `sent_grace` after it was sent: bounces come within the relay's queue lifetime), or
        whose `purge_at` has passed. -> how many were dropped.

        A `delivered` e-mail with a fallback that a DSN reported only `relayed` or
        `expanded` (RFC 3464 §2.3.3; `details.may_still_bounce`, server.delivery.receipts)
        counts as ended `sent_grace` after it, too: the next server can still bounce it,
        and the bounce then needs the input to print the letter. One reported `delivered`
        has ended: nothing reopens it."""
        ended = [s.value for s in FINAL]
        may_bounce = or_(deliveries.c.state == State.SENT.value,
                         and_(deliveries.c.state == State.DELIVERED.value,
                              deliveries.c.channel == "email", deliveries.c.fallbacks != "",
                              deliveries.c.details.contains(f'"{MAY_STILL_BOUNCE}": true')))
        with self.engine.begin() as conn:
            open_rows = select(deliveries.c.document_id).where(
                deliveries.c.tenant == delivery_inputs.c.tenant,
                deliveries.c.document_id == delivery_inputs.c.document_id,
                or_(deliveries.c.state.notin_(ended), may_bounce),
                ~and_(may_bounce, deliveries.c.state_at < now - sent_grace),
            ).exists()
            pending_fallback = select(deliveries.c.document_id).where(
                deliveries.c.tenant == delivery_inputs.c.tenant,
                deliveries.c.document_id == delivery_inputs.c.document_id,
                deliveries.c.state.in_([s.value for s in HANDS_OVER]),
                deliveries.c.fallbacks != "").exists()
            result = conn.execute(delete(delivery_inputs).where(
                (delivery_inputs.c.purge_at < now) | (~open_rows & ~pending_fallback)))
            return result.rowcount or 0
