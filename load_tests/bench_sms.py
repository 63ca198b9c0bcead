"""SMS throughput to an SMSC with the SMPP adapter's defaults, next to the render rate it
must never hold back (target: >= 10x).

    python load_tests/bench_sms.py [--messages 3000] [--index-url postgresql+psycopg://...]

Starts the tests' SMSC (the npm `smpp` server, tests/smsc; it acknowledges every submit_sm
and sends a delivery receipt at once) and an in-process Kanal (embedded S3, SQLite index
unless --index-url) whose SMS provider is that SMSC with the adapter's defaults (window 10,
as many sending threads, at most 1000 submit_sm/s). One card invoice's SMS is composed through the
real path; then `--messages` outbox rows that send its archived text to distinct numbers are
committed at once, and the clock runs until the dispatcher has every one accepted by the
SMSC (`sent`) and, separately, until the SMSC's receipts have marked every one `delivered`.
`--rate` raises the provider's rate limit (an SMSC contract's TPS) to show where the
dispatcher itself tops out. The render rate is the same invoice's compose + render (every
channel of its plan, the PDF included) in one process, and x2 for a bulk run's two worker
processes on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from ulid import ULID  # noqa: E402

from load_tests.bench_delivery import render_rate  # noqa: E402
from server.app import KanalServer  # noqa: E402
from server.compose.model import Channel  # noqa: E402
from server.config import Settings  # noqa: E402
from server.delivery.tables import deliveries  # noqa: E402
from server.documents import ComposeInput  # noqa: E402
from tests.integration.delivery_fixtures import sample  # noqa: E402
from tests.smsc import PASSWORD, SYSTEM_ID, Smsc  # noqa: E402


def count(engine, states: tuple[str, ...], tag: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(deliveries).where(
            deliveries.c.state.in_(states), deliveries.c.reason != tag,
            deliveries.c.recipient.like("+4740%"))).scalar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--index-url", default=None)
    parser.add_argument("--render-docs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=None,
                        help="the provider's rate_per_second (default: the adapter's)")
    args = parser.parse_args()

    smsc = Smsc()
    smsc.start()
    provider = {"type": "smpp", "host": "127.0.0.1", "port": smsc.port,
                "system_id": SYSTEM_ID, "password": PASSWORD, "source_addr": "Fjordbank"}
    if args.rate:
        provider["rate_per_second"] = args.rate
    try:
        with tempfile.TemporaryDirectory(prefix="kanal-bench-sms-") as state:
            settings = Settings(
                listen="127.0.0.1:0", state_dir=Path(state), render_workers=0,
                index_url=args.index_url,
                delivery={"channels": {"sms": "smsc"}, "providers": {"smsc": provider},
                          "rules": {"quiet_hours": {"sms": {}}}})
            with KanalServer(settings) as kanal:
                limits = kanal.delivery.dispatcher.slots["smsc"].limits
                data = sample("card-invoice", "kari@example.no", mobile="+4791234567")
                result = kanal.documents.compose(ComposeInput(
                    tenant="bench", layout_id="card-invoice", data=data,
                    channels=(Channel.SMS,)))
                [first] = kanal.delivery.for_document("bench", result.document_id)
                engine = kanal.index.engine
                with engine.connect() as conn:
                    template = dict(conn.execute(select(deliveries).where(
                        deliveries.c.delivery_id == first.delivery_id)).mappings().one())
                now = datetime.now(UTC)
                rows = []
                for n in range(args.messages):
                    delivery_id = str(ULID())
                    rows.append({**template, "delivery_id": delivery_id,
                                 "message_id": delivery_id, "recipient": f"+4740{n:06d}",
                                 "state": "queued", "state_at": now, "reason": "bench",
                                 "attempts": 0, "next_attempt_at": now, "lease_owner": None,
                                 "lease_until": None, "created_at": now,
                                 "provider_message_id": "", "fallbacks": ""})
                with engine.begin() as conn:
                    kanal.delivery.store.insert(conn, rows, now)
                started = time.perf_counter()
                kanal.delivery.notify()
                while count(engine, ("sent", "delivered"), "") < args.messages:
                    time.sleep(0.05)
                sent_s = time.perf_counter() - started
                while count(engine, ("delivered",), "") < args.messages:
                    time.sleep(0.05)
                delivered_s = time.perf_counter() - started
                at_smsc = len([r for r in smsc.received()
                               if r["destination_addr"].startswith("4740")])
        render = render_rate(sample("card-invoice", "ok-r@example.no"), args.render_docs)
    finally:
        smsc.remove()

    results = {
        "messages": args.messages, "received_by_the_smsc": at_smsc,
        "index": "postgresql" if args.index_url else "sqlite",
        "rate_per_second_limit": limits.rate_per_second, "concurrency": limits.concurrency,
        "sent_per_s": round(args.messages / sent_s, 1),
        "delivered_per_s": round(args.messages / delivered_s, 1),
        "render_docs_per_s_one_process": round(render, 2),
        "render_docs_per_s_bulk_two_workers": round(2 * render, 2),
        "context": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "at": datetime.now(UTC).isoformat()},
    }
    results["sent_over_bulk_render"] = round(
        results["sent_per_s"] / results["render_docs_per_s_bulk_two_workers"], 1)
    out = ROOT / "load_tests" / "results"
    out.mkdir(exist_ok=True)
    (out / f"sms{'-rate' if args.rate else ''}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
