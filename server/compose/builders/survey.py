"""Survey data -> `Content`: the NPS question after a touchpoint, with its response link and
SMS reply code (layout `nps-survey`).

The data brings who asks (`sender`), who is asked (`customer`), what about (`survey.about`,
in the locale's words) and how to answer (`response`: the signed link and the reply code,
which server/surveys fills in when it sends the survey). The layout brings the words: the
standard NPS question and the ends of the scale, per locale. Decided here, once: the
subject, greeting, question and reply instructions as finished sentences, the expiry date
in the locale's long form, and the eleven score links of the e-mail's 0-10 row (the link
with `?score=N`: the page opens with N chosen; nothing is recorded until it is sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.compose.builders.base import (
    BuildRequest,
    Content,
    Formatter,
    iso_date,
    labels,
    recipient,
)
from server.errors import InvalidInput

SCORES = range(0, 11)  # NPS: 0-10 (Reichheld 2003)


def build(data: Mapping[str, Any], request: BuildRequest) -> Content:
    fmt = Formatter(request.locale)
    text = labels(request.layout, request.locale)
    sender, survey, response = data["sender"], data["survey"], data["response"]
    customer = recipient(data["customer"], sender_country=sender["country"])
    expires_on = iso_date(response["expires"], "$.response.expires")
    if survey.get("date") is not None:
        asked_on = iso_date(survey["date"], "$.survey.date")
        if expires_on < asked_on:
            # the e-mail would say the link works "until 1 January 2020" on a survey of 2026
            raise InvalidInput.field("$.response.expires", (
                f"{expires_on.isoformat()} is before the survey's date {asked_on.isoformat()} "
                "($.survey.date): the link cannot expire before the survey's date"))
    expires = fmt.day(expires_on, "long")
    code, number = response["reply_code"], response["reply_number"]
    url = response["url"]
    joiner = "&" if "?" in url else "?"
    context: dict[str, Any] = {
        "labels": dict(text),
        "sender": {
            "name": sender["name"],
            "org_number": sender.get("org_number"),
            "phone": sender["customer_service"]["phone"],
            "web": sender["customer_service"]["web"],
        },
        "customer": {"customer_id": customer.customer_id, "name": customer.name},
        "survey": {
            "survey_id": survey["survey_id"],
            "touchpoint": survey["touchpoint"],
            "subject": text["subject"].format(sender=sender["name"]),
            "greeting": text["greeting"].format(name=customer.name),
            "intro": text["intro"].format(about=survey["about"]),
            "question": text["question"].format(sender=sender["name"]),
            "reply_sms": text["reply_sms"].format(code=code, number=number),
            "reply_sms_short": text["reply_sms_short"].format(code=code, number=number),
            "expires": text["expires"].format(date=expires),
            "scale": [{"value": n, "url": f"{url}{joiner}score={n}"} for n in SCORES],
        },
        "response": {"url": url, "reply_code": code, "reply_number": number,
                     "expires": expires},
    }
    return Content(
        recipient=customer,
        context=context,
        sender_country=sender["country"],
        facts={"survey_id": survey["survey_id"], "touchpoint": survey["touchpoint"],
               "country": customer.address.country if customer.address else sender["country"]},
    )
