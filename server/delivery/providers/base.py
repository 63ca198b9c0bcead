"""The seam every provider adapter implements, and the registry that builds them from settings.

An adapter is small: it turns one `Outgoing` into one call of its provider and the answer
into `Accepted`, `Retry` or `Failed` (server.delivery.model), in the provider's own words.
Everything else -- claiming rows, leases, retries with backoff and jitter, rate limit,
concurrency cap, circuit breaker, dead letters, contact rules, fallbacks, events, webhooks,
metrics -- is the dispatcher's, the same for every provider.

To add one (SMPP, Digipost/Kivra/e-Boks, a Peppol access point)::

    class KivraProvider(Provider):
        channel = "print"          # the channel whose archived output it sends

        def send(self, message: Outgoing) -> Result:
            ...                    # one HTTP call with Idempotency-Key: message.message_id
            return Accepted("201 Created", provider_message_id=content_id)

    register("kivra", lambda name, settings, context: KivraProvider(name, settings, context))

and configure it::

    [delivery.providers.kivra-se]
    type = "kivra"
    channel = "print"              # optional: overrides the class's channel
    concurrency = 4                # and any other Limits key (server.delivery.policy)
    [delivery.channels]            # which provider sends a channel (per tenant:
    print = "kivra-se"             # [delivery.tenants.<t>.channels])

Contract:

- `send` is called from a dispatcher thread, up to `limits.concurrency` at once per
  process; it must not raise for a provider's answer (map it), and must return within
  the lease (`delivery.lease_seconds`). An exception counts as `Retry(provider_down=True)`.
- Idempotency: pass `message.message_id` to the provider wherever it takes one; return
  the provider's id in `Accepted.provider_message_id` (it is recorded with the state in one
  transaction, before any later attempt). If the outcome is unknown (the link dropped
  after the request was sent), return `Retry(..., in_doubt=True)`: the dispatcher then
  waits `in_doubt_seconds` for a receipt before sending again.
- Receipts that arrive later (SMPP `deliver_sm`, a mailbox callback) go to the sink given
  to `start(receipts)` as a `Receipt`; the dispatcher applies them (delivered, bounced
  -> fallback, retry). A receipt may come before the attempt's own answer is recorded:
  name the `delivery_id` when the adapter knows it. A message sent in parts returns every
  part's id (`Accepted.parts`): it is delivered when every part's receipt says so.
- `client_reference(message_id)`: the reference the adapter gives the provider and the
  provider's receipts carry back (default: the message id itself); a receipt for an
  attempt whose answer was lost (kill -9 after the provider took it) is matched by it and
  the recipient, so an in-doubt message is not sent again once its receipt has come.
- `Failed(reason, State.BOUNCED)` for a recipient the provider refuses (unknown user,
  `UNDELIV`, mailbox not registered): the next channel of the plan is rendered and sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.delivery.model import Outgoing, Receipt, Result
from server.delivery.policy import Limits

ReceiptSink = Callable[[Receipt], None]


@dataclass(frozen=True)
class ProviderContext:
    """What an adapter may need from the server: the state dir (keys, certificates), the
    tenants' delivery settings, the VERP secret, and services (e.g. the print queue)."""

    state_dir: Path
    tenants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    verp_secret: bytes = b""
    services: Mapping[str, Any] = field(default_factory=dict)


class Provider:
    """Base of every adapter; see the module docstring for the contract."""

    channel: str = ""
    needs_content: bool = True  # False: `Outgoing.content` stays empty (no archive read)

    def __init__(self, name: str, settings: Mapping[str, Any], context: ProviderContext):
        self.name = name
        self.settings = settings
        self.context = context
        self.channel = str(settings.get("channel", self.channel))
        self.limits = Limits.from_dict(settings, f"delivery.providers.{name}")

    def start(self, receipts: ReceiptSink) -> None:
        """Open links or listeners; `receipts` takes asynchronous receipts."""

    def send(self, message: Outgoing) -> Result:
        raise NotImplementedError

    def client_reference(self, message_id: str) -> str:
        """The reference of `message_id` as this provider's receipts carry it back."""
        return message_id

    def close(self) -> None:
        """Close connections; called once when the dispatcher stops."""


Factory = Callable[[str, Mapping[str, Any], ProviderContext], Provider]
_FACTORIES: dict[str, Factory] = {}


def register(type_name: str, factory: Factory) -> None:
    _FACTORIES[type_name] = factory


def build(name: str, settings: Mapping[str, Any], context: ProviderContext) -> Provider:
    type_name = str(settings.get("type", ""))
    factory = _FACTORIES.get(type_name)
    if factory is None:
        raise ValueError(f"delivery.providers.{name}.type: unknown {type_name!r} "
                         f"(known: {', '.join(sorted(_FACTORIES))})")
    provider = factory(name, settings, context)
    if not provider.channel:
        raise ValueError(f"delivery.providers.{name}: which channel does it send? (channel)")
    return provider
