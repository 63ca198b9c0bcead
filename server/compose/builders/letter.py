"""Letter data -> `Content`: a one-page letter (welcome letter) with an optional campaign area.

The data brings the words (subject, body paragraphs, highlights such as the new customer
number, signatures); the layout brings the fixed text (default greeting and closing per
locale). Decided here, once: the letter date (the data's, or the composition date), the
greeting ("Hei Kari Nordmann," unless the data says otherwise), the envelope-window lines,
the label of the sender's register number (the register of the sender's country, named in
the document's language: `invoice.register_label`), and the campaign area's content, which
for now comes from the data (`campaign`) and later from the campaign rules.
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
    postal_address,
    recipient,
    return_line,
    sender_lines,
    window_lines,
)
from server.compose.builders.invoice import register_label
from server.compose.web_addresses import host_and_path


def build(data: Mapping[str, Any], request: BuildRequest) -> Content:
    fmt = Formatter(request.locale)
    text = labels(request.layout, request.locale)
    sender, letter = data["sender"], data["letter"]
    sender_country = sender["address"]["country"]
    sender_address = postal_address(sender["address"])
    customer = recipient(data["customer"], sender_country=sender_country)
    letter_date = iso_date(letter["date"], "$.letter.date") if "date" in letter else request.today
    campaign = data.get("campaign")

    context: dict[str, Any] = {
        "labels": dict(text),
        "sender": {
            "name": sender["name"],
            "org_number": sender.get("org_number"),
            # the register of the sender's country in the document's language (labels.toml
            # register_<country>, welcome-letter 2.3.0); older versions' labels name no
            # register and read `org_number`, as their templates do
            "register_label": register_label(text, sender_country),
            "address_lines": sender_lines(sender_address),
            "phone": sender["customer_service"]["phone"],
            "web": sender["customer_service"]["web"],
            "email": sender["customer_service"].get("email"),
        },
        "window": window_lines(customer, sender_country),
        "return_line": return_line(sender["name"], sender_address,
                                   customer.address.country if customer.address else None),
        "customer": {"customer_id": customer.customer_id, "name": customer.name},
        "letter": {
            "date": fmt.day(letter_date, "long"),
            "subject": letter["subject"],
            "greeting": letter.get("greeting") or text["greeting"].format(name=customer.name),
            "paragraphs": list(letter["paragraphs"]),
            "highlights": [dict(h) for h in letter.get("highlights", [])],
            "closing": letter.get("closing") or text["closing"],
            "signatures": [dict(s) for s in letter["signatures"]],
        },
        "campaign": (
            {"title": campaign["title"], "body": campaign["body"],
             "url": host_and_path(campaign["url"], "$.campaign.url")
             if campaign.get("url") else None}
            if campaign else None
        ),
    }
    return Content(
        recipient=customer,
        context=context,
        sender_country=sender_country,
        facts={
            "country": customer.address.country if customer.address else sender_country,
            "has_campaign": campaign is not None,
        },
    )
