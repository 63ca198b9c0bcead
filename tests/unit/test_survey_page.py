"""The response page over real HTTP (stdlib server on a free port, SQLite index): the form is
accessible, answers once, says so for a used (409), expired (410) or unknown (404) link,
and re-asks when no score was chosen (400)."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.a11y import parse, problems
from tests.unit.survey_fixtures import Clock, make_stage, survey_data


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def stage(tmp_path, clock):
    stage, documents = make_stage(tmp_path, clock)
    stage.service.documents = documents
    stage.start()
    yield stage
    stage.stop()


def _link(stage, customer="cust-1", locale="nb-NO"):
    stage.service.send("nordkort", "nps-service", "card_delivered",
                       survey_data(customer, locale=locale))
    return stage.service.documents.last_data()["response"]["url"]


def _request(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.mark.parametrize(("locale", "lang", "legend"), [
    ("nb-NO", "nb", "Hvor sannsynlig er det at du vil anbefale Fjordbank til en venn eller "
                    "kollega?"),
    ("sv-SE", "sv", "Hur sannolikt är det att du skulle rekommendera Fjordbank till en vän "
                    "eller kollega?"),
    ("en-GB", "en", "How likely is it that you would recommend Fjordbank to a friend or "
                    "colleague?"),
])
def test_the_form_is_accessible_in_the_invitations_language(stage, locale, lang, legend):
    status, headers, html = _request(_link(stage, locale=locale))
    assert status == 200
    assert problems(html, lang=lang) == []
    tree = parse(html)
    [fieldset] = [e for e in tree.all if e.tag == "fieldset"]
    assert fieldset.children[0].tag == "legend"
    assert fieldset.children[0].text.strip() == legend
    radios = [e for e in tree.all if e.tag == "input" and e.attrs.get("type") == "radio"]
    assert [r.attrs["value"] for r in radios] == [str(n) for n in range(11)]
    assert all(r.attrs["name"] == "score" for r in radios)
    [form] = [e for e in tree.all if e.tag == "form"]
    assert form.attrs["method"] == "post"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_a_score_link_from_the_email_preselects_and_records_nothing(stage):
    link = _link(stage)
    status, _, html = _request(link + "?score=8")
    assert status == 200
    [chosen] = [e for e in parse(html).all if e.tag == "input" and "checked" in e.attrs]
    assert chosen.attrs["value"] == "8"
    assert _request(link)[0] == 200  # still open: a GET never answers


def test_answer_once_then_409(stage):
    link = _link(stage)
    status, _, html = _request(link, {"score": "9", "comment": "Rask og grei"})
    assert status == 200 and "Takk for svaret!" in html and problems(html, lang="nb") == []
    [response] = stage.store.report_rows("nordkort", "", "", stage.service.clock()
                                         .replace(year=2025), stage.service.clock()
                                         .replace(year=2027))
    assert response[2] == 9
    status, _, html = _request(link, {"score": "2"})
    assert status == 409 and "Du har allerede svart" in html
    assert _request(link)[0] == 409
    report = stage.service.report("nordkort")
    assert (report.total.responded, report.total.promoters) == (1, 1)


def test_expired_link_says_so(stage, clock):
    link = _link(stage)
    clock.advance(days=15)
    status, _, html = _request(link)
    assert status == 410 and "Lenken er utløpt" in html
    assert _request(link, {"score": "10"})[0] == 410
    assert stage.service.report("nordkort", start=clock.now.replace(year=2025)
                                ).total.responded == 0


def test_unknown_or_forged_link_is_404(stage):
    link = _link(stage)
    assert _request(link[:-3] + "abc")[0] == 404
    assert _request(link.rsplit("/r/", 1)[0] + "/r/nonsense")[0] == 404
    assert _request(link.rsplit("/r/", 1)[0] + "/elsewhere")[0] == 404


def test_no_score_chosen_asks_again_with_the_error_announced(stage):
    link = _link(stage)
    status, _, html = _request(link, {"comment": "glemte tallet"})
    assert status == 400 and problems(html, lang="nb") == []
    tree = parse(html)
    [alert] = [e for e in tree.all if e.attrs.get("role") == "alert"]
    [fieldset] = [e for e in tree.all if e.tag == "fieldset"]
    assert fieldset.attrs["aria-describedby"] == alert.attrs["id"]
    assert "glemte tallet" in html  # the comment is kept
    assert _request(link, {"score": "11"})[0] == 400
    assert _request(link, {"score": "6"})[0] == 200


def test_a_stage_stopped_before_it_started_stops_and_frees_its_port(tmp_path, clock):
    """A server whose start fails after making the survey stage (a bad delivery provider
    setting: ConfigError) stops it unstarted; `kanal serve` hung there for ever."""
    stage, _ = make_stage(tmp_path, clock)
    host, port = stage.pages.address.rsplit(":", 1)
    stopping = threading.Thread(target=stage.stop, daemon=True)
    stopping.start()
    stopping.join(timeout=10)
    assert not stopping.is_alive(), "stop() of a stage never started did not return"
    with socket.socket() as again:  # the listening socket is closed
        again.bind((host, int(port)))
