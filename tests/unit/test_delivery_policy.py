"""Retry backoff with full jitter, the token bucket and the circuit breaker."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.delivery.policy import CircuitBreaker, Limits, TokenBucket, backoff


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_backoff_is_exponential_with_full_jitter_and_a_cap() -> None:
    limits = Limits(backoff_seconds=10, backoff_max_seconds=300)
    assert backoff(1, limits, rand=lambda: 1.0) == timedelta(seconds=10)
    assert backoff(3, limits, rand=lambda: 1.0) == timedelta(seconds=40)
    assert backoff(10, limits, rand=lambda: 1.0) == timedelta(seconds=300)  # capped
    assert backoff(3, limits, rand=lambda: 0.25) == timedelta(seconds=10)  # jittered down
    waits = {backoff(4, limits) for _ in range(50)}
    assert len(waits) > 40 and all(timedelta(0) <= w <= timedelta(seconds=80) for w in waits)


def test_limits_from_settings_check_their_values() -> None:
    limits = Limits.from_dict({"concurrency": "8", "rate_per_second": 50}, "x")
    assert limits.concurrency == 8 and limits.rate_per_second == 50.0
    with pytest.raises(ValueError, match="concurrency"):
        Limits.from_dict({"concurrency": 0}, "delivery.providers.relay")


def test_token_bucket_grants_the_rate_and_refills_over_time() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, clock=clock)
    assert bucket.take(25) == 10  # a burst of one second's worth
    assert bucket.take(1) == 0
    clock.t += 0.35
    assert bucket.take(10) == 3
    bucket.give_back(2)
    assert bucket.take(10) == 2


def test_breaker_opens_after_failures_then_allows_one_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, seconds=30, clock=clock)
    assert breaker.allowed(4) == 4
    for _ in range(3):
        breaker.failure()
    assert breaker.state == "open" and breaker.allowed(4) == 0
    clock.t += 30
    assert breaker.state == "half_open"
    assert breaker.allowed(4) == 1 and breaker.allowed(4) == 0  # one trial at a time
    breaker.failure()  # the trial failed: open again
    assert breaker.state == "open"
    clock.t += 30
    assert breaker.allowed(2) == 1
    breaker.success()
    assert breaker.state == "closed" and breaker.allowed(5) == 5


def test_breaker_counts_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failures=3, seconds=30, clock=Clock())
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed"
