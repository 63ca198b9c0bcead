"""`kanal render`: a layout designer's PDF and page PNGs, rendered locally, without a server.

    kanal render LAYOUT --out DIR [--data FILE] [--locale nb-NO] [--layout-version 1.0.0]
                 [--engine typst|weasyprint|both] [--dpi 100]

Each engine's PDF gets the print checks compose runs before archiving
(`server.channels.pdf.print_problems`: glyphs, preflight -- text area, envelope window,
text over text --, print-profile mark zones). The PDF and PNGs are written either way (a
designer wants to see the problem), each problem is one stderr line naming the PDF and the
input's JSON path, and the exit code is then 3: written, but compose would refuse this data
(as `kanal submit` exits 3 for a job completed with failed records). Otherwise the codes
of every command (server/cli.py): 2 for an unknown layout, a layout without that engine's
template (or, for `--engine both`, one with a single print template: nothing to compare)
or without any print template (an e-mail/SMS-only layout: usage; nothing is
written), a `--dpi` outside 18..600, or data compose refuses before rendering, 1 for a
file that cannot be read or written.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.client import ClientError, whole_number

UNPRINTABLE_EXIT = 3  # the files are written, but compose refuses this data for print
ENGINE_NAMES = {"typst": "Typst", "weasyprint": "WeasyPrint"}
# PNG resolution: 18 dpi is a thumbnail (an A4 page 149 x 210 px); 600 dpi is print
# resolution (0.35 mm OMR bars are 8 px) and already 100 MB per A4 page in RGB, all of
# a render's pages being held for the side-by-side comparison.
MIN_DPI, MAX_DPI = 18, 600


def add_parser(commands: Any) -> None:
    p = commands.add_parser("render", help="render a layout to PDF and PNGs, without a server")
    p.add_argument("layout", help="layout id, e.g. card-invoice")
    p.add_argument("--data", type=Path,
                   help="JSON data file (default: the layout's sample for --locale)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--locale", help="BCP 47 locale (default: decided from the data)")
    p.add_argument("--layout-version", "--version", dest="layout_version", metavar="VERSION",
                   help="layout version (default: newest); --version is its old spelling")
    p.add_argument("--layouts-dir", type=Path, help="layouts folder (default: the project's)")
    p.add_argument("--dpi", type=whole_number(MIN_DPI, MAX_DPI), default=100,
                   help=f"PNG resolution, {MIN_DPI}..{MAX_DPI} (default 100)")
    p.add_argument("--engine", choices=("typst", "weasyprint", "both"),
                   help="PDF engine (default: the layout's own); both: side by side PNGs")
    p.set_defaults(run=render)


def layout_engines(layout: Any) -> list[str]:
    """The engines `layout` has a print template for (`[print] template` for WeasyPrint,
    `typst_template` for Typst), Typst first."""
    from server.compose.layouts import PRINT_ENGINES

    section = layout.section("print")
    return [e for e in ("typst", "weasyprint") if section.get(PRINT_ENGINES[e])]


def chosen_engines(layout: Any, engine: str | None) -> list[str | None]:
    """The engines to render with: `None` (the layout's own), both (Typst and WeasyPrint,
    for the side by side pages), or the one asked for. ClientError (exit 2) when the layout
    has no template for it (`both`: for either; a layout with one print template has nothing
    to compare, and rendering the one alone would pass for a comparison), and
    whatever the engine when it has no print template at all (e.g. an e-mail and SMS
    survey): this command draws print PDFs, and rendering nothing is not a success."""
    have = layout_engines(layout)
    if not have:
        channels = ", ".join(c.value for c in layout.channels)
        raise ClientError(
            f"layout {layout.ref} has no print template (its channels: {channels}); "
            f"`kanal render` draws print PDFs; preview the others on a server with "
            f"`kanal compose {layout.id} --data FILE --preview --out DIR`", exit_code=2)
    if engine is None:
        return [None]
    if engine == "both":
        if len(have) == 1:  # was: rendered the one engine, exit 0, nothing said
            missing = next(e for e in ENGINE_NAMES if e not in have)
            raise ClientError(
                f"layout {layout.ref} has no {ENGINE_NAMES[missing]} template, so --engine "
                f"both has nothing to set beside {ENGINE_NAMES[have[0]]}; its engines: "
                f"{have[0]} (--engine {have[0]}, or no --engine for the layout's own)",
                exit_code=2)
        return list(have)
    if engine not in have:
        raise ClientError(
            f"layout {layout.ref} has no {ENGINE_NAMES[engine]} template; its engines: "
            f"{', '.join(have) or 'none'} (--engine {' | '.join([*have, 'both'])})",
            exit_code=2)
    return [engine]


def render(args: argparse.Namespace) -> int:
    """Render a layout locally: PDF plus one PNG per page, checked as compose checks print.

    `--engine` picks the engine (default: the layout's own); `both` renders with each
    engine the layout has a template for and also writes, per page, the two side by side
    (`<layout>-<locale>-page<n>-compare.png`: Typst left, WeasyPrint right)."""
    import pypdfium2
    from PIL import Image

    from server.channels import paper_mark_zones
    from server.channels.glyphs import printable
    from server.channels.pdf import PrintEngines, print_problems
    from server.client import read_text
    from server.compose.composer import ComposeRequest, compose
    from server.compose.layouts import DEFAULT_LAYOUTS_DIR, LayoutRegistry
    from server.printing.zones import all_mark_zones

    registry = LayoutRegistry(args.layouts_dir or DEFAULT_LAYOUTS_DIR)
    layout = registry.get(args.layout, args.layout_version)
    engines = chosen_engines(layout, args.engine)
    data = read_text(args.data) if args.data else layout.sample_data(args.locale)
    composition = compose(ComposeRequest(
        tenant="local", layout=layout, data=data, document_id="preview",
        now=datetime.now(UTC), locale=args.locale,
    ))
    zones = paper_mark_zones(composition, all_mark_zones())
    args.out.mkdir(parents=True, exist_ok=True)
    # a version asked for is in the names, so it never overwrites the newest one's files
    named = f"{layout.id}-{layout.version}" if args.layout_version else layout.id
    stem = f"{named}-{composition.locale}"
    pages: dict[str, list[Image.Image]] = {}
    unprintable = 0
    printed = printable(composition, layout)  # what compose renders (render_print)
    for engine in engines:
        rendered = PrintEngines(engine).render(layout, printed)
        name = f"{stem}-{engine}" if engine else stem
        pdf_path = args.out / f"{name}.pdf"
        pdf_path.write_bytes(rendered.content)
        pdf = pypdfium2.PdfDocument(rendered.content)
        images = pages[rendered.engine] = [page.render(scale=args.dpi / 72).to_pil()
                                           for page in pdf]
        for number, image in enumerate(images, start=1):
            image.save(args.out / f"{name}-page{number}.png")
        print(f"{pdf_path}: {rendered.pages} page(s) by {rendered.engine} "
              f"{rendered.engine_version}, PNGs beside it", flush=True)
        problems = dict.fromkeys(
            (v.field, v.description)
            for v in print_problems(rendered.content, printed, layout, zones,
                                    rendered.engine))
        for field, why in problems:
            print(f"kanal render: {pdf_path.name}: {field}: {why}", file=sys.stderr)
        unprintable += len(problems)
    if len(pages) == 2:
        _compare(pages["typst"], pages["weasyprint"], args.out, stem)
    if unprintable:
        print(f"kanal render: {unprintable} print problem(s): compose refuses this data "
              f"(the files are written to show them)", file=sys.stderr)
        return UNPRINTABLE_EXIT
    return 0


def _compare(left: list[Any], right: list[Any], out: Path, stem: str) -> None:
    """Per page, the Typst page left and the WeasyPrint page right on a grey sheet."""
    from PIL import Image

    for number in range(1, max(len(left), len(right)) + 1):
        pair = [side[number - 1] if number <= len(side) else None for side in (left, right)]
        width, height = next(p for p in pair if p is not None).size
        sheet = Image.new("RGB", (2 * width + 20, height), "#8a98a4")
        for column, image in enumerate(pair):
            if image is not None:
                sheet.paste(image, (column * (width + 20), 0))
        sheet.save(out / f"{stem}-page{number}-compare.png")
    print(f"{out / stem}-page*-compare.png: Typst left, WeasyPrint right")
