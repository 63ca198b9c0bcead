"""Email channel end to end: Compose over gRPC archives the `.eml` beside the PDF, and every
layout's email HTML opens in headless Chromium (Debian `chromium`) at 600 and 360 px without
horizontal overflow. Screenshots go to test-artifacts/email/ (gitignored, kept by CI).

Headless Chromium will not make a window narrower than 500 px, so the email is shown the way a
phone client frames it: in an iframe (srcdoc, same origin) of exactly the tested width inside
a page. On load, a script in that page writes the email document's scrollWidth and the
iframe's viewport width into the DOM; `--dump-dom` prints the DOM and the test reads them.
"""

from __future__ import annotations

import email
import hashlib
import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email import policy
from html import escape
from pathlib import Path

import pytest

from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc
from server.app import KanalServer
from server.channels.email import render_email
from server.compose.composer import ComposeRequest, compose
from server.compose.layouts import LayoutRegistry
from server.compose.model import Channel, Output
from server.config import Settings
from tests.client import Keys, channel

pytestmark = pytest.mark.integration

LAYOUTS = LayoutRegistry()
EMAIL_LAYOUTS = [layout.id for layout in LAYOUTS.latest() if Channel.EMAIL in layout.channels]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "email"
KEYS = Keys(("nordkort", "producer"))
WIDTHS = (600, 360)
SHOT_HEIGHT = 2200
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--hide-scrollbars")
FRAME = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>body {{ margin: 0; background: #c8ced3; }}
iframe {{ display: block; border: 0; background: #fff; }}</style></head>
<body><iframe id="email" width="{width}" height="{height}" srcdoc="{srcdoc}"></iframe>
<script>
window.addEventListener("load", function () {{
  var frame = document.getElementById("email");
  var doc = frame.contentDocument;
  var out = document.createElement("pre");
  out.id = "kanal-measure";
  out.textContent = JSON.stringify({{scrollWidth: doc.documentElement.scrollWidth,
                                    bodyWidth: doc.body.scrollWidth,
                                    innerWidth: frame.contentWindow.innerWidth}});
  document.body.appendChild(out);
}});
</script></body></html>
"""


def framed(html: str, width: int, height: int) -> str:
    return FRAME.format(width=width, height=height, srcdoc=escape(html, quote=True))


# --- over gRPC: both outputs archived and indexed --------------------------------------------


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-email")
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state,
                              api_keys=KEYS.api_keys)) as server:
        yield server


def test_compose_print_and_email_archives_both(kanal: KanalServer):
    layout = LAYOUTS.get("card-invoice")
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        documents = documents_pb2_grpc.DocumentsStub(ch)
        response = documents.Compose(documents_pb2.ComposeRequest(
            tenant="nordkort", layout_id="card-invoice", data_json=layout.sample_data(),
            channels=[common_pb2.CHANNEL_PRINT, common_pb2.CHANNEL_EMAIL]))
        document = documents.GetDocument(documents_pb2.GetDocumentRequest(
            tenant="nordkort", document_id=response.document_id))

    printed, mailed = response.outputs
    assert printed.channel == common_pb2.CHANNEL_PRINT
    assert mailed.channel == common_pb2.CHANNEL_EMAIL
    assert mailed.media_type == "message/rfc822"
    assert mailed.archive_key.endswith("/email.eml")
    assert printed.archive_key.endswith(".pdf")

    eml = kanal.store.get(mailed.archive_key)  # verifies the sha256 metadata
    pdf = kanal.store.get(printed.archive_key)
    assert hashlib.sha256(eml).hexdigest() == mailed.sha256 and len(eml) == mailed.size
    message = email.message_from_bytes(eml, policy=policy.default)
    assert message["Message-ID"] == f"<{response.document_id}@fjordbank.no>"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() == pdf  # the same PDF, rendered once
    assert mailed.facts["pdf_attached"] == "True"
    assert int(mailed.facts["html_bytes"]) > 0
    assert mailed.facts["subject"] == message["Subject"]

    indexed = {o.channel: o for o in document.outputs}
    assert set(indexed) == {common_pb2.CHANNEL_PRINT, common_pb2.CHANNEL_EMAIL}
    assert indexed[common_pb2.CHANNEL_EMAIL].sha256 == mailed.sha256
    assert indexed[common_pb2.CHANNEL_EMAIL].archive_key == mailed.archive_key
    assert indexed[common_pb2.CHANNEL_PRINT].sha256 == printed.sha256


def test_the_email_carries_the_archived_facturx_when_the_plan_makes_one(kanal: KanalServer):
    # QA: the e-mail attached the print PDF while the plan's Factur-X (which no network
    # carries) was only archived; card-invoice 2.2.0 attaches the Factur-X itself
    data = json.loads(LAYOUTS.get("card-invoice").sample_data())
    data["customer"]["preferences"] = ["email"]  # the "digital" plan: e-mail + e-invoice
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        documents = documents_pb2_grpc.DocumentsStub(ch)
        response = documents.Compose(documents_pb2.ComposeRequest(
            tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data)))
        document = documents.GetDocument(documents_pb2.GetDocumentRequest(
            tenant="nordkort", document_id=response.document_id))
    assert response.layout_version == "2.2.0"
    outputs = {o.channel: o for o in response.outputs}
    mailed, facturx = outputs[common_pb2.CHANNEL_EMAIL], outputs[common_pb2.CHANNEL_EINVOICE]
    assert facturx.facts["syntax"] == "factur-x-en16931"
    message = email.message_from_bytes(kanal.store.get(mailed.archive_key), policy=policy.default)
    [attachment] = list(message.iter_attachments())
    content = attachment.get_content()
    assert content == kanal.store.get(facturx.archive_key)
    assert b"/AFRelationship /Data" in content and b"(factur-x.xml)" in content
    indexed = {o.channel: o for o in document.outputs}[common_pb2.CHANNEL_EMAIL]
    assert mailed.facts["attachment"] == indexed.facts["attachment"] == "factur-x-en16931"

    # the same customer's letter by e-mail without an e-invoice: the print PDF
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        response = documents_pb2_grpc.DocumentsStub(ch).Compose(documents_pb2.ComposeRequest(
            tenant="nordkort", layout_id="card-invoice", data_json=json.dumps(data),
            channels=[common_pb2.CHANNEL_PRINT, common_pb2.CHANNEL_EMAIL]))
    printed, mailed = response.outputs
    message = email.message_from_bytes(kanal.store.get(mailed.archive_key), policy=policy.default)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() == kanal.store.get(printed.archive_key)
    assert mailed.facts["attachment"] == "print"


# --- headless Chromium: no horizontal overflow ------------------------------------------------


def email_html(layout_id: str) -> str:
    """The HTML part of the layout's sample email, as a client receives it."""
    layout = LAYOUTS.get(layout_id)
    comp = compose(ComposeRequest(
        tenant="nordkort", layout=layout, data=layout.sample_data(), document_id="01JN4Q7W2E",
        now=datetime(2026, 3, 2, tzinfo=UTC), channels=[Channel.EMAIL]))
    fake_pdf = Output(channel=Channel.PRINT, media_type="application/pdf",
                      content=b"%PDF-1.7\n%%EOF\n", sha256="0" * 64)
    output = render_email(comp, layout, pdf=lambda: fake_pdf)
    message = email.message_from_bytes(output.content, policy=policy.default)
    return message.get_body(("html",)).get_content()


def chromium(work: Path, *args: str) -> str:
    binary = shutil.which("chromium")
    assert binary, "Debian package chromium is missing (apt-get install -y chromium)"
    profile = work / f"profile-{hashlib.sha256(repr(args).encode()).hexdigest()[:12]}"
    done = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=90, check=True)
    return done.stdout


def measure(work: Path, page: Path, width: int) -> dict[str, int]:
    dom = chromium(work, f"--window-size={max(width, 500)},900", "--virtual-time-budget=3000",
                   "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="kanal-measure">(.*?)</pre>', dom)
    assert found, f"no measurement in the DOM of {page.name} at {width}px"
    return json.loads(found.group(1))


def screenshot(work: Path, page: Path, width: int, target: Path) -> None:
    chromium(work, f"--window-size={max(width, 500)},{SHOT_HEIGHT}", "--virtual-time-budget=3000",
             f"--screenshot={target}", page.as_uri())
    assert target.stat().st_size > 10_000


@pytest.mark.parametrize("layout_id", EMAIL_LAYOUTS)
def test_email_html_fits_600_and_360_px(layout_id: str, tmp_path: Path):
    html = email_html(layout_id)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = {}
    for width in WIDTHS:
        pages[width] = tmp_path / f"{layout_id}-{width}.html"
        pages[width].write_text(framed(html, width, SHOT_HEIGHT), encoding="utf-8")

    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = {width: pool.submit(measure, tmp_path, pages[width], width) for width in WIDTHS}
        shots = [pool.submit(screenshot, tmp_path, pages[width], width,
                             ARTIFACTS / f"{layout_id}-{width}px.png") for width in WIDTHS]
        results = {width: job.result() for width, job in jobs.items()}
        for shot in shots:
            shot.result()

    for width, numbers in results.items():
        assert numbers["innerWidth"] == width, numbers
        assert numbers["scrollWidth"] <= numbers["innerWidth"], (
            f"{layout_id} overflows at {width}px: {numbers}")
        assert numbers["bodyWidth"] <= numbers["innerWidth"], numbers
