"""PDF engines side by side for the benchmarks: the project's layouts switched to one engine,
bare Typst and bare WeasyPrint in worker processes, and headless Chromium's DevTools
`Page.printToPDF` as the outside peer.

Chromium is Debian's `chromium` (`apt-get install chromium`), driven over the DevTools
protocol on a pipe (`--remote-debugging-pipe`: JSON messages separated by NUL on fds 3 and
4), so no WebSocket client is needed: one browser per process, one reused tab, each
document loaded from a file (the WeasyPrint HTML with the layout's stylesheets linked and
a `<base>` in the layout folder, so fonts and the logo load as they do in WeasyPrint) and
printed with the CSS page size. Chromium does not implement `string-set`, so its running
headers are empty; the pages are otherwise the WeasyPrint layout.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from server.channels.pdf import PrintEngines
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, Layout
from server.compose.model import Composition
from server.processes import foreign_environ

if TYPE_CHECKING:  # imported where Chromium's pages are made: WeasyPrint loads Pango
    from server.channels.weasyprint_engine import WeasyPrintEngine


def layouts_with_engine(engine: str, into: Path) -> Path:
    """A copy of the project's layouts whose Typst layouts render with `engine`: "typst"
    keeps the manifests, "weasyprint" switches `[print] engine`. Real copies, not symlinks:
    WeasyPrint's fetcher serves only files inside the layouts folder, and a symlink resolves
    outside it (the logo went missing from the WeasyPrint pages)."""
    target = into / f"layouts-{engine}"
    shutil.copytree(DEFAULT_LAYOUTS_DIR, target)
    for manifest in target.glob("*/*/manifest.toml"):
        text = manifest.read_text(encoding="utf-8")
        if engine == "weasyprint" and 'engine = "typst"' in text:
            manifest.unlink()
            manifest.write_text(text.replace('engine = "typst"', 'engine = "weasyprint"'),
                                encoding="utf-8")
    return target


# --- bare engines in worker processes ------------------------------------------------------

_engines: PrintEngines | None = None


# The bare engines run at the bulk workers' CPU priority (server.jobs.worker lowers theirs
# by WorkerConfig.nice), so on a busy machine the ratio end to end / bare compares the
# same share of the CPU, not a niced pipeline against an engine at full priority.
BULK_NICE = 10


def _start(engine: str) -> None:
    global _engines
    os.nice(BULK_NICE)
    _engines = PrintEngines(engine)


def _render(layout: Layout, compositions: list[Composition]) -> tuple[float, int]:
    assert _engines is not None
    _engines.render(layout, compositions[0])  # warm the caches, outside the clock
    started, pages = time.perf_counter(), 0
    for composition in compositions:
        pages += _engines.render(layout, composition).pages
    return time.perf_counter() - started, pages


def bare_engine(engine: str, layout: Layout, compositions: list[Composition],
                processes: int = 2) -> tuple[float, int]:
    """Wall seconds and pages for `compositions` rendered by `engine` alone in `processes`
    warm worker processes (each with its engine's caches, as in the server)."""
    processes = max(1, min(processes, len(compositions)))  # no process without documents
    chunks = [compositions[i::processes] for i in range(processes)]
    with ProcessPoolExecutor(processes, initializer=_start, initargs=(engine,)) as pool:
        for future in [pool.submit(_render, layout, chunk[:1]) for chunk in chunks]:
            future.result()  # every worker started and warm before the clock runs
        started = time.perf_counter()
        results = list(pool.map(_render, [layout] * processes, chunks))
        return time.perf_counter() - started, sum(pages for _, pages in results)


# --- Chromium printToPDF -------------------------------------------------------------------

def _as_fds_3_and_4(to_browser: int, from_browser: int) -> None:
    """In the child: the pipe ends become fds 3 and 4, inheritable across exec (moved
    above 10 first, so neither end is overwritten by the other's dup2)."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
    os.dup2(high[0], 3, inheritable=True)
    os.dup2(high[1], 4, inheritable=True)


class Chromium:
    """One headless Chromium and one tab, driven over the DevTools pipe."""

    def __init__(self, binary: str = "chromium"):
        self._profile = tempfile.mkdtemp(prefix="kanal-chromium-")
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--allow-file-access-from-files",
             f"--user-data-dir={self._profile}", "about:blank"],
            # the pipe ends become the child's fds 3 and 4; close_fds would close them again
            close_fds=False, stdin=subprocess.DEVNULL, env=foreign_environ(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _as_fds_3_and_4(to_browser, from_browser))
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.call("Page.enable", session=self.session)

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params: object) -> dict:
        self._id += 1
        message: dict[str, object] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def wait_event(self, method: str) -> None:
        while self._message().get("method") != method:
            pass

    def print_pdf(self, url: str) -> bytes:
        self.call("Page.navigate", session=self.session, url=url)
        self.wait_event("Page.loadEventFired")
        result = self.call("Page.printToPDF", session=self.session, printBackground=True,
                           preferCSSPageSize=True)
        return base64.b64decode(result["data"])

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):  # it may close before replying
            self.call("Browser.close")
        self.process.wait(timeout=30)
        os.close(self._write)
        os.close(self._read)
        shutil.rmtree(self._profile, ignore_errors=True)


def chromium_html(layout: Layout, composition: Composition, engine: WeasyPrintEngine) -> str:
    """The WeasyPrint HTML with the layout's stylesheets linked, resolving from its folder."""
    html = engine.render_html(layout, composition)
    links = "".join(f'<link rel="stylesheet" href="{escape(name)}">'
                    for name in layout.section("print").get("stylesheets", ()))
    return html.replace("<head>", f'<head><base href="{layout.path.as_uri()}/">{links}', 1)


def _chromium_chunk(paths: list[str]) -> tuple[float, int]:
    import pypdfium2

    os.nice(BULK_NICE)  # Chromium inherits it: the same share of the CPU as the workers
    browser = Chromium()
    try:
        browser.print_pdf(Path(paths[0]).as_uri())  # warm: fonts, stylesheets
        started, pages = time.perf_counter(), 0
        for path in paths:
            pdf = browser.print_pdf(Path(path).as_uri())
            pages += len(pypdfium2.PdfDocument(pdf))
        return time.perf_counter() - started, pages
    finally:
        browser.close()


def bare_chromium(layout: Layout, compositions: list[Composition], into: Path,
                  processes: int = 2) -> tuple[float, int]:
    """Wall seconds and pages for the documents' WeasyPrint HTML printed by `processes`
    Chromiums (one reused tab each), HTML written to files beforehand."""
    from server.channels.weasyprint_engine import WeasyPrintEngine

    engine = WeasyPrintEngine()
    paths = []
    for n, composition in enumerate(compositions):
        path = into / f"doc-{n:05d}.html"
        path.write_text(chromium_html(layout, composition, engine), encoding="utf-8")
        paths.append(str(path))
    chunks = [paths[i::processes] for i in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        results = list(pool.map(_chromium_chunk, chunks))
    # each process's clock starts after its browser is up and warm (as the bare engines'
    # do); they run side by side, so the slowest one is the wall time
    return max(seconds for seconds, _ in results), sum(pages for _, pages in results)
