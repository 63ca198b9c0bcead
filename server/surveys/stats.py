"""The numbers of a survey report: NPS categories, NPS, and the Wilson score interval.

NPS (Reichheld, "The One Number You Need to Grow", Harvard Business Review, Dec. 2003):
promoters answer 9-10, passives 7-8, detractors 0-6; NPS = % promoters - % detractors,
from -100 to 100.

Wilson score interval for a binomial proportion (E. B. Wilson, "Probable inference, the law
of succession, and statistical inference", JASA 22 (1927) 209-212; recommended over the
normal "Wald" interval by R. G. Newcombe, "Two-sided confidence intervals for the single
proportion", Statistics in Medicine 17 (1998) 857-872, method 3). With p = x/n and z the
standard normal quantile (1.959964 for 95 %)::

    centre = (p + z²/2n) / (1 + z²/n)
    half   = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)
    interval = [centre - half, centre + half]

It stays inside [0, 1] and behaves at p = 0 or 1 and for small n, where a bank's first
weeks of an A/B test are. Newcombe's table I gives 81/263 -> 0.2553 to 0.3662.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

PROMOTER_MIN, PASSIVE_MIN = 9, 7
CONFIDENCE = 0.95


def category(score: int) -> str:
    """'promoter' (9-10), 'passive' (7-8) or 'detractor' (0-6)."""
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is 0..10, not {score}")
    if score >= PROMOTER_MIN:
        return "promoter"
    return "passive" if score >= PASSIVE_MIN else "detractor"


def is_detractor(score: int) -> bool:
    return category(score) == "detractor"


def nps(promoters: int, detractors: int, responses: int) -> float:
    """% promoters - % detractors (0 when nobody answered)."""
    if responses <= 0:
        return 0.0
    return round(100.0 * (promoters - detractors) / responses, 1)


def z_for(confidence: float) -> float:
    """The two-sided standard normal quantile: 0.95 -> 1.959964."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True, slots=True)
class Rate:
    successes: int
    trials: int
    rate: float
    low: float
    high: float


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> Rate:
    """The proportion successes/trials with its Wilson score interval (module docstring).
    No trials: rate 0 and the whole [0, 1] (nothing is known)."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return Rate(0, 0, 0.0, 0.0, 1.0)
    z = z_for(confidence)
    p, n = successes / trials, trials
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Rate(successes, trials, p, max(0.0, centre - half), min(1.0, centre + half))
