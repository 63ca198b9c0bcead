"""Survey reports: the rows of the invitations and answers -> NPS per touchpoint and period,
response rates, overdue follow-ups; and per A/B variant the rates with Wilson intervals
(server.surveys.stats). Pure arithmetic over what `SurveyStore` reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from server.errors import InvalidInput, NotFound, quote
from server.surveys import stats
from server.surveys.settings import SurveySettings
from server.surveys.store import SurveyStore

PERIODS = ("day", "week", "month", "all")


@dataclass(frozen=True, slots=True)
class ReportRow:
    touchpoint: str
    period: str
    invited: int
    responded: int
    promoters: int
    passives: int
    detractors: int

    @property
    def response_rate(self) -> float:
        return self.responded / self.invited if self.invited else 0.0

    @property
    def nps(self) -> float | None:
        """-100..100; None when nobody responded (no NPS, which 0 is not)."""
        if not self.responded:
            return None
        return stats.nps(self.promoters, self.detractors, self.responded)


@dataclass(frozen=True, slots=True)
class Report:
    rows: tuple[ReportRow, ...]
    total: ReportRow
    overdue: tuple[Mapping[str, Any], ...]
    open_follow_ups: int


@dataclass(frozen=True, slots=True)
class VariantRates:
    variant: str
    weight: float
    exposed: int
    conversion: stats.Rate
    response: stats.Rate
    promoters: stats.Rate
    detractors: stats.Rate

    @property
    def nps(self) -> float | None:
        """-100..100; None when nobody responded (no NPS, which 0 is not)."""
        if not self.promoters.trials:
            return None
        return stats.nps(self.promoters.successes, self.detractors.successes,
                         self.promoters.trials)


def survey_report(store: SurveyStore, tenant: str, now: datetime, *, survey_id: str = "",
                  touchpoint: str = "", start: datetime | None = None,
                  end: datetime | None = None, period: str = "month") -> Report:
    """Per touchpoint and period of the invitation's sending: invited, responded,
    promoters (9-10), passives (7-8), detractors (0-6), NPS = %promoters - %detractors
    of the responses; and the open follow-ups past their deadline (as of now)."""
    period = period or "month"
    if period not in PERIODS:
        raise InvalidInput.field("period", f"one of {', '.join(PERIODS)}")
    end = end or now + timedelta(seconds=1)  # what was sent this very second counts
    start = start or end - timedelta(days=90)
    if start >= end:
        raise InvalidInput.field("from", "must be before `to`")
    buckets: dict[tuple[str, str], list[int]] = {}
    total = [0, 0, 0, 0, 0]
    for tp, sent_at, score in store.report_rows(tenant, survey_id, touchpoint, start, end):
        counts = buckets.setdefault((tp, _period(sent_at, period)), [0, 0, 0, 0, 0])
        for target in (counts, total):
            target[0] += 1
            if score is not None:
                target[1] += 1
                target[2 + ("promoter", "passive", "detractor").index(
                    stats.category(score))] += 1
    rows = tuple(ReportRow(tp, when, *counts)
                 for (tp, when), counts in sorted(buckets.items()))
    overdue = store.overdue_follow_ups(tenant, now, survey_id, touchpoint)
    return Report(rows, ReportRow(touchpoint or "*", "all", *total), tuple(overdue),
                  store.open_follow_up_count(tenant))


def experiment_report(store: SurveyStore, settings: SurveySettings, tenant: str,
                      experiment_id: str) -> list[VariantRates]:
    """Per variant (the configured ones in order, then any seen in the data): its weight
    share, customers exposed, conversion = converted / exposed customers, response =
    answered / surveys sent, promoters and detractors / answers; each rate with its
    Wilson 95 % interval, so a bank sees whether the variants' intervals overlap."""
    if not experiment_id:
        raise InvalidInput.field("experiment_id", "is required")
    counts = store.experiment_counts(tenant, experiment_id)
    experiment = settings.experiments.get(experiment_id)
    weights = dict(experiment.variants) if experiment else {}
    names = list(weights) + sorted(set(counts) - set(weights))
    if not names:
        raise NotFound(f"no experiment {quote(experiment_id)}")
    total_weight = sum(weights.values()) or 1.0
    empty = {"exposed": 0, "converted": 0, "invited": 0, "responded": 0, "promoters": 0,
             "detractors": 0}
    report = []
    for name in names:
        c = counts.get(name, empty)
        report.append(VariantRates(
            name, weights.get(name, 0.0) / total_weight, c["exposed"],
            stats.wilson(min(c["converted"], c["exposed"]), c["exposed"]),
            stats.wilson(c["responded"], c["invited"]),
            stats.wilson(c["promoters"], c["responded"]),
            stats.wilson(c["detractors"], c["responded"])))
    return report


def _period(at: datetime, period: str) -> str:
    """'2026-11-30', '2026-W48' (ISO 8601 week), '2026-11' or 'all' (UTC)."""
    if period == "day":
        return at.date().isoformat()
    if period == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{at.year}-{at.month:02d}"
    return "all"
