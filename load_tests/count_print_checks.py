"""What the print PDF's read-back checks cost per document, in instructions (callgrind: the
same count however loaded the machine is), on the Typst bulk path (issue 14).

    python load_tests/count_print_checks.py --count 40            # callgrind count
    python load_tests/count_print_checks.py --count 40 --step render_print
    python load_tests/count_print_checks.py --count 40 --profile  # cProfile, no callgrind
    python load_tests/count_print_checks.py --verdicts out.txt --generated 300

Counted per document, as `server.channels.pdf.render_print` spends it after Typst compiled
the PDF: `--step checks` (the default) is the print checks alone: the page count (up to 4482c21
the Typst engine's own `server.pdfium.page_count`, now the read-back pass's) and
`refuse_unprintable` (the text-area, window,
border and text-over-text preflight and the mark-zone check, every builtin print profile's
zones, as `Renderers` passes them for a document that goes, or may fall back, to paper);
`--step render_print` is the whole of `render_print` with Typst's compile replayed from
the bytes it made before counting (so the engine's own work around the compile, the glyph
checks and the sha256 are in it too, the compile is not).

`--count` generated card invoices (load_tests/bench_bulk.py `records`: nb-NO and sv-SE,
5-60 transactions) are composed and rendered with the manifest's engine (Typst for
card-invoice 2.0.0) before counting; two more are checked first to warm the caches. The
count runs this script again under `valgrind --tool=callgrind --instr-atstart=no` with
PYTHONHASHSEED=0 and the heap settled as a bulk worker settles it (`gc.collect`,
`gc.freeze`), switching instrumentation on and off around the loop with
`callgrind_control` (load_tests/callgrind.py, as load_tests/count_channels.py does).

Figures (40 documents, 2.2 pages each; M instructions per document), `--step checks`:
main at 4482c21 34.86; the page count from the read-back pass (one open, not two) 32.94;
the XMP metadata hidden from pdfium 32.30; object types read with the objects, through
prototypes that convert nothing 30.82; the quick pass in one walk 30.05; one copy for
the reading patches 29.51; the overlap sweep by clusters 29.15 (-16%); then (29.19 at
4579d5f) the check for text cut off by its box (server/channels/preflight_clipped.py: two
pdfium calls per text object for its clip path) 30.68 (+5%). `--step
render_print`: 43.72 -> 38.00. What is left is mostly pdfium loading the pages
(`FPDF_LoadPage`: content stream, fonts, glyph boxes; 20.0 of the 29.15, opening 1.2)
and the ctypes calls reading ~230 objects a page (~4.4); every check needs the page
objects' bounds, so the load stays.

`--verdicts` writes one line per document: the sha256 of its print PDF and what the checks
said of it (accepted, or the refusal's message and every violation's path and text), for
the samples of every layout version and `--generated` card invoices, some of them made to
fail (long unbroken words in a transaction, the name, the address; the same rendered by
the card invoice whose Typst `fit` breaks nothing, so they overflow), each checked with
the builtin mark zones, none, and made-up zones over the page's columns; run it on two
checkouts and compare the files to show two versions refuse the same documents with the
same errors and accept the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_tests import callgrind  # noqa: E402
from load_tests.bench_bulk import composed, composed_records, records, samples  # noqa: E402
from server.channels import paper_mark_zones  # noqa: E402
from server.channels.glyphs import print_composition  # noqa: E402
from server.channels.pdf import (  # noqa: E402
    PrintEngines,
    RenderedPdf,
    refuse_unprintable,  # noqa: E402
    render_print,
)
from server.channels.typst_engine import CONTEXT_FILE  # noqa: E402
from server.compose.layouts import Layout, LayoutRegistry, load_layout  # noqa: E402
from server.compose.model import Composition  # noqa: E402
from server.errors import InvalidInput  # noqa: E402
from server.printing.profiles import Rect  # noqa: E402
from server.printing.zones import MarkZone, all_mark_zones  # noqa: E402

NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
WARM_UP = 2

Document = tuple[Composition, Layout, RenderedPdf, tuple[MarkZone, ...]]


def _documents(count: int, engines: PrintEngines) -> list[Document]:
    layout = LayoutRegistry().get("card-invoice")
    zones = all_mark_zones()
    out = []
    for composed_ in composed_records(layout, count, NOW):
        composition = print_composition(composed_, layout)
        out.append((composition, layout, engines.render(layout, composition),
                    paper_mark_zones(composition, zones)))
    return out


def check(composition: Composition, layout: Layout, rendered: RenderedPdf,
          zones: tuple[MarkZone, ...]) -> int:
    """The print checks of one rendered PDF, as `render_print` runs them after the compile:
    -> its page count (the engine's, else the read-back pass's: Typst leaves it uncounted
    since the pass opens the PDF anyway; up to 4482c21 Typst counted with `page_count`)."""
    pages = refuse_unprintable(rendered.content, composition, layout, zones)
    return pages if rendered.counted_pages is None else rendered.counted_pages


class _Replay:
    """A Typst compiler that gives back what the real one made for the same inputs."""

    def __init__(self, made: dict[str, tuple[bytes, list]]):
        self.made = made

    def compile_with_warnings(self, **kwargs):
        return self.made[kwargs["input"][CONTEXT_FILE].decode()]


def _replaying(engines: PrintEngines, documents: list[Document]) -> None:
    """Swap each Typst compiler of `engines` for a `_Replay` of the `documents`' PDFs: the
    idle ones of every layout version's pool (`typst_engine._Compilers`) and any it makes."""
    from server.channels.pdf import template_json

    engine = engines.engine("typst")
    replay = _Replay({template_json(composition): (rendered.content, [])
                      for composition, _, rendered, _ in documents})
    for compilers in engine._compilers.values():
        compilers._idle[:] = [replay] * len(compilers._idle)
        compilers._make = lambda: replay


def _step(name: str, engines: PrintEngines) -> Callable[[Document], object]:
    if name == "checks":
        return lambda document: check(*document)

    def whole(document: Document) -> object:
        composition, layout, rendered, zones = document
        output = render_print(composition, layout, engines, zones)
        assert output.content == rendered.content
        return output
    return whole


def measure(step_name: str, count: int, how: str) -> None:
    """Run `step_name` for `count` documents after WARM_UP more: under callgrind (`how`
    "callgrind", instrumentation on for the loop only), cProfile ("profile") or bare."""
    engines = PrintEngines()
    documents = _documents(count + WARM_UP, engines)
    if step_name == "render_print":
        _replaying(engines, documents)
    step = _step(step_name, engines)
    for document in documents[:WARM_UP]:
        step(document)
    callgrind.measured_loop(documents[WARM_UP:], step, how)


def count_instructions(step: str, count: int, keep: Path | None = None) -> int:
    """The instructions callgrind counted for `count` documents of `step`; its output file
    is copied to `keep` when given (for callgrind_annotate)."""
    return callgrind.count_instructions(__file__, ["--step", step, "--count", str(count)], keep)


# --- the verdicts ---------------------------------------------------------------------------

# no break point and nothing to hyphenate (capitals and digits), the schema's 80 characters
LONG_WORD = ("WWWEXAMPLESHOPNOORDER" + "0123456789KLMNOPQRSTUVWXYZ" * 5)[:80]


def _broken(data: str, n: int) -> str:
    """A generated invoice made to trouble the checks, by `n`: a transaction description,
    the customer's name or an address line without break points, or a merchant descriptor
    with combining marks."""
    record = json.loads(data)
    kind = n % 5
    if kind == 0:
        record["transactions"][n % len(record["transactions"])]["description"] = LONG_WORD
    elif kind == 1:
        record["customer"]["name"] = "Kari " + LONG_WORD[: 30 + n % 40]
    elif kind == 2:
        record["customer"]["address"]["lines"] = [LONG_WORD[: 30 + n % 40]]
    elif kind == 3:
        record["transactions"][0]["description"] = "No\u0336rdmann " * (3 + n % 9)
    else:
        record["transactions"][-1]["description"] = "X" * (20 + n % 60)
    return json.dumps(record, ensure_ascii=False)


# Made-up mark zones (mm) over the page's columns, so the mark-zone check meets text,
# rules and cell backgrounds and names what it finds: a strip over the amounts column, one
# over the descriptions, a box over the address window's right edge
TEST_ZONES = tuple(MarkZone("test-line", "omr", Rect(*box)) for box in (
    (170.0, 60.0, 12.0, 200.0), (60.0, 120.0, 8.0, 100.0), (110.0, 50.0, 10.0, 20.0)))


def _verdict_lines(generated: int) -> Iterator[str]:
    from tests.unit.test_print_text_fits import card_invoice_without_typst_breaks

    registry = LayoutRegistry()
    engines = PrintEngines()
    zones = all_mark_zones()
    card = registry.get("card-invoice")
    # the card invoice whose Typst `fit` breaks nothing: long words overflow, refused
    careless = load_layout(card_invoice_without_typst_breaks(
        Path(tempfile.mkdtemp(prefix="kanal-verdicts-"))))
    work = [(layout.ref, name, layout, data, None) for layout, name, data in samples(registry)]
    for key, data, locale in records(generated):
        work.append((card.ref, key, card, data, locale))
        broken = _broken(data, len(work))
        work.append((card.ref, key + "-broken", card, broken, locale))
        work.append((card.ref, key + "-careless", careless, broken, locale))
    # a Typst engine keeps one compiler per layout version: the careless copy (the same
    # `card-invoice@2.0.0`) needs engines of its own
    careless_engines = PrintEngines()
    for n, (ref, name, layout, data, locale) in enumerate(work):
        engines_ = careless_engines if layout is careless else engines
        try:
            composition = composed(layout, data, f"01JN4Q7W2E{n:06d}", locale, NOW)
        except Exception as exc:  # noqa: BLE001 - the same refusal on both sides is the same
            yield f"{ref} {name} compose {type(exc).__name__}"
            continue
        for label, marks in (("paper", zones), ("digital", ()), ("test-zones", TEST_ZONES)):
            try:
                output = render_print(composition, layout, engines_, marks)
            except InvalidInput as exc:
                found = "; ".join(f"{v.field}: {v.description}" for v in exc.violations)
                yield f"{ref} {name} {label} refused {exc} [{found}]"
                continue
            except Exception as exc:  # noqa: BLE001
                yield f"{ref} {name} {label} {type(exc).__name__}: {exc}"
                continue
            yield (f"{ref} {name} {label} accepted {output.sha256} "
                   f"{json.dumps(output.facts, sort_keys=True)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step", choices=("checks", "render_print"), default="checks")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="cProfile, no callgrind")
    parser.add_argument("--verdicts", type=Path, help="write every document's verdict here")
    parser.add_argument("--generated", type=int, default=100)
    callgrind.add_arguments(parser)
    args = parser.parse_args()
    if args.verdicts:
        lines = list(_verdict_lines(args.generated))
        args.verdicts.write_text("\n".join(lines) + "\n", encoding="utf-8")
        refused = sum(" refused " in line for line in lines)
        print(f"{len(lines)} verdicts ({refused} refused) -> {args.verdicts}")
    elif args.profile:
        measure(args.step, args.count, "profile")
    elif args.inside:
        measure(args.step, args.count, "callgrind")
    else:
        total = count_instructions(args.step, args.count, args.keep)
        print(f"{args.step}: {total:,} instructions for {args.count} documents, "
              f"{total // args.count:,} per document")


if __name__ == "__main__":
    main()
