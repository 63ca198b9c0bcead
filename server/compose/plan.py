"""The channel plan: layout rules + tenant rules + recipient + builder facts -> `ChannelPlan`.

Decided once, while composing; renderers and the delivery step only read it.

Inputs:

* the channels the request asks for (they win, but each must reach the recipient: a
  requested SMS without a mobile number is refused naming `$.customer.mobile`), or else
* the rules, as data: the layout manifest's `[plan]` table, with the tenant's overrides
  from the server config (`[plan.<tenant>.<layout-id>]`, same keys) put in front of it;
* what the recipient allows: contact data (no mobile -> no SMS, no email address -> no email,
  no postal address -> no print, a Peppol participant id / Finnish consumer / a layout that
  asks for Factur-X -> e-invoice, a digital mailbox id or a national id -> mailbox: the
  print PDF sent to Digipost, Kivra or e-Boks, which a rule must name), consents
  (`consent_required = ["sms"]`: the channel needs that consent) and preferences
  ("digital_only" removes print unless nothing else reaches the recipient);
* the builder's facts (card segment, reminder stage, days overdue ...).

A rule::

    [[plan.rules]]
    name = "first-missed-payment"            # becomes the plan's `reason`
    when = { stage = "reminder", days_overdue = { max = 44 }, has_mobile = true }
    primary = ["sms", "email"]               # alternatives: the first reachable one is sent
    also = ["einvoice"]                      # rendered and sent too, when reachable
    fallbacks = ["email"]                    # tried in order when delivery fails

`when` keys are builder facts, the derived facts `has_mobile`, `has_email`, `has_address`,
`has_peppol_id`, `is_business`, `country`, and `preference` / `consent` (membership in the
recipient's lists). A scalar matches by equality, a list by membership, `{min, max}` as an
inclusive numeric range. Rules are tried in order; the first that matches and has a reachable
primary channel decides. Print is the final fallback whenever the recipient has a postal
address (and is not digital-only). With no matching rule the layout's channels are taken in
manifest order as the primary alternatives (rule "layout default"). `has_mailbox`: the
recipient has a digital mailbox id or a national id.

What a channel can carry (`check`, the composer passes `server.channels.channel_unfit`): a
channel's own limits never block the document a customer is owed. A channel that cannot carry
this document (`Unfit`: an SMS that fits `max_segments` in none of its variants, an email
HTML over the clipping limit, an e-invoice the Peppol rules refuse) is left out and recorded
in the plan's `skipped` with its reason:

* an optional channel (`also`) or a fallback is skipped; the document goes on without it;
* a primary alternative is passed over for the next one of the same rule (`primary = ["sms",
  "email"]`: a reminder whose SMS cannot fit goes by email);
* routing (`Unfit.unreachable`: e.g. a Peppol participant id no e-invoice can be addressed
  to) counts as no contact data: the next rule decides, as for a recipient without that id;
* when none of the matching rule's primary alternatives can carry it, the document the
  customer is owed cannot be made as the rules owe it: that is the caller's error
  (`InvalidInput` with the channel's field violations), as is any requested channel that
  cannot carry it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from server.compose.layouts import Layout
from server.compose.model import Channel, ChannelPlan, DocumentKind, Recipient, SkippedChannel
from server.errors import FieldViolation, InvalidInput

PAPER_PREFERENCES = frozenset({"paper", "paper_invoice"})
DIGITAL_ONLY = "digital_only"

# e-invoice syntaxes (the `syntax` fact of the e-invoice output)
PEPPOL_UBL = "peppol-bis-3-ubl"
FINVOICE = "finvoice-3.0"
FACTURX = "factur-x-en16931"

MAX_REASON = 300  # characters of a skipped channel's reason kept with the document

# where a requested channel's missing contact data lives in the input
_CONTACT_FIELD = {
    Channel.SMS: "$.customer.mobile",
    Channel.EMAIL: "$.customer.email",
    Channel.PRINT: "$.customer.address",
    Channel.EINVOICE: "$.customer.peppol_id",
    Channel.MAILBOX: "$.customer.mailbox_ids",
}


def layout_renders(layout: Layout, channel: Channel) -> bool:
    """Whether the layout can render `channel`: its own channels, and the digital mailbox
    wherever there is a print PDF (a mailbox delivery is the print PDF, sent digitally)."""
    return channel in layout.channels or (
        channel is Channel.MAILBOX and Channel.PRINT in layout.channels)


def einvoice_syntax(kind: DocumentKind, recipient: Recipient, layout: Layout) -> str | None:
    """Which e-invoice a recipient gets, or None.

    1. a Peppol participant id -> Peppol BIS 3 UBL (EHF 3 in Norway), business or consumer;
    2. a Finnish consumer (address in FI, no organisation number) -> Finvoice 3.0;
    3. the layout's `[einvoice] facturx = true` -> the print PDF/A-3 with CII embedded.
    Only invoice kinds (invoice, credit note) have an e-invoice.
    """
    if not kind.has_invoice:
        return None
    if recipient.peppol_id:
        return PEPPOL_UBL
    if recipient.address and recipient.address.country == "FI" and not recipient.org_number:
        return FINVOICE
    if layout.section("einvoice").get("facturx"):
        return FACTURX
    return None


@dataclass(frozen=True, slots=True)
class Unfit:
    """Why a channel cannot carry one document (see the module docstring)."""

    reason: str
    violations: tuple[FieldViolation, ...] = ()  # the fields behind it, for errors
    unreachable: bool = False  # routing: the channel cannot address this recipient

    @property
    def field(self) -> str:
        return self.violations[0].field if self.violations else ""


# Channel -> why it cannot carry the document being planned, or None when it can.
ChannelCheck = Callable[[Channel], "Unfit | None"]


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    when: Mapping[str, Any]
    primary: tuple[Channel, ...]
    also: tuple[Channel, ...]
    fallbacks: tuple[Channel, ...]


def _channels(values: Sequence[str], where: str) -> tuple[Channel, ...]:
    try:
        return tuple(Channel(v) for v in values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _rules(table: Mapping[str, Any], where: str) -> list[_Rule]:
    return [
        _Rule(
            name=rule.get("name", f"{where} rule {i + 1}"),
            when=rule.get("when", {}),
            primary=_channels(rule.get("primary", ()), where),
            also=_channels(rule.get("also", ()), where),
            fallbacks=_channels(rule.get("fallbacks", ()), where),
        )
        for i, rule in enumerate(table.get("rules", ()))
    ]


# A plan table's rules, read once per table object: a layout's `[plan]` section and a
# tenant's `[plan.<tenant>.<layout-id>]` table are the same objects for every document a
# worker composes, and reading their rules (a _Rule and its channel tuples per rule) was
# done per document. Keyed by the table's identity and kept with the table itself, so an
# entry can never answer for another table; a table is never changed once read (layouts
# and the server config are immutable while a process runs).
_READ_RULES: dict[tuple[int, str], tuple[Mapping[str, Any], tuple[_Rule, ...]]] = {}
_READ_RULES_KEPT = 256


def _table_rules(table: Mapping[str, Any], where: str) -> tuple[_Rule, ...]:
    """`_rules(table, where)`, read once per table object (`_READ_RULES`); a table without
    rules (a tenant's, mostly, made anew per document) has none to keep."""
    if not table.get("rules"):
        return ()
    key = (id(table), where)
    kept = _READ_RULES.get(key)
    if kept is not None and kept[0] is table:
        return kept[1]
    rules = tuple(_rules(table, where))
    if len(_READ_RULES) >= _READ_RULES_KEPT:
        _READ_RULES.clear()
    _READ_RULES[key] = (table, rules)
    return rules


def tenant_table(overrides: Mapping[str, Any] | None, tenant: str, layout_id: str) -> Mapping:
    """`[plan.<tenant>.<layout-id>]` from the server config, or an empty table."""
    return ((overrides or {}).get(tenant) or {}).get(layout_id) or {}


def _facts(recipient: Recipient, facts: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **facts,
        "has_mobile": bool(recipient.mobile),
        "has_email": bool(recipient.email),
        "has_address": recipient.address is not None,
        "has_peppol_id": bool(recipient.peppol_id),
        "has_mailbox": bool(recipient.mailbox_ids or recipient.national_id),
        "is_business": bool(recipient.org_number),
        "country": facts.get("country")
        or (recipient.address.country if recipient.address else None),
    }


def _matches(when: Mapping[str, Any], recipient: Recipient, facts: Mapping[str, Any]) -> bool:
    for key, expected in when.items():
        if key == "preference":
            wanted = expected if isinstance(expected, list) else [expected]
            if not set(wanted) & set(recipient.preferences):
                return False
            continue
        if key == "consent":
            if expected not in recipient.consents:
                return False
            continue
        value = facts.get(key)
        if isinstance(expected, Mapping):
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            if "min" in expected and value < expected["min"]:
                return False
            if "max" in expected and value > expected["max"]:
                return False
        elif isinstance(expected, list):
            if value not in expected:
                return False
        elif value != expected:
            return False
    return True


def _unreachable(
    channel: Channel, layout: Layout, recipient: Recipient, consent_required: Sequence[str]
) -> str | None:
    """Why `channel` cannot reach the recipient, or None when it can."""
    if not layout_renders(layout, channel):
        return f"layout {layout.ref} has no {channel.value} channel"
    if channel is Channel.SMS and not recipient.mobile:
        return "no mobile number"
    if channel is Channel.EMAIL and not recipient.email:
        return "no email address"
    if channel is Channel.PRINT and recipient.address is None:
        return "no postal address"
    if channel is Channel.MAILBOX and not (recipient.mailbox_ids or recipient.national_id):
        return "no digital mailbox id or national id"
    if channel is Channel.EINVOICE and einvoice_syntax(layout.kind, recipient, layout) is None:
        return "no e-invoice address (Peppol id), not a Finnish consumer, no Factur-X"
    if channel.value in consent_required and channel.value not in recipient.consents:
        return f"no consent to {channel.value}"
    return None


def _cannot_carry(channels: Sequence[Channel], unfit: Callable[[Channel], Unfit | None],
                  why: str) -> InvalidInput:
    """The caller's error for owed channels that cannot carry the document."""
    problems = [(c, p) for c in channels if (p := unfit(c)) is not None]
    # dict.fromkeys: print and e-mail (its attached print PDF) share one glyph check, and
    # a character the fonts lack is one violation, not one per channel
    violations = list(dict.fromkeys(
        v for c, p in problems
        for v in (p.violations or (FieldViolation(_CONTACT_FIELD[c], p.reason),))))
    return InvalidInput(f"{why} ({', '.join(c.value for c, _ in problems)})", violations)


def plan_channels(
    layout: Layout,
    recipient: Recipient,
    requested: Sequence[Channel],
    facts: Mapping[str, Any],
    tenant_rules: Mapping[str, Any] | None = None,
    check: ChannelCheck | None = None,
) -> ChannelPlan:
    """The plan for one document (see the module docstring for the rules). `check` tells
    which channels cannot carry this document; without it every channel can."""
    section = layout.section("plan")
    tenant = tenant_rules or {}
    consent_required = tenant.get("consent_required", section.get("consent_required", ()))
    digital_only = DIGITAL_ONLY in recipient.preferences
    checked: dict[Channel, Unfit | None] = {}
    skipped: dict[Channel, SkippedChannel] = {}

    def unfit(channel: Channel) -> Unfit | None:
        if channel not in checked:
            checked[channel] = check(channel) if check else None
        return checked[channel]

    def skip(channel: Channel, problem: Unfit) -> None:
        skipped.setdefault(channel, _skipped(channel, problem))

    def reachable(channel: Channel) -> bool:
        if channel is Channel.PRINT and digital_only:
            return False
        if _unreachable(channel, layout, recipient, consent_required) is not None:
            return False
        problem = unfit(channel)
        if problem is not None and problem.unreachable:
            skip(channel, problem)
            return False
        return True

    def carries(channel: Channel) -> bool:
        """Reachable, and within the channel's limits for this document."""
        if not reachable(channel):
            return False
        problem = unfit(channel)
        if problem is not None:
            skip(channel, problem)
            return False
        return True

    def final_print(chosen: Sequence[Channel], fallbacks: Sequence[Channel]) -> tuple:
        out = [c for c in fallbacks if c not in chosen and carries(c)]
        if Channel.PRINT not in chosen and carries(Channel.PRINT):
            out.append(Channel.PRINT)
        return tuple(dict.fromkeys(out))

    def plan(channels: tuple, fallbacks: tuple, reason: str) -> ChannelPlan:
        return ChannelPlan(channels=channels, fallbacks=fallbacks, reason=reason,
                           skipped=tuple(s for c, s in skipped.items() if c not in channels))

    if requested:
        unsupported = [c.value for c in requested if not layout_renders(layout, c)]
        if unsupported:
            raise InvalidInput.field(
                "channels",
                f"layout {layout.ref} cannot render {', '.join(unsupported)} "
                f"(it has {', '.join(c.value for c in layout.channels)})",
            )
        chosen = tuple(dict.fromkeys(requested))
        for channel in chosen:
            why = _unreachable(channel, layout, recipient, ())
            if why is not None:
                raise InvalidInput.field(
                    _CONTACT_FIELD[channel], f"{channel.value} was requested but: {why}"
                )
        if any(unfit(c) for c in chosen):
            raise _cannot_carry(chosen, unfit, "a requested channel cannot carry this document")
        return plan(chosen, final_print(chosen, ()), "requested")

    all_facts = _facts(recipient, facts)
    rules = [*_table_rules(tenant, "tenant"), *_table_rules(section, "layout"),
             _Rule("layout default", {}, layout.channels, (), ())]
    for rule in rules:
        if not _matches(rule.when, recipient, all_facts):
            continue
        primary = next((c for c in rule.primary if carries(c)), None)
        if primary is None:
            over_limit = [c for c in rule.primary if reachable(c) and unfit(c)]
            if over_limit:
                raise _cannot_carry(
                    over_limit, unfit, f"plan rule {rule.name!r}: no primary channel can "
                    "carry this document")
            continue
        passed = rule.primary[: rule.primary.index(primary)]
        chosen = tuple(dict.fromkeys([primary, *(c for c in rule.also if carries(c))]))
        alternatives = rule.primary[rule.primary.index(primary) + 1:]
        reason = rule.name
        if passed:
            reason += " (" + ", ".join(
                f"{c.value} {'skipped' if c in skipped else 'unreachable'}" for c in passed) + ")"
        return plan(chosen, final_print(chosen, (*alternatives, *rule.fallbacks)), reason)
    # Nothing digital reaches a digital-only recipient: paper is better than nothing.
    if digital_only and _unreachable(Channel.PRINT, layout, recipient, ()) is None:
        return plan((Channel.PRINT,), (), "digital only, but unreachable")
    raise InvalidInput.field(
        "$.customer", "no channel of this layout can reach the recipient "
        "(no mobile, email, e-invoice address or postal address)"
        + "".join(f"; {s.channel.value}: {s.reason}" for s in skipped.values())
    )


def without_unfit(plan: ChannelPlan, unfit: Sequence[tuple[Channel, Unfit]]) -> ChannelPlan:
    """`plan` without the fallbacks that turned out unable to carry the document once it
    was rendered (`server.channels.fallback_check`: the print page's read-back checks),
    each recorded in `skipped` with its reason, as the plan records any other."""
    if not unfit:
        return plan
    gone = dict(unfit)
    skipped = [*plan.skipped, *(_skipped(c, p) for c, p in unfit
                                if c not in {s.channel for s in plan.skipped})]
    return replace(plan, fallbacks=tuple(c for c in plan.fallbacks if c not in gone),
                   skipped=tuple(skipped))


def _skipped(channel: Channel, problem: Unfit) -> SkippedChannel:
    """A skipped channel, its reason kept brief (it goes with the document: index, object
    metadata): at most MAX_REASON characters."""
    reason = problem.reason
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1] + "…"
    return SkippedChannel(channel, reason, problem.field)
