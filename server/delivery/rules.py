"""Contact rules, checked at send time: a due delivery -> send now, hold until, or suppress.

In this order:

1. Consent and opt-out. A channel the customer opted out of (`delivery_optouts`, scope =
   the channel, read at send time; or as the document's sender knew it: a journey's
   profile `opt_outs`, in the delivery's details) is suppressed, and the next channel
   of the plan takes over (an invoice must still arrive). A marketing message to a customer
   who opted out of marketing is suppressed for good, and so is one by e-mail, SMS or
   digital mailbox to a customer who never consented to it (`consents`, the data's and the
   sender's, lacks "marketing"); a marketing letter on paper needs no consent
   (CONSENT_CHANNELS).
2. Frequency caps per customer and document kind (or `marketing`): at most `max` messages
   in `days` (a document is one message, whatever its channels: its e-mail does not cap
   its own letter). A cap never suppresses an invoice, credit note, reminder or statement, nor a
   layout marked `[delivery] legally_required = true` (a change of terms): those are
   legally required or the customer's own money.
3. Quiet hours per channel and country, in the customer's time zone (from the postal
   address's country, else the mobile number's country code): a delivery due inside the
   window is held (stays `queued`, its reason starting with `HELD`) until the window
   opens. Defaults: no SMS 21:00-08:00. A server that starts with other quiet hours
   applies them to what is held (`held_until`; server.delivery.dispatcher): a held row
   the new rules would let go earlier is due at once, and decided again.

Settings::

    [delivery.rules]
    caps = { marketing = { max = 1, days = 14 }, letter = { max = 3, days = 30 } }
    [delivery.rules.quiet_hours.sms]
    start = "21:00"
    end = "08:00"
    countries = { DE = { start = "20:00", end = "09:00" } }
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.compose.countries import COUNTRIES

HELD = "quiet hours for "  # how a held delivery's reason starts

NEVER_CAPPED_KINDS = frozenset({"invoice", "credit_note", "reminder", "statement"})

# Marketing by electronic mail (e-mail, SMS, a digital mailbox) needs the customer's prior
# consent (ePrivacy Directive 2002/58/EC art. 13; NO markedsføringsloven § 15, SE
# marknadsföringslagen 19 §, DK markedsføringsloven § 10); marketing by post does not, it
# respects an opt-out (and the national registers the bank's address supplier applies,
# such as Reservasjonsregisteret and NIX-Adress). So a welcome letter with a campaign goes
# to paper without a marketing consent, and to e-mail only with one.
CONSENT_CHANNELS = frozenset({"email", "sms", "mailbox"})

# Kanal's countries -> their time zone, from the one table of country conventions
# (server/compose/countries.toml, which also dates the Composition in the customer's zone);
# "UK" as the calling-code table below names it.
COUNTRY_ZONES = {**{code: c.time_zone for code, c in COUNTRIES.items()},
                 "UK": COUNTRIES["GB"].time_zone}
CALLING_CODES = {"+47": "NO", "+46": "SE", "+45": "DK", "+358": "FI", "+49": "DE",
                 "+43": "AT", "+48": "PL", "+44": "UK"}
DEFAULT_QUIET = {"sms": {"start": "21:00", "end": "08:00"}}


def country_of(country: str, mobile: str) -> str:
    """The customer's country: the address's, else the mobile number's calling code."""
    if country:
        return country.upper()
    for prefix in sorted(CALLING_CODES, key=len, reverse=True):
        if mobile.startswith(prefix):
            return CALLING_CODES[prefix]
    return ""


@dataclass(frozen=True, slots=True)
class Window:
    start: time
    end: time  # may be before start: the window spans midnight

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def opens_after(self, local: datetime) -> datetime:
        """The first moment at or after `local` (aware) outside the quiet window."""
        if not self.contains(local.timetz().replace(tzinfo=None)):
            return local
        opening = local.replace(hour=self.end.hour, minute=self.end.minute, second=0,
                                microsecond=0)
        if opening <= local:
            opening += timedelta(days=1)
        # Through the zone again: a DST change overnight keeps the wall-clock opening time.
        return opening.replace(tzinfo=None).replace(tzinfo=local.tzinfo)


@dataclass(frozen=True, slots=True)
class Cap:
    max: int
    days: float


@dataclass(frozen=True, slots=True)
class Decision:
    """`send`, `hold` (until `until`) or `suppress` (with `reason`; `fallback`: whether
    the next channel of the plan should take over)."""

    action: str
    reason: str = ""
    until: datetime | None = None
    fallback: bool = False


SEND = Decision("send")


@dataclass(frozen=True, slots=True)
class CurrentContacts:
    """What the customer has told the sender since a document was made (a journey's profile,
    read at send time): `opt_outs` (channels or `marketing`) add to the document's;
    `consents`, when the profile lists any, is what is left of the document's consents (a
    consent the profile no longer lists was withdrawn). None: the profile has no consents
    list, the document's stand. GDPR art. 7(3): a withdrawal applies from then on, so to
    what is still waiting to be sent."""

    consents: frozenset[str] | None
    opt_outs: frozenset[str]

    def judge(self, consents: Sequence[str], opted_out: set[str]
              ) -> tuple[Sequence[str], set[str]]:
        """The document's `consents` and `opted_out` as of now -> (consents, opted_out)."""
        if self.consents is not None:
            consents = [c for c in consents if c in self.consents]
        return consents, opted_out | self.opt_outs


@dataclass(frozen=True)
class ContactRules:
    quiet_hours: Mapping[str, Mapping[str, Window]] = field(default_factory=dict)
    caps: Mapping[str, Cap] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContactRules:
        def window(spec: Mapping[str, Any], where: str) -> Window:
            try:
                return Window(time.fromisoformat(spec["start"]), time.fromisoformat(spec["end"]))
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{where}: start and end as HH:MM ({exc})") from exc

        quiet: dict[str, dict[str, Window]] = {}
        for channel, spec in {**DEFAULT_QUIET, **data.get("quiet_hours", {})}.items():
            where = f"delivery.rules.quiet_hours.{channel}"
            per = {"": window(spec, where)} if "start" in spec else {}
            for country, cspec in spec.get("countries", {}).items():
                per[country.upper()] = window(cspec, f"{where}.countries.{country}")
            quiet[channel] = per
        caps = {kind: Cap(int(c["max"]), float(c["days"]))
                for kind, c in data.get("caps", {}).items()}
        return cls(quiet, caps)

    def decide(self, *, channel: str, kind: str, marketing: bool, legally_required: bool,
               consents: Sequence[str], opted_out: set[str], country: str, now: datetime,
               contacts_since: Callable[[datetime, bool], int]) -> Decision:
        """One delivery at `now` (aware). `contacts_since(since, marketing)` counts this
        customer's other documents of this kind (or marketing ones) sent since `since`."""
        if channel in opted_out:
            return Decision("suppress", f"customer opted out of {channel}", fallback=True)
        if marketing and "marketing" in opted_out:
            return Decision("suppress", "customer opted out of marketing")
        if marketing and channel in CONSENT_CHANNELS and "marketing" not in consents:
            # the channel is not allowed, the message is: the plan's next channel (paper,
            # which needs no consent) takes over
            return Decision("suppress", f"no consent to marketing by {channel}", fallback=True)
        if not legally_required and kind not in NEVER_CAPPED_KINDS:
            for key in (("marketing",) if marketing else ()) + (kind,):
                cap = self.caps.get(key)
                if cap is not None:
                    seen = contacts_since(now - timedelta(days=cap.days), key == "marketing")
                    if seen >= cap.max:
                        return Decision("suppress", f"frequency cap {key}: {seen} of "
                                        f"{cap.max} in {cap.days:g} days already sent")
        opens = self.held_until(channel, country, now)
        if opens is not None:
            return Decision("hold", f"{HELD}{channel} in {country} until "
                            f"{opens:%H:%M} {COUNTRY_ZONES[country]}", until=opens)
        return SEND

    def held_until(self, channel: str, country: str, now: datetime) -> datetime | None:
        """When the quiet window of `channel` for `country` that `now` (aware) lies in
        opens (aware, in the customer's zone), or None: not quiet now."""
        windows = self.quiet_hours.get(channel, {})
        window = windows.get(country) or windows.get("")
        zone = COUNTRY_ZONES.get(country)
        if window is None or zone is None:
            return None
        local = now.astimezone(ZoneInfo(zone))
        opens = window.opens_after(local)
        return opens if opens != local else None
