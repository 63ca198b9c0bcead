"""The response page: the link in the survey e-mail or SMS -> a small accessible HTML form ->
`SurveyService.record_link`.

    GET  /r/<token>[?score=N]  the question as a form (N chosen when the e-mail's score
                               link was followed); records nothing
    POST /r/<token>            score=0..10&comment=...: records the answer once
    GET  /healthz              200 "ok"

Answers: 200 the form or the thank-you page; 400 the form again with the error named
(no score chosen); 404 a link Kanal did not make; 409 a link already used; 410 an expired
link; 413 a body over 16 KB. Every page is the invitation's language (`<html lang>`), from
the layout's labels (`page_*` in labels.toml), without scripts or images: the scale is a
`fieldset` whose `legend` is the question, eleven native radio buttons each with its
`label` (WCAG 2.1: 1.3.1 info and relationships, 3.3.2 labels, 2.1.1 keyboard, 3.1.1
language of page), the error tied to the group by `aria-describedby` and announced with
`role="alert"` (3.3.1).

Cross-site request forgery: the only state a POST changes is the answer of the invitation
whose single-use, unguessable token is in the URL itself; a forged POST would need the
token, and after one use the token is spent. Pages are `no-store`, never framed
(`frame-ancestors 'none'`), send no Referer (the token is in the URL) and allow no script
(`default-src 'none'`).

A stdlib `ThreadingHTTPServer` on its own thread (like the Prometheus endpoint): Kanal has
no web framework and this page needs none. It sits behind the bank's TLS proxy
(`[surveys] public_url`).
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2

from server import logs
from server.compose.layouts import Layout
from server.errors import InvalidInput, KanalError
from server.surveys.service import LinkExpired, LinkInvalid, LinkUsed, SurveyService

log = logs.get_logger(__name__)

MAX_BODY = 16 * 1024
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

# The one template of every page (the form, thanks, used, expired, invalid), beside this file.
_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    (Path(__file__).parent / "page.html").read_text(encoding="utf-8"))


class ResponsePages:
    """The HTTP server of the response page (see the module docstring)."""

    def __init__(self, service: SurveyService, layout: Layout, listen: str):
        self.service = service
        self.layout = layout
        host, _, port = listen.rpartition(":")
        pages = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "Kanal"
            sys_version = ""

            def do_GET(self) -> None:  # noqa: N802
                pages.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                pages.handle(self, "POST")

            def log_message(self, *args: Any) -> None:  # no tokens in logs
                pass

        self.httpd = ThreadingHTTPServer((host, int(port)), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="survey-pages",
                                       daemon=True)

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket. A page never started (the server failed to
        start after making it) is only closed: `shutdown()` waits for a `serve_forever`
        that never ran, and would hang the failed start for ever."""
        if self.thread.ident is not None:
            self.httpd.shutdown()
            self.thread.join(timeout=5)
        self.httpd.server_close()

    # --- one request ---------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urllib.parse.urlsplit(request.path)
        if method == "GET" and url.path == "/healthz":
            return self._send(request, 200, b"ok", content_type="text/plain; charset=utf-8")
        token = url.path[3:] if url.path.startswith("/r/") else ""
        if not token or "/" in token:
            return self._message(request, 404, self.layout.default_locale, "invalid")
        try:
            invitation = self.service.invitation_for_token(token)
        except LinkInvalid:
            return self._message(request, 404, self.layout.default_locale, "invalid")
        except LinkUsed:
            return self._message(request, 409, self.layout.default_locale, "used")
        except LinkExpired:
            return self._message(request, 410, self.layout.default_locale, "expired")
        locale = invitation["locale"] if invitation["locale"] in self.layout.locales \
            else self.layout.default_locale
        if method == "GET":
            query = urllib.parse.parse_qs(url.query)
            chosen = _score(query.get("score", [""])[0])
            return self._form(request, 200, locale, invitation, chosen=chosen)
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._send(request, 413, b"request too large",
                              content_type="text/plain; charset=utf-8")
        form = urllib.parse.parse_qs(request.rfile.read(length).decode("utf-8", "replace"))
        score, comment = _score(form.get("score", [""])[0]), form.get("comment", [""])[0]
        labels = self.layout.labels_for(locale)
        if score is None:
            return self._form(request, 400, locale, invitation, comment=comment,
                              error=labels["page_error"])
        try:
            self.service.record_link(token, score, comment[:2000])
        except LinkUsed:
            return self._message(request, 409, locale, "used")
        except LinkExpired:
            return self._message(request, 410, locale, "expired")
        except InvalidInput:
            return self._form(request, 400, locale, invitation, comment=comment,
                              error=labels["page_error"])
        except KanalError as exc:
            log.warning("survey page: answer not recorded", error=str(exc))
            return self._message(request, 503, locale, "invalid")
        return self._message(request, 200, locale, "thanks", alert=False)

    def _form(self, request: BaseHTTPRequestHandler, status: int, locale: str,
              invitation: Mapping[str, Any], *, chosen: int | None = None,
              comment: str = "", error: str = "") -> None:
        labels = self.layout.labels_for(locale)
        sender = invitation["sender_name"] or ""
        question = labels["question"].format(sender=sender) if sender else labels["page_title"]
        html = _PAGE.render(lang=locale.split("-")[0], title=labels["page_title"], form=True,
                            labels=labels, question=question, chosen=chosen,
                            comment=comment, error=error)
        self._send(request, status, html.encode())

    def _message(self, request: BaseHTTPRequestHandler, status: int, locale: str, which: str,
                 alert: bool = True) -> None:
        labels = self.layout.labels_for(locale)
        html = _PAGE.render(lang=locale.split("-")[0], title=labels[f"page_{which}_title"],
                            form=False, message=labels[f"page_{which}"], alert=alert)
        self._send(request, status, html.encode())

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes,
              content_type: str | None = None) -> None:
        request.send_response(status)
        for name, value in HEADERS.items():
            request.send_header(name, content_type if name == "Content-Type" and content_type
                                else value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


def _score(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= 2 and int(text) <= 10 else None
