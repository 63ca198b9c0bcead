"""What a bare Typst render of a card invoice costs, in instructions (callgrind: the same
count however loaded the machine is), and what every Typst layout writes (issue 14).

    python load_tests/count_typst_render.py --count 40                 # callgrind count
    python load_tests/count_typst_render.py --count 40 --transactions 0   # fixed cost
    python load_tests/count_typst_render.py --count 40 --keep cg.out   # for callgrind_annotate
    python load_tests/count_typst_render.py --count 20 --layout payment-reminder  # customers
    python load_tests/count_typst_render.py --count 8 --layout b2b-invoice --samples
    python load_tests/count_typst_render.py --digests digests.txt      # sha256 of every PDF

Counted per document: `TypstEngine().render` alone (the context JSON, the advance bounds,
Typst's compile with PDF/A-3 + PDF/UA-1 export), for `--count` generated card invoices
(load_tests/bench_bulk.py `records`: nb-NO and sv-SE, 5-60 transactions, 1-3 pages, a
second apart), `--transactions N` giving each of them N transactions instead. One compiler
renders them all, as a render process does; WARM_UP more documents are rendered first, so
the count is of a warm compiler (comemo's caches filled by earlier documents). The count
runs this script again under `valgrind --tool=callgrind --instr-atstart=no` with
PYTHONHASHSEED=0, switching instrumentation on and off around the loop
(load_tests/callgrind.py).

`--digests` writes one line per PDF: the sha256 and size of the print PDF of every sample
of every layout version with a Typst template, then of `--generated` card invoices (the
bulk benchmark's records), then of the card invoices made to trouble `fit` and the keep
rules (long unbroken words, 0-4 transactions, a table that ends near a page's foot); run
it on two checkouts and compare the files to show two versions write the same bytes. Each
PDF is rendered by a fresh compiler and again by a warm one (the line says when they
differ), so a change in what comemo reuses between documents shows too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_tests import callgrind  # noqa: E402
from load_tests.bench_bulk import FIRST, LAST, STREETS, composed, records, samples  # noqa: E402
from server.channels.glyphs import print_composition  # noqa: E402
from server.channels.typst_engine import TypstEngine  # noqa: E402
from server.compose.layouts import LayoutRegistry  # noqa: E402
from server.compose.model import Composition  # noqa: E402

NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
WARM_UP = 2


def _with_transactions(count: int, transactions: int | None) -> Iterator[tuple[str, str]]:
    """(locale, data) of the first `count` bench records, with `transactions` of each
    record's own transactions (cycled) when given."""
    for _, data, locale in records(count):
        if transactions is not None:
            record = json.loads(data)
            own = record["transactions"]
            record["transactions"] = [own[i % len(own)] for i in range(transactions)]
            data = json.dumps(record, ensure_ascii=False)
        yield locale, data


def _samples_of(layout_id: str, count: int) -> Iterator[tuple[str | None, str]]:
    """(None, data) of the first `count` samples of the latest `layout_id` (each once: a
    document rendered again would find all its layout work done). Raises SystemExit when
    the layout has fewer."""
    registry = LayoutRegistry()
    found = [data for layout, _, data in samples(registry)
             if layout.ref == registry.get(layout_id).ref]
    if count > len(found):
        raise SystemExit(f"{layout_id} has {len(found)} samples: --count {len(found) - WARM_UP}"
                         " at most")
    for data in found[:count]:
        yield None, data


def _customers_of(layout_id: str, count: int) -> Iterator[tuple[str | None, str]]:
    """(None, data): the latest `layout_id`'s `sample.json` for `count` customers of one
    issuer (name, id, street, document number and payment reference vary), as a bulk run
    of one tenant's reminders or business invoices is."""
    rng = random.Random(7)
    sample = LayoutRegistry().get(layout_id).sample_data()
    for n in range(count):
        data = json.loads(sample)
        customer = data["customer"]
        customer["customer_id"] = f"{30000000 + n}"
        customer["name"] = f"{rng.choice(FIRST['nb-NO'])} {rng.choice(LAST['nb-NO'])}"
        customer["address"]["lines"] = [f"{rng.choice(STREETS['nb-NO'])} {rng.randint(1, 140)}"]
        owner = data.get("invoice", data)  # the reminder names the invoice it reminds of
        owner["number"] = f"{2026030000 + n}"
        if "reference_base" in data.get("payment", {}):
            data["payment"]["reference_base"] = f"{30000000 + n}123"
        yield None, json.dumps(data, ensure_ascii=False)


def measure(count: int, transactions: int | None, how: str,
            layout_id: str = "card-invoice", samples_only: bool = False) -> None:
    """Render `count` documents after WARM_UP more with one engine: under callgrind (`how`
    "callgrind", instrumentation on for the loop only), cProfile ("profile") or bare.
    Card invoices are bench records; another layout renders its `sample.json` for other
    customers (`samples_only`: its samples, each once)."""
    layout = LayoutRegistry().get(layout_id)
    work = (_with_transactions(count + WARM_UP, transactions) if layout_id == "card-invoice"
            else _samples_of(layout_id, count + WARM_UP) if samples_only
            else _customers_of(layout_id, count + WARM_UP))
    documents = [print_composition(composed(layout, data, f"01JN4Q7W2E{n:06d}", locale, NOW),
                                   layout)
                 for n, (locale, data) in enumerate(work)]
    engine = TypstEngine()
    for document in documents[:WARM_UP]:
        engine.render(layout, document)
    callgrind.measured_loop(documents[WARM_UP:], lambda d: engine.render(layout, d), how)


# --- the digests ----------------------------------------------------------------------------

# no break point and nothing to hyphenate (capitals and digits), the schema's 80 characters
LONG_WORD = ("WWWEXAMPLESHOPNOORDER" + "0123456789KLMNOPQRSTUVWXYZ" * 5)[:80]


def _troubled(n: int, data: str) -> str:
    """A bench record changed by `n`: 0-4 transactions, a long word in a description, the
    name, an address line, a place, or 20-34 transactions (tables ending near a foot)."""
    record = json.loads(data)
    txs = record["transactions"]
    kind = n % 6
    if kind == 0:
        record["transactions"] = txs[: n // 6 % 5]
    elif kind == 1:
        txs[n % len(txs)]["description"] = LONG_WORD[: 20 + n % 60]
    elif kind == 2:
        record["customer"]["name"] = "Kari " + LONG_WORD[: 30 + n % 35]
    elif kind == 3:
        record["customer"]["address"]["lines"] = [LONG_WORD[: 30 + n % 40]]
    elif kind == 4:
        txs[0]["description"] = "No\u0336rdmann " * (3 + n % 5)
        txs[-1]["place"] = "X" * (10 + n % 30)
    else:
        record["transactions"] = [txs[i % len(txs)] for i in range(20 + n % 15)]
    return json.dumps(record, ensure_ascii=False)


def _work(generated: int, troubled: int) -> Iterator[tuple[str, str, object, str, str | None]]:
    registry = LayoutRegistry()
    card = registry.get("card-invoice")
    for layout, name, data in samples(registry):
        if layout.section("print").get("typst_template"):
            yield layout.ref, name, layout, data, None
    for key, data, locale in records(generated):
        yield card.ref, key, card, data, locale
    for n, (key, data, locale) in enumerate(records(troubled, seed=11)):
        yield card.ref, f"troubled-{key}", card, _troubled(n, data), locale


def _digest_lines(generated: int, troubled: int, pdfs: Path | None) -> Iterator[str]:
    warm = TypstEngine()
    for n, (ref, name, layout, data, locale) in enumerate(_work(generated, troubled)):
        try:
            composition: Composition = print_composition(
                composed(layout, data, f"01JN4Q7W2E{n:06d}", locale, NOW), layout)
        except Exception as exc:  # noqa: BLE001 - the same refusal on both sides is the same
            yield f"{ref} {name} compose {type(exc).__name__}: {exc}"
            continue
        fresh = TypstEngine().render(layout, composition).content
        again = warm.render(layout, composition).content
        digest = hashlib.sha256(fresh).hexdigest()
        if pdfs is not None:
            (pdfs / f"{n:04d}.pdf").write_bytes(fresh)
        warm_note = "" if again == fresh else f" WARM-DIFFERS {hashlib.sha256(again).hexdigest()}"
        yield f"{ref} {name} {digest} {len(fresh)}{warm_note}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--transactions", type=int, help="this many per document")
    parser.add_argument("--layout", default="card-invoice",
                        help="another layout renders its sample for other customers")
    parser.add_argument("--samples", action="store_true",
                        help="with --layout: its samples instead, each once")
    parser.add_argument("--profile", action="store_true", help="cProfile, no callgrind")
    parser.add_argument("--digests", type=Path, help="write the PDFs' sha256 here")
    parser.add_argument("--generated", type=int, default=60)
    parser.add_argument("--troubled", type=int, default=60)
    parser.add_argument("--pdfs", type=Path, help="with --digests: keep the PDFs here")
    callgrind.add_arguments(parser)
    args = parser.parse_args()
    if args.digests:
        with args.digests.open("w", encoding="utf-8") as out:
            for line in _digest_lines(args.generated, args.troubled, args.pdfs):
                out.write(line + "\n")
        return
    if args.inside or args.profile:
        measure(args.count, args.transactions, "profile" if args.profile else "callgrind",
                args.layout, args.samples)
        return
    extra = ([] if args.transactions is None else ["--transactions", str(args.transactions)])
    extra += ["--layout", args.layout, *(["--samples"] if args.samples else [])]
    total = callgrind.count_instructions(__file__, ["--count", str(args.count), *extra],
                                         args.keep)
    print(json.dumps({"layout": args.layout, "samples": args.samples, "documents": args.count,
                      "transactions": args.transactions,
                      "instructions": total,
                      "M_instructions_per_document": round(total / args.count / 1e6, 2)}))


if __name__ == "__main__":
    main()
