"""What the e-mail and Factur-X channels cost per document outside the print render, in
instructions (callgrind: the same count however loaded the machine is), and what they write.

    python load_tests/count_channels.py --channel email --count 40        # callgrind count
    python load_tests/count_channels.py --channel facturx --count 40 --profile   # cProfile
    python load_tests/count_channels.py --digests digests.txt   # sha256 of every output

Counted per document, as the pipeline spends it (issue 14: non-render cost per document):
e-mail = `check_email` (the composer's plan check: subject, HTML, CSS inlining) then
`render_email` (text part, headers, MIME, the attachment's base64: the print PDF, or the
Factur-X the plan makes when the layout attaches it, rendered before counting); Factur-X =
`check_einvoice` then `render_einvoice` (the CII XML embedded in the print PDF/A-3).
`--count` generated card invoices (load_tests/bench_bulk.py `records`) are composed and
their print PDFs rendered before counting; two more are rendered first to warm the caches.
The documents are a second apart (no Date header repeats) and share the sample's e-mail
address. The count runs this script again under `valgrind --tool=callgrind
--instr-atstart=no` with PYTHONHASHSEED=0 (string hashes, so set and dict orders, the same
every run) and the heap settled as a bulk worker settles it (`gc.collect`, `gc.freeze`),
which switches instrumentation on and off around the loop with `callgrind_control` (its
own cost, some 0.6 M instructions for the whole run, is in the total): load_tests/
callgrind.py. Repeated counts
agree within about half a percent (main at 0f82a79: 30.19 and 30.35 M per e-mail).

`--digests` writes one line per output: the e-mail and the e-invoice of every sample of
every layout version, then of `--generated` card invoices; run it on two checkouts and
compare the files to show two versions of the channels write the same bytes (`Date` and
`Message-ID` come from the composition, the MIME boundaries from the document id, so no
line needs masking).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_tests import callgrind  # noqa: E402
from load_tests.bench_bulk import composed, composed_records, records, samples  # noqa: E402
from server.channels.einvoice_channel import check_einvoice, render_einvoice  # noqa: E402
from server.channels.email import check_email, email_attachment, render_email  # noqa: E402
from server.channels.pdf import PrintEngines, render_print  # noqa: E402
from server.compose.layouts import Layout, LayoutRegistry  # noqa: E402
from server.compose.model import Channel, Composition, Output  # noqa: E402
from server.compose.plan import FACTURX  # noqa: E402

NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
WARM_UP = 2

# composition, layout, its print PDF, what its e-mail attaches (the print PDF or its Factur-X)
Document = tuple[Composition, Layout, Output, Output]


def attached(composition: Composition, layout: Layout, pdf: Callable[[], Output]) -> Output:
    """The output the document's e-mail attaches (`email_attachment`): the print PDF
    `pdf()`, or the Factur-X made of it, as the pipeline hands them over."""
    if email_attachment(composition, layout) == Channel.EINVOICE:
        return render_einvoice(composition, layout, pdf=pdf)
    return pdf()


def _documents(count: int, engines: PrintEngines) -> list[Document]:
    layout = LayoutRegistry().get("card-invoice")
    documents = []
    for composition in composed_records(layout, count, NOW):
        printed = render_print(composition, layout, engines)
        documents.append((composition, layout, printed,
                          attached(composition, layout, lambda printed=printed: printed)))
    return documents


def _channel_step(channel: str) -> Callable[[Document], Output]:
    if channel == "email":
        def step(document: Document) -> Output:
            composition, layout, _, attachment = document
            check_email(composition, layout)
            return render_email(composition, layout, pdf=lambda: attachment)
    else:
        def step(document: Document) -> Output:
            composition, layout, printed, _ = document
            check_einvoice(composition, layout)
            output = render_einvoice(composition, layout, pdf=lambda: printed)
            if output.facts["syntax"] != FACTURX:
                raise SystemExit(f"expected Factur-X, got {output.facts['syntax']}")
            return output
    return step


def measure(channel: str, count: int, how: str) -> None:
    """Render `channel` for `count` documents after WARM_UP more: under callgrind (`how`
    "callgrind", instrumentation on for the loop only), cProfile ("profile") or bare."""
    step = _channel_step(channel)
    documents = _documents(count + WARM_UP, PrintEngines())
    for document in documents[:WARM_UP]:
        step(document)
    callgrind.measured_loop(documents[WARM_UP:], step, how)


def count_instructions(channel: str, count: int, keep: Path | None = None) -> int:
    """The instructions callgrind counted for `count` documents of `channel`; its output
    file is copied to `keep` when given (for callgrind_annotate)."""
    return callgrind.count_instructions(__file__, ["--channel", channel, "--count", str(count)],
                                        keep)


# --- the digests ----------------------------------------------------------------------------


def _digest_lines(generated: int) -> Iterator[str]:
    registry = LayoutRegistry()
    engines = PrintEngines()
    card = registry.get("card-invoice")
    work = [(layout.ref, name, layout, data, None) for layout, name, data in samples(registry)]
    work += [(card.ref, key, card, data, locale) for key, data, locale in records(generated)]
    for n, (ref, name, layout, data, locale) in enumerate(work):
        try:
            composition = composed(layout, data, f"01JN4Q7W2E{n:06d}", locale, NOW)
        except Exception as exc:  # noqa: BLE001 - the same refusal on both sides is the same
            yield f"{ref} {name} compose {type(exc).__name__}: {exc}"
            continue
        printed: list[Output] = []

        def pdf(composition=composition, layout=layout, printed=printed) -> Output:
            if not printed:
                printed.append(render_print(composition, layout, engines))
            return printed[0]

        def email_pdf(composition=composition, layout=layout, pdf=pdf) -> Output:
            return attached(composition, layout, pdf)

        for channel, render, given in ((Channel.EMAIL, render_email, email_pdf),
                                       (Channel.EINVOICE, render_einvoice, pdf)):
            try:
                output = render(composition, layout, pdf=given)
            except Exception as exc:  # noqa: BLE001
                yield f"{ref} {name} {channel.value} {type(exc).__name__}: {exc}"
                continue
            syntax = output.facts.get("syntax", "")
            yield (f"{ref} {name} {channel.value} {syntax} "
                   f"{hashlib.sha256(output.content).hexdigest()} {len(output.content)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channel", choices=("email", "facturx"), default="email")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="cProfile, no callgrind")
    parser.add_argument("--digests", type=Path, help="write the outputs' sha256 here")
    parser.add_argument("--generated", type=int, default=100)
    callgrind.add_arguments(parser)
    args = parser.parse_args()
    if args.digests:
        lines = list(_digest_lines(args.generated))
        args.digests.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{len(lines)} outputs -> {args.digests}")
    elif args.profile:
        measure(args.channel, args.count, "profile")
    elif args.inside:
        measure(args.channel, args.count, "callgrind")
    else:
        total = count_instructions(args.channel, args.count, args.keep)
        print(f"{args.channel}: {total:,} instructions for {args.count} documents, "
              f"{total // args.count:,} per document")


if __name__ == "__main__":
    main()
