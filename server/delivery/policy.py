"""How hard a dispatcher pushes one provider: retries, rate, concurrency, circuit breaker.

- Backoff: exponential with full jitter (a uniformly random wait in
  [0, min(cap, base * 2^(attempt-1))]), so retries of a provider's outage do not come back
  in waves (AWS Architecture Blog, "Exponential Backoff And Jitter").
- Rate: a token bucket (messages per second, with a burst of one second's worth).
- Concurrency: at most `concurrency` attempts in flight per provider and process.
- Circuit breaker: `breaker_failures` consecutive provider-down failures open it for
  `breaker_seconds` (nothing is taken for that provider); then one trial attempt
  (half-open) closes it on success or opens it again.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-provider settings (`[delivery.providers.<name>]`, these keys)."""

    max_attempts: int = 8  # then dead letter: `failed`, which falls back
    backoff_seconds: float = 30.0  # base of the exponential backoff
    backoff_max_seconds: float = 3600.0
    rate_per_second: float = 200.0
    concurrency: int = 4
    breaker_failures: int = 5
    breaker_seconds: float = 30.0
    in_doubt_seconds: float = 0.0  # wait for a receipt before resending an in-doubt attempt
    expire_hours: float = 72.0  # not sent by then: `expired`, which falls back

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Limits:
        values = {}
        for name, f in cls.__dataclass_fields__.items():
            if name in data:
                kind = int if f.type == "int" else float
                try:
                    values[name] = kind(data[name])
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{where}.{name}: {exc}") from exc
        limits = cls(**values)
        if limits.max_attempts < 1 or limits.concurrency < 1 or limits.rate_per_second <= 0:
            raise ValueError(f"{where}: max_attempts, concurrency and rate_per_second must "
                             "be positive")
        return limits


# `details` key of a delivery row: its `attempts` when an operator last retried it. The row's
# `attempts` numbers every attempt ever made (attempt rows are unique by number), while the
# budget and the backoff count only the attempts since the retry.
RETRIED_AFTER = "retried_after_attempts"


def attempts_spent(row: Mapping[str, Any]) -> int:
    """A delivery row's attempts counted against `max_attempts`: those since an operator's
    last retry (`stage.retry`), all of them when it was never retried."""
    details = json.loads(row.get("details") or "{}")
    return row["attempts"] - int(details.get(RETRIED_AFTER, 0))


def backoff(attempt: int, limits: Limits, rand: Callable[[], float] = random.random
            ) -> timedelta:
    """The wait before attempt `attempt + 1`, after `attempt` failed (full jitter)."""
    ceiling = min(limits.backoff_max_seconds, limits.backoff_seconds * 2 ** (attempt - 1))
    return timedelta(seconds=ceiling * rand())


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """Up to `wanted` whole tokens, as many as there are now."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            granted = min(wanted, int(self._tokens))
            self._tokens -= granted
            return granted

    def give_back(self, count: int) -> None:
        with self._lock:
            self._tokens = min(self.burst, self._tokens + count)


CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
BREAKER_GAUGE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class CircuitBreaker:
    def __init__(self, failures: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.seconds = seconds
        self.clock = clock
        self._count = 0
        self._opened_at: float | None = None
        self._trial = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self.clock() - self._opened_at >= self.seconds:
            return HALF_OPEN
        return OPEN

    def allowed(self, wanted: int) -> int:
        """How many attempts may start now: all when closed, one trial when half-open."""
        with self._lock:
            state = self._state()
            if state == CLOSED:
                return wanted
            if state == HALF_OPEN and not self._trial and wanted:
                self._trial = True
                return 1
            return 0

    def success(self) -> None:
        with self._lock:
            self._count, self._opened_at, self._trial = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self._count += 1
            if self._trial or self._count >= self.failures:
                self._opened_at, self._trial = self.clock(), False
