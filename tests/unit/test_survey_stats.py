"""NPS categories and arithmetic, and the Wilson score interval against published values."""

from __future__ import annotations

import math

import pytest

from server.surveys import stats


def test_categories_follow_reichheld():
    assert [stats.category(s) for s in range(11)] == (
        ["detractor"] * 7 + ["passive"] * 2 + ["promoter"] * 2)
    with pytest.raises(ValueError):
        stats.category(11)


def test_nps_is_percent_promoters_minus_percent_detractors():
    # 5 promoters, 3 passives, 2 detractors of 10 -> 50 % - 20 % = 30
    assert stats.nps(5, 2, 10) == 30.0
    assert stats.nps(0, 3, 3) == -100.0
    assert stats.nps(1, 1, 3) == 0.0
    assert stats.nps(0, 0, 0) == 0.0


# Newcombe, Statistics in Medicine 17 (1998) 857-872, table I, method 3 (Wilson score, no
# continuity correction), 95 %.
@pytest.mark.parametrize(("x", "n", "low", "high"), [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_newcombe_table(x, n, low, high):
    rate = stats.wilson(x, n)
    assert rate.rate == pytest.approx(x / n)
    assert round(rate.low, 4) == low
    assert round(rate.high, 4) == high


def test_wilson_bounds_solve_the_score_equation():
    """Both ends p satisfy (p̂ - p)² = z² p (1 - p) / n (Wilson 1927)."""
    x, n = 37, 120
    rate = stats.wilson(x, n)
    z = stats.z_for(0.95)
    assert z == pytest.approx(1.959964, abs=1e-6)
    for p in (rate.low, rate.high):
        assert (x / n - p) ** 2 == pytest.approx(z * z * p * (1 - p) / n, rel=1e-9)


def test_wilson_edges():
    assert stats.wilson(0, 0) == stats.Rate(0, 0, 0.0, 0.0, 1.0)
    everything = stats.wilson(20, 20)
    assert everything.high == 1.0 and 0.83 < everything.low < 0.84
    with pytest.raises(ValueError):
        stats.wilson(3, 2)
    assert not math.isnan(stats.wilson(1, 1).low)
