"""Which provider sends a delivery, and to which address: per tenant and channel, and per
recipient for the channel routed by the recipient's own accounts (the digital mailbox).

    [delivery.channels]
    email = "relay"                       # one provider sends the channel
    mailbox = { kivra = "kivra-se", digipost = "digipost-no", eboks = "eboks-dk" }
    [delivery.tenants.nordkort.channels]  # a tenant's own, same shapes (e.g. its Peppol AP)
    einvoice = "ap-nordkort"
    [delivery.tenants.fjordbank-fi.channels]  # or one provider per e-invoice syntax
    einvoice = { "peppol-bis-3-ubl" = "ap-fi", "finvoice-3.0" = "finvoice-op" }

A mailbox recipient goes to the first of their `mailbox_ids` (in the order the bank gave
them) whose service has a provider here, else by national id to the mailbox service of
the country whose scheme the id is of (`Recipient.national_id_country`: a fødselsnummer
goes to Digipost NO also for a customer living in Sweden), or, for an id of no scheme, of
the address's country (Digipost NO, Kivra SE, e-Boks DK; all three address people by
national id) when it has one. The address is `<service>:<id>` ("kivra:198503042387",
"digipost:kari.nordmann#4AB1", "digipost:01017012343").

An e-invoice is sent only by a provider that carries its syntax (the output's `syntax`
fact) and only to a receiver reachable there (`EINVOICE_SYNTAXES`): a Peppol access point
(`peppol-ap`, `peppol-folder`) carries Peppol BIS 3 UBL / EHF, addressed by the buyer's
Peppol participant id; a Finvoice operator (`finvoice`: the sender's bank or e-invoice
operator in the Finnish Finvoice forwarding service) carries Finvoice 3.0, addressed by the
consumer's e-invoice address and their bank's BIC (`Recipient.finvoice_address`,
`finvoice_intermediator`; the row's address is `<address>@<BIC>`). The einvoice channel
takes a table of syntax -> provider (above) for a tenant that sends both. A Factur-X PDF
(a consumer without a Peppol id) travels by no network: it is archived, and reaches the
customer only inside what the plan sends them: the e-mail of a layout with `[email]
attach_facturx` attaches it (server.channels.email), a mailbox or a letter carries the print
PDF. A Finvoice with no Finvoice provider configured for its tenant, or for a consumer
without an e-invoice address, is archived too. Such an output's route
is `archived_only`: it gets no delivery row (server.delivery.outbox), so no failed delivery
and no `failed` webhook; except when it is the plan's primary channel with fallbacks, which
then take over at once (its row is born `failed`, as for a mailbox nobody here serves).

No provider: when the channel has none at all for the tenant, a planned channel's row is
`failed` and does not fall back (a configuration gap must not turn every message into
paper), and a fallback channel is skipped for the plan's next one (server.delivery.fallback);
when the
channel is served but not for this recipient (a mailbox service nobody here sends to), the
row is `failed` and the plan's next channel takes over, as for a recipient the mailbox
refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.compose.model import Channel, Composition, Recipient
from server.compose.plan import FACTURX, FINVOICE, PEPPOL_UBL

# The mailbox service of each country, for recipients known only by their national id.
MAILBOX_SERVICE_OF_COUNTRY = {"NO": "digipost", "SE": "kivra", "DK": "eboks"}

# Provider type -> the e-invoice syntaxes (server.compose.plan) it can send. No type
# carries Factur-X (a PDF for a consumer: no network).
EINVOICE_SYNTAXES = {"peppol-ap": frozenset({PEPPOL_UBL}),
                     "peppol-folder": frozenset({PEPPOL_UBL}),
                     "finvoice": frozenset({FINVOICE})}
KNOWN_SYNTAXES = frozenset({PEPPOL_UBL, FINVOICE, FACTURX})


@dataclass(frozen=True, slots=True)
class Route:
    provider: str | None
    address: str  # the recipient as the provider takes it (e-mail, E.164, Peppol id, ...)
    reason: str = ""  # why there is no provider
    falls_back: bool = False  # no provider for this recipient: the next channel takes over
    archived_only: bool = False  # nobody can send this output: archived, no delivery


def recipient_address(recipient: Recipient, channel: str) -> str:
    if channel == Channel.EMAIL:
        return recipient.email or ""
    if channel == Channel.SMS:
        return recipient.mobile or ""
    if channel == Channel.EINVOICE:
        return recipient.peppol_id or recipient.customer_id
    return recipient.customer_id  # print: the print queue knows where


def finvoice_address(recipient: Recipient) -> str:
    """`<e-invoice address>@<intermediator BIC>` ("FI4950009420028730@OKOYFIHH"), or ""
    when the recipient has no Finvoice address."""
    if recipient.finvoice_address and recipient.finvoice_intermediator:
        return f"{recipient.finvoice_address}@{recipient.finvoice_intermediator}"
    return ""


def mailbox_addresses(recipient: Recipient) -> list[str]:
    """Every `<service>:<id>` the recipient can be reached at, in preference order."""
    out = [f"{service}:{value}" for service, value in recipient.mailbox_ids.items()]
    country = recipient.national_id_country or (
        recipient.address.country if recipient.address else "")
    service = MAILBOX_SERVICE_OF_COUNTRY.get(country)
    if recipient.national_id and service and service not in recipient.mailbox_ids:
        out.append(f"{service}:{recipient.national_id}")
    return out


class Router:
    """Routes deliveries with `[delivery.channels]` and the tenants' own `channels`."""

    def __init__(self, channels: Mapping[str, Any], tenants: Mapping[str, Mapping[str, Any]],
                 providers: Mapping[str, Mapping[str, Any]] | None = None):
        self.channels = channels
        self.tenants = tenants
        self.providers = providers or {}

    def spec(self, tenant: str, channel: str) -> str | Mapping[str, str] | None:
        own = self.tenants.get(tenant, {}).get("channels", {})
        return own.get(channel) or self.channels.get(channel)

    def provider_for(self, tenant: str, channel: str, address: str = "",
                     syntax: str = "") -> str | None:
        """The provider of `channel` for `tenant`; for a channel routed per recipient, the
        one of the address's service (`<service>:<id>`); for e-invoices routed per syntax,
        the one of `syntax` (the output's `syntax` fact)."""
        spec = self.spec(tenant, channel)
        if isinstance(spec, Mapping):
            if channel == Channel.EINVOICE:
                return spec.get(syntax)
            return spec.get(address.partition(":")[0])
        return spec

    def route(self, composition: Composition, channel: str,
              facts: Mapping[str, Any] | None = None) -> Route:
        """`facts`: the channel's rendered output's facts (an e-invoice's `syntax`)."""
        tenant, recipient = composition.tenant, composition.recipient
        spec = self.spec(tenant, channel)
        if channel != Channel.MAILBOX:
            address = recipient_address(recipient, channel)
            if channel == Channel.EINVOICE:
                syntax = str((facts or {}).get("syntax") or "")
                if isinstance(spec, Mapping):  # one provider per syntax
                    spec = spec.get(syntax)
                if syntax == FINVOICE:
                    address = finvoice_address(recipient) or address
                why = self._einvoice_unsent(syntax, spec, recipient)
                if why:
                    return Route(None, address, why, falls_back=True, archived_only=True)
            if not spec or isinstance(spec, Mapping):
                return Route(None, address, f"no {channel} provider configured "
                                            "(delivery.channels)")
            return Route(spec, address)
        addresses = mailbox_addresses(recipient)
        if not spec:
            return Route(None, addresses[0] if addresses else "",
                         "no mailbox provider configured (delivery.channels)")
        services = spec if isinstance(spec, Mapping) else {}
        for address in addresses:
            provider = services.get(address.partition(":")[0]) if services else spec
            if provider:
                return Route(str(provider), address)
        tried = ", ".join(a.partition(":")[0] for a in addresses) or "none"
        return Route(None, addresses[0] if addresses else "",
                     f"no mailbox provider for this recipient's mailboxes ({tried})",
                     falls_back=True)

    def _einvoice_unsent(self, syntax: str, spec: Any, recipient: Recipient) -> str:
        """Why an e-invoice of `syntax` is archived and not sent ("" when it may be sent;
        a missing provider for a syntax some provider type carries is a configuration
        gap, which `route` reports as for any channel)."""
        if not syntax:
            return ""  # no syntax known (an output from before the fact): as configured
        carried = frozenset().union(*EINVOICE_SYNTAXES.values())
        if syntax not in carried:
            return (f"{syntax} e-invoice archived, not sent: no provider type carries "
                    f"{syntax} (Peppol access points carry {PEPPOL_UBL} only)")
        if syntax == PEPPOL_UBL and not recipient.peppol_id:
            return "e-invoice archived, not sent: the buyer has no Peppol participant id"
        kind = str(self.providers.get(spec, {}).get("type", "")) if isinstance(spec, str) else ""
        if syntax == FINVOICE and FINVOICE not in EINVOICE_SYNTAXES.get(kind, ()):
            # no Finvoice operator for this tenant: archived, as before there was one
            return (f"{syntax} e-invoice archived, not sent: "
                    + (f"provider {spec} ({kind}) does not carry it" if spec else
                       "no Finvoice operator provider configured (delivery.channels)"))
        if syntax == FINVOICE and not finvoice_address(recipient):
            return (f"{syntax} e-invoice archived, not sent: the consumer has no e-invoice "
                    "address and intermediator (customer.finvoice)")
        if kind in EINVOICE_SYNTAXES and syntax not in EINVOICE_SYNTAXES[kind]:
            return f"{syntax} e-invoice archived, not sent: provider {spec} ({kind}) " \
                   "does not carry it"
        return ""


def check(channels: Mapping[str, Any], providers: Mapping[str, Any], where: str) -> None:
    """Every provider a channel names exists (ValueError naming the setting)."""
    for channel, spec in channels.items():
        if isinstance(spec, Mapping) and channel == Channel.EINVOICE:
            unknown = sorted(set(spec) - KNOWN_SYNTAXES)
            if unknown:
                raise ValueError(f"{where}.{channel}: a table of e-invoice syntaxes "
                                 f"({', '.join(sorted(KNOWN_SYNTAXES))}), not {unknown}")
        elif isinstance(spec, Mapping) and channel != Channel.MAILBOX:
            raise ValueError(f"{where}.{channel}: only the mailbox channel is routed per "
                             "recipient (a table of services), and the einvoice channel "
                             "per syntax")
        names = spec.items() if isinstance(spec, Mapping) else [("", spec)]
        for service, name in names:
            if name not in providers:
                at = f"{where}.{channel}" + (f".{service}" if service else "")
                raise ValueError(f"{at}: no provider {name!r}")
