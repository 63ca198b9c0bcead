"""Delivery throughput to a local Postfix with the dispatcher's defaults, next to the render
rate it must never hold back (target: >= 10x).

    python load_tests/bench_delivery.py [--messages 2000] [--index-url postgresql+psycopg://...]

Starts a private Postfix on loopback (tests/postfix.py) and an in-process Kanal (embedded
S3, SQLite index unless --index-url) whose e-mail provider is that Postfix with the
default limits (concurrency 4, 200 messages/s, STARTTLS). One card invoice is composed
through the real path; then `--messages` outbox rows that send its archived e-mail (with
the PDF attached, DKIM-signed) to distinct mailboxes are committed at once, and the clock
runs until the dispatcher has every one accepted by Postfix (`sent`) and, separately, until
Postfix's success DSNs have marked every one `delivered`. The render rate is the same
invoice's compose + render (every channel of its plan, the PDF included) in one process,
and x2 for the two worker processes of a bulk run on this machine.
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

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.app import KanalServer  # noqa: E402
from server.channels import Renderers  # noqa: E402
from server.compose.composer import ComposeRequest, compose  # noqa: E402
from server.config import Settings  # noqa: E402
from server.delivery.tables import deliveries  # noqa: E402
from server.documents import ComposeInput  # noqa: E402
from tests.integration.delivery_fixtures import DkimKey, sample  # noqa: E402
from tests.postfix import BOUNCE_DOMAIN, DOMAIN, Postfix, free_port  # noqa: E402


def render_rate(data: str, count: int) -> float:
    server_layouts = __import__("server.compose.layouts", fromlist=["LayoutRegistry"])
    layout = server_layouts.LayoutRegistry().get("card-invoice")
    renderers = Renderers()
    started = time.perf_counter()
    for n in range(count):
        composition = compose(ComposeRequest(tenant="bench", layout=layout, data=data,
                                             document_id=f"bench{n}", now=datetime.now(UTC)))
        renderers.render(composition, layout)
    return count / (time.perf_counter() - started)


def count_states(engine, states: tuple[str, ...], tag: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(deliveries).where(
            deliveries.c.state.in_(states), deliveries.c.recipient.like(f"%{tag}%"))).scalar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--index-url", default=None)
    parser.add_argument("--render-docs", type=int, default=10)
    args = parser.parse_args()

    postfix = Postfix(bounce_port=free_port())
    postfix.start()
    try:
        with tempfile.TemporaryDirectory(prefix="kanal-bench-") as state:
            dkim = DkimKey(Path(state))
            settings = Settings(
                listen="127.0.0.1:0", state_dir=Path(state), render_workers=0,
                index_url=args.index_url,
                delivery={
                    "bounce_listen": f"127.0.0.1:{postfix.bounce_port}",
                    "channels": {"email": "relay"},
                    "providers": {"relay": {"type": "smtp", "host": "127.0.0.1",
                                            "port": postfix.port, "starttls": True,
                                            "ca_file": str(postfix.ca_file)}},
                    "tenants": {"bench": {"return_path_domain": BOUNCE_DOMAIN,
                                          "dkim": {"selector": dkim.selector,
                                                   "key_file": str(dkim.key_file)}}},
                })
            with KanalServer(settings) as kanal:
                data = sample("card-invoice", f"ok-first@{DOMAIN}")
                result = kanal.documents.compose(ComposeInput(
                    tenant="bench", layout_id="card-invoice", data=data))
                [first] = [d for d in kanal.delivery.for_document("bench", result.document_id)
                           if d.channel == "email"]
                engine = kanal.index.engine
                with engine.connect() as conn:
                    template = dict(conn.execute(select(deliveries).where(
                        deliveries.c.delivery_id == first.delivery_id)).mappings().one())
                tag = f"bench{os.getpid()}"
                now = datetime.now(UTC)
                rows = []
                from ulid import ULID
                for n in range(args.messages):
                    rows.append({**template, "delivery_id": str(ULID()),
                                 "recipient": f"ok-{tag}-{n}@{DOMAIN}", "state": "queued",
                                 "state_at": now, "reason": "bench", "attempts": 0,
                                 "next_attempt_at": now, "lease_owner": None,
                                 "lease_until": None, "created_at": now,
                                 "provider_message_id": "", "fallbacks": ""})
                with engine.begin() as conn:
                    kanal.delivery.store.insert(conn, rows, now)
                started = time.perf_counter()
                kanal.delivery.notify()
                while count_states(engine, ("sent", "delivered"), tag) < args.messages:
                    time.sleep(0.05)
                sent_s = time.perf_counter() - started
                while count_states(engine, ("delivered",), tag) < args.messages:
                    time.sleep(0.05)
                delivered_s = time.perf_counter() - started
                size = len(kanal.store.get(template["archive_key"]))
        render = render_rate(sample("card-invoice", f"ok-r@{DOMAIN}"), args.render_docs)
    finally:
        postfix.remove()

    results = {
        "messages": args.messages, "message_bytes": size,
        "index": "postgresql" if args.index_url else "sqlite",
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
    (out / "delivery.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
