"""A/B variants: (tenant, customer, experiment) -> one variant, the same every time.

A customer's variant is a pure function of who they are and which experiment asks, so a
campaign area, a journey step and a report all agree without storing the choice first,
and a re-composed document (a fallback, a bulk re-run) shows the same variant:

    h = first 8 bytes of SHA-256(tenant 0x1F customer 0x1F experiment), big-endian,
    u = h / 2**64  (uniform in [0, 1))
    variant = the first whose cumulative weight share exceeds u (variants in the order given)

Hashing the experiment id in keeps experiments independent (being in B of one says nothing
about another). Changing the weights moves only the customers whose `u` crosses a boundary.

Pure: no I/O, no clock. Used by the composer for campaign areas (server/compose/rules.py)
and by server/surveys for journey steps and reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

SEPARATOR = "\x1f"  # ASCII unit separator: no id can make two inputs hash alike


class VariantError(ValueError):
    """Weights that cannot assign anyone (a configuration error)."""


def bucket(tenant: str, customer_id: str, experiment_id: str) -> float:
    """The customer's point in [0, 1) for this experiment."""
    digest = hashlib.sha256(SEPARATOR.join((tenant, customer_id, experiment_id)).encode())
    return int.from_bytes(digest.digest()[:8], "big") / 2**64


def check_weights(weights: Sequence[tuple[str, float]] | Mapping[str, float],
                  where: str = "variants") -> tuple[tuple[str, float], ...]:
    """[(variant, weight)] with non-negative weights, unique names, some weight > 0."""
    pairs = tuple(weights.items()) if isinstance(weights, Mapping) else tuple(weights)
    if not pairs:
        raise VariantError(f"{where}: at least one variant is needed")
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise VariantError(f"{where}: variant names must be unique")
    for name, weight in pairs:
        if not isinstance(name, str) or not name:
            raise VariantError(f"{where}: a variant needs a name")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise VariantError(f"{where}.{name}: weight must be a number >= 0")
    if sum(weight for _, weight in pairs) <= 0:
        raise VariantError(f"{where}: the weights add up to 0")
    return tuple((name, float(weight)) for name, weight in pairs)


def assign(tenant: str, customer_id: str, experiment_id: str,
           weights: Sequence[tuple[str, float]] | Mapping[str, float]) -> str:
    """The variant of this customer in this experiment (see the module docstring)."""
    pairs = check_weights(weights)
    point = bucket(tenant, customer_id, experiment_id) * sum(w for _, w in pairs)
    cumulative = 0.0
    for name, weight in pairs:
        cumulative += weight
        if point < cumulative:
            return name
    return next(name for name, weight in reversed(pairs) if weight > 0)  # float edge
