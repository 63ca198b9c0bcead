"""A right-to-left name in an e-mail's running text is isolated with `<bdi>`
(server/compose/layouts.isolate, the templates' `bdi` filter; HTML "the bdi element",
UAX #9 isolates); Latin text is written exactly as before.

QA: "محمد 2," in "<p>{{ customer.name }},</p>" showed the comma and the digit on the wrong
side of the name, because the neutral comma took the direction of the Arabic beside it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.channels.email import message_parts
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import isolate
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def html_of(layout_id: str, name: str) -> str:
    layout = LAYOUTS.get(layout_id)
    data = json.loads(layout.sample_data())
    data["customer"]["name"] = name
    composition = compose(ComposeRequest(tenant="t", layout=layout, data=json.dumps(data),
                                         document_id="d", now=NOW))
    return message_parts(composition, layout).html.html


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder"])
def test_an_arabic_or_hebrew_name_is_isolated(layout_id) -> None:
    assert "<bdi>محمد العلي 2</bdi>," in html_of(layout_id, "محمد العلي 2")
    assert "<bdi>שרה כהן</bdi>," in html_of(layout_id, "שרה כהן")


@pytest.mark.parametrize("layout_id", ["card-invoice", "payment-reminder"])
def test_a_latin_name_is_written_as_before(layout_id) -> None:
    html = html_of(layout_id, "Kari <Nordmann> & Co")
    assert "<bdi>" not in html
    assert "Kari &lt;Nordmann&gt; &amp; Co," in html  # escaped as before


def test_isolate_escapes_what_it_wraps() -> None:
    assert isolate("שרה <b>") == "<bdi>שרה &lt;b&gt;</bdi>"
    assert isolate("Åse") == "Åse"
