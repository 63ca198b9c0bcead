"""`[surveys]` settings: the response page's address, the link key and lifetimes, the
surveys with their reply codes, and the experiments (A/B) with their weights.

    [surveys]
    listen = "127.0.0.1:8480"      # the response page (HTTP); "off": none; port 0: a free one
    public_url = "https://svar.fjordbank.no"   # links start with this; default http://<listen>
    link_secret = "..."            # HS256 key, >= 32 bytes; default: made once in state_dir
    link_days = 14                 # a link expires this long after it was sent
    follow_up_hours = 48           # a detractor is called back within this
    webhook_attempts = 8           # posting a follow-up to the tenant's webhook_url
    layout = "nps-survey"

    [surveys.surveys.nps-service]  # a survey: its SMS reply code (letters) and number
    reply_code = "NPS"
    reply_number = "2222"
    link_days = 14                 # optional, overrides the defaults above
    follow_up_hours = 24

    [surveys.experiments.gold-upgrade-2027]   # a journey step's A/B test
    variants = { A = 50, B = 50 }
    conversion_events = ["first_deposit"]     # events that count as its conversion

The follow-up webhook goes to the tenant's `[delivery.tenants.<t>] webhook_url`, signed
with its `webhook_secret` like the delivery events (server.delivery.webhooks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from server.compose.variants import VariantError, check_weights

_CODE = re.compile(r"[A-Z]{2,10}")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class Survey:
    survey_id: str
    reply_code: str
    reply_number: str
    link_days: float
    follow_up_hours: float


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    variants: tuple[tuple[str, float], ...]
    conversion_events: tuple[str, ...] = ()


@dataclass(frozen=True)
class SurveySettings:
    listen: str = "off"
    public_url: str = ""
    link_secret: str = ""
    link_days: float = 14.0
    follow_up_hours: float = 48.0
    webhook_attempts: int = 8
    layout: str = "nps-survey"
    surveys: Mapping[str, Survey] = field(default_factory=dict)
    experiments: Mapping[str, Experiment] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SurveySettings:
        """Checked settings; a ValueError names the setting that cannot work."""
        link_days = _positive(data.get("link_days", 14), "surveys.link_days")
        follow_up = _positive(data.get("follow_up_hours", 48), "surveys.follow_up_hours")
        surveys: dict[str, Survey] = {}
        codes: dict[str, str] = {}
        for survey_id, spec in dict(data.get("surveys", {})).items():
            where = f"surveys.surveys.{survey_id}"
            if not _ID.fullmatch(survey_id):
                raise ValueError(f"{where}: a survey id is lower-case letters, digits, ._-")
            code = str(spec.get("reply_code", "")).upper()
            if not _CODE.fullmatch(code):
                raise ValueError(f"{where}.reply_code: 2-10 letters, e.g. 'NPS'")
            if code in codes:
                raise ValueError(f"{where}.reply_code: {code} is already {codes[code]}'s")
            codes[code] = survey_id
            number = str(spec.get("reply_number", ""))
            if not re.fullmatch(r"\+?[0-9]{3,15}", number):
                raise ValueError(f"{where}.reply_number: the short number SMS answers go to")
            surveys[survey_id] = Survey(
                survey_id, code, number,
                _positive(spec.get("link_days", link_days), f"{where}.link_days"),
                _positive(spec.get("follow_up_hours", follow_up), f"{where}.follow_up_hours"))
        experiments: dict[str, Experiment] = {}
        for experiment_id, spec in dict(data.get("experiments", {})).items():
            where = f"surveys.experiments.{experiment_id}"
            try:
                variants = check_weights(dict(spec.get("variants", {})), f"{where}.variants")
            except VariantError as exc:
                raise ValueError(str(exc)) from exc
            experiments[experiment_id] = Experiment(
                experiment_id, variants, tuple(str(e) for e in spec.get("conversion_events", ())))
        listen = str(data.get("listen", "off"))
        if listen not in ("", "off"):
            host, _, port = listen.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"surveys.listen {listen!r} is not HOST:PORT (or 'off')")
        public_url = str(data.get("public_url", "")).rstrip("/")
        if public_url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", public_url):
            raise ValueError(f"surveys.public_url {public_url!r} is not an http(s) URL")
        return cls(listen=listen, public_url=public_url,
                   link_secret=str(data.get("link_secret", "")), link_days=link_days,
                   follow_up_hours=follow_up,
                   webhook_attempts=int(data.get("webhook_attempts", 8)),
                   layout=str(data.get("layout", "nps-survey")), surveys=surveys,
                   experiments=experiments)

    def survey(self, survey_id: str) -> Survey | None:
        return self.surveys.get(survey_id)

    def survey_by_code(self, code: str) -> Survey | None:
        return next((s for s in self.surveys.values() if s.reply_code == code.upper()), None)

    @property
    def max_link_seconds(self) -> int:
        days = [self.link_days, *(s.link_days for s in self.surveys.values())]
        return int(max(days) * 86400) + 60


def _positive(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} must be a number") from exc
    if number <= 0:
        raise ValueError(f"{where} must be > 0")
    return number
