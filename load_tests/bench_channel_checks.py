"""What the channel checks add to composing: Compose-stage time per document with the plan
asking every channel whether it can carry the document (SMS fitting, email HTML size,
e-invoice rules), next to the same compose with the checks switched off, in the same run.

    python load_tests/bench_channel_checks.py [--documents 300]

For each shipped layout sample, with the recipient's preferences cleared so that the default
(digital) plan applies and email, SMS and e-invoice are all candidates where the layout has
them. Single process, one core; no rendering, no archive.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.compose import composer  # noqa: E402
from server.compose.layouts import LayoutRegistry  # noqa: E402


def timed(requests: list[composer.ComposeRequest], rounds: int) -> list[float]:
    """ms per compose, one figure per round (the median of rounds is reported)."""
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for request in requests:
            composer.compose(request)
        out.append((time.perf_counter() - start) * 1000 / len(requests))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300, help="composes per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    layouts = LayoutRegistry()
    checks = composer.channel_unfit
    results = {}
    for layout in layouts.latest():
        data = json.loads(layout.sample_data())
        data["customer"]["preferences"] = []
        data["customer"]["consents"] = ["email", "sms"]
        request = composer.ComposeRequest(
            tenant="t", layout=layout, data=json.dumps(data), document_id="d",
            now=datetime(2026, 3, 2, tzinfo=UTC))
        plan = composer.compose(request).channel_plan
        requests = [request] * args.documents
        timed(requests[:20], 1)  # warm caches (templates, Babel)
        with_checks = timed(requests, args.rounds)
        composer.channel_unfit = lambda composition, layout, channel: None
        try:
            without = timed(requests, args.rounds)
        finally:
            composer.channel_unfit = checks
        results[layout.id] = {
            "plan": "+".join(c.value for c in plan.channels),
            "fallbacks": "+".join(c.value for c in plan.fallbacks),
            "compose_ms": round(statistics.median(with_checks), 2),
            "compose_without_checks_ms": round(statistics.median(without), 2),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
