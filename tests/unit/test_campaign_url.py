"""welcome-letter's campaign.url is a host and path: the templates link it as
https://{{ campaign.url }}, so a scheme, whitespace or no real host is refused at
$.campaign.url (server.compose.web_addresses), in every layout version."""

import json
from datetime import UTC, datetime

import pytest

from server.compose.composer import ComposeRequest, compose
from server.errors import InvalidInput
from tests.layouts import shipped

LAYOUTS = shipped()
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
VERSIONS = ["1.0.0", "2.0.0", None]


def _compose(url: str, version: str | None = None):
    layout = LAYOUTS.get("welcome-letter", version) if version else LAYOUTS.get(
        "welcome-letter")
    data = json.loads(layout.sample_data())
    data["campaign"]["url"] = url
    return compose(ComposeRequest(tenant="demo", layout=layout, data=json.dumps(data),
                                  document_id="01TEST", now=NOW))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("url", "says"), [
    # was the e-mail link https://javascript:alert(1)
    ("javascript:alert(1)", "starts with a scheme (or //): the layout writes https:// "
                            "before it, so send the host and path only, e.g. "
                            "fjordbank.no/spar"),
    ("https://fjordbank.no/spar", "starts with a scheme"),  # https://https://...
    ("mailto:spar@fjordbank.no", "starts with a scheme"),
    ("//fjordbank.no/spar", "starts with a scheme (or //)"),
    ("fjordbank.no/ spar", "holds whitespace (U+0020) at 13"),
    ("fjordbank.no/spar\n", "holds whitespace (U+000A) at 17"),
    ("fjordbank.no@evil.example/spar", "is not a host and path"),
    ("fjordbank", "is not a host and path"),
])
def test_a_campaign_url_that_is_no_host_and_path_is_refused(version, url, says):
    with pytest.raises(InvalidInput) as info:
        _compose(url, version)
    [violation] = info.value.violations
    assert violation.field == "$.campaign.url"
    assert says in violation.description, violation.description


@pytest.mark.parametrize("url", ["fjordbank.no/spar", "fjordbank.co.uk/save?kampanje=vår#a",
                                 "bø.no", "fjordbank.no:8443/spar"])
def test_a_host_and_path_is_kept_as_written(url):
    assert _compose(url).context["campaign"]["url"] == url
