"""The composer: layout + JSON input data -> one frozen `Composition`.

    parse JSON (numbers as Decimal) -> validate against the layout's JSON Schema
    -> refuse XML-forbidden characters -> the layout's builder computes and formats the
    content -> channel plan (asking each channel whether it can carry this document:
    `server.channels.channel_unfit`, which for the e-invoice runs the rules of the syntax the
    recipient gets, Peppol or Finvoice, named at the caller's JSON paths) -> Composition

Pure: no network, no disk, no clock (the caller passes `now` and the document id).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from itertools import islice
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from server.channels import channel_unfit
from server.compose import countries
from server.compose.builders import get_builder
from server.compose.builders.base import BuildRequest, Content
from server.compose.data import read_json
from server.compose.formatting import babel_locale
from server.compose.layouts import Layout
from server.compose.locales import (
    check_payment_region,
    decide_locale,
    layout_spelling,
    value_at,
)
from server.compose.model import Channel, ChannelPlan, Composition, PrintOptions, Recipient
from server.compose.plan import Unfit, plan_channels, tenant_table
from server.compose.rules import Rule, campaign_context, choose, layout_rules
from server.compose.schema_errors import schema_violation
from server.compose.validation import input_fields
from server.errors import InvalidInput, quote


@dataclass(frozen=True, slots=True)
class ComposeRequest:
    tenant: str
    layout: Layout
    data: str | bytes  # JSON text, UTF-8
    document_id: str
    now: datetime  # timezone-aware
    locale: str | None = None  # None: decided from the data (server/compose/locales.py)
    channels: Sequence[Channel] = ()  # empty: the layout's default plan
    idempotency_key: str | None = None
    rules: Sequence[Rule] = ()  # the tenant's insert/campaign rules (tried before the layout's)
    # the server config's `[plan.<tenant>.<layout-id>]` tables (see server/compose/plan.py)
    plan_rules: Mapping[str, Any] | None = None
    print_profile: str = ""  # a job's print-shop profile id; empty: the tenant's
    # What the sender knows of the recipient beyond the data (a journey's customer profile,
    # server.journeys.sends): added to the data's consents and opt-outs, so the plan and the
    # delivery stage's contact rules read the same recipient the journey's policy checked.
    consents: Sequence[str] = ()
    opt_outs: Sequence[str] = ()
    # False: the plan has no fallbacks (a journey step whose branch reacts to a bounce
    # itself: one reaction, the journey's, not the delivery stage's print copy as well)
    fallbacks: bool = True


def parse_data(text: str | bytes) -> dict[str, Any]:
    """JSON text -> dict, numbers as `Decimal` so amounts keep their exact decimals, within
    the limits of `server.compose.data` (depth, lengths, digits, characters)."""
    return read_json(text)


def validate(layout: Layout, data: Mapping[str, Any]) -> None:
    """Every schema violation (up to MAX_SCHEMA_ERRORS), each with its JSON path, in one
    error, in JSON's notation and at the deepest path (`server.compose.schema_errors`)."""
    fast = layout.fast_validator  # valid data, the common case, is answered here
    errors = [] if fast is not None and fast(data) else sorted(
        islice(layout.validator.iter_errors(data), MAX_SCHEMA_ERRORS),
        key=lambda e: list(map(str, e.path)))
    if errors:
        raise InvalidInput(
            f"data does not match the schema of layout {layout.ref}",
            [schema_violation(error) for error in errors],
        )


MAX_SCHEMA_ERRORS = 50


def input_hash(layout_id: str, locale: str, channels: Sequence[Channel], data: Any) -> str:
    """sha256 of the canonical compose input: the same request always hashes the same,
    whatever the key order or whitespace of the JSON text."""
    canonical = json.dumps(
        {"layout": layout_id, "locale": locale, "channels": sorted(channels), "data": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def resolve_locale(layout: Layout, locale: str | None) -> str:
    """The locale as the request states it, for the input hash: an absent locale counts as
    the layout's default, as it always has, so that an idempotent retry matches the first
    request's fingerprint whatever the data decides (`decide_locale` decides the locale the
    document is composed in)."""
    chosen = layout_spelling(layout, locale) if locale else layout.default_locale
    babel_locale(chosen)  # unknown to Babel -> InvalidInput
    if chosen not in layout.locales:
        raise InvalidInput.field(
            "locale",
            f"layout {layout.ref} supports {', '.join(layout.locales)}, not {quote(chosen)}"
        )
    return chosen


def compose(request: ComposeRequest) -> Composition:
    layout = request.layout
    requested = resolve_locale(layout, request.locale)
    data = parse_data(request.data)
    validate(layout, data)
    decision = decide_locale(layout, request.locale, data)
    locale = decision.locale
    # The customer's day, not the server's: a notice composed at 23:30 UTC is dated the
    # next day in Helsinki (countries.toml time_zone, from the address's country).
    zone = countries.time_zone(value_at(data, "$.customer.address.country"))
    content = get_builder(layout.builder)(
        data,
        BuildRequest(layout=layout, locale=locale, tenant=request.tenant,
                     today=request.now.astimezone(ZoneInfo(zone)).date()),
    )
    check_payment_region(decision, content.payment_scheme, layout)
    kind = content.kind or layout.kind
    print_section = layout.section("print")
    address = content.recipient.address
    field, envelope = _address_field(print_section, address.country if address else None)
    # Campaigns do not depend on the plan (the channel checks read them); inserts are
    # physical, kept below only when the plan prints.
    chosen = choose((*request.rules, *layout_rules(layout.manifest)), {
        **content.facts, "tenant": request.tenant, "layout": layout.id,
        "kind": kind.value, "locale": locale,
        **({"country": address.country, "postal_code": address.postal_code} if address else {}),
    }, physical=True, customer_id=content.recipient.customer_id)
    strings, numbers = input_fields(data)  # the print checks name fields by them
    recipient = _known_to_sender(content.recipient, request)
    composition = Composition(
        document_id=request.document_id,
        tenant=request.tenant,
        layout_id=layout.id,
        layout_version=layout.version,
        kind=kind,
        locale=locale,
        currency=content.currency,
        created_at=request.now,
        input_sha256=input_hash(layout.id, requested, request.channels, data),
        recipient=recipient,
        invoice=content.invoice,
        payment_reference=content.payment_reference,
        due_date=content.due_date,
        amount_due=content.amount_due,
        context=MappingProxyType(
            {**content.context, "sender_country": content.sender_country,
             "address_field": field.as_context(),
             **campaign_context(content.context, chosen.campaigns)}
        ),
        channel_plan=ChannelPlan(channels=()),  # decided next
        print_options=replace(print_options(print_section, content.amount_due, envelope),
                              profile=request.print_profile),
        campaigns=chosen.campaigns,
        inserts=(),
        idempotency_key=request.idempotency_key,
        locale_decision=decision,
        source_text=tuple(strings),
        source_numbers=tuple(numbers),
        time_zone=zone,
    )
    plan = plan_channels(layout, recipient, request.channels,
                         {**content.facts, "kind": kind.value},
                         tenant_table(request.plan_rules, request.tenant, layout.id),
                         check=lambda channel: _unfit(composition, layout, channel, content))
    if address is not None and POSTED & set(plan.channels):
        # A letter the postal operator cannot sort is refused, not printed; an e-invoice or
        # e-mail document keeps whatever address its sender's records hold (a print
        # fallback of it is not checked here: Peppol's own examples carry made-up codes).
        countries.check_postal_code(address.postal_code, address.country,
                                    "$.customer.address.postal_code")
    if not request.fallbacks:
        plan = replace(plan, fallbacks=())
    printed = Channel.PRINT in plan.channels
    return replace(composition, channel_plan=plan,
                   inserts=chosen.inserts if printed else (),
                   insert_rules=chosen.insert_rules if printed else ())


def _known_to_sender(recipient: Recipient, request: ComposeRequest) -> Recipient:
    """The data's recipient with the consents and opt-outs the sender adds (each once,
    the data's first)."""
    if not request.consents and not request.opt_outs:
        return recipient
    return replace(recipient,
                   consents=tuple(dict.fromkeys((*recipient.consents, *request.consents))),
                   opt_outs=tuple(dict.fromkeys((*recipient.opt_outs, *request.opt_outs))))


# The channels that put the document in an envelope (the mailbox copy falls back to print).
POSTED = frozenset({Channel.PRINT, Channel.MAILBOX})


def _address_field(print_section: Mapping[str, Any], country: str | None
                   ) -> tuple[countries.AddressField, str]:
    """Where the address goes and in which envelope: by the destination country
    (countries.toml) when the layout says `[print] address_field = "by-country"`, else the
    Nordic C5 window and the layout's envelope (the frozen 1.0.0 layouts)."""
    envelope = print_section.get("envelope", "C5")
    if print_section.get("address_field") != "by-country":
        return countries.ADDRESS_FIELDS[countries.DEFAULT_ADDRESS_FIELD], envelope
    return countries.address_field(country), countries.envelope(country, envelope)


def print_options(section: Mapping[str, Any], amount_due: Decimal | None,
                  envelope: str | None = None) -> PrintOptions:
    """The layout's `[print]` options, with the tear-off slip's page (`slip_page`) made a
    sheet front with a blank back when the data has something to pay (the templates print
    the slip then, and only then: nothing to pay prints no slip asking for 0). `envelope`:
    the destination country's (`_address_field`), else the layout's."""
    slip = section.get("slip_page")
    has_slip = slip is not None and amount_due is not None and amount_due > 0
    return PrintOptions(envelope=envelope or section.get("envelope", "C5"),
                        duplex=section.get("duplex", False),
                        front_pages=(slip,) if has_slip else (),
                        blank_back_pages=(slip,) if has_slip else ())


def _unfit(composition: Composition, layout: Layout, channel: Channel,
           content: Content) -> Unfit | None:
    """Why `channel` cannot carry the document, with the e-invoice rules' model paths
    (`$.seller.legal_id`) named as the caller's JSON paths (`$.issuer.org_number`)."""
    unfit = channel_unfit(composition, layout, channel)
    paths = content.invoice_paths
    if unfit is None or paths is None:
        return unfit
    return replace(unfit, violations=tuple(
        replace(v, field=paths(v.field[2:])) if v.field.startswith("$.") else v
        for v in unfit.violations))
