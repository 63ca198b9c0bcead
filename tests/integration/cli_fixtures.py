"""The `kanal` client's tests' server and helpers (tests/integration/test_cli.py,
test_cli_submit.py): an in-process KanalServer (embedded SeaweedFS, SQLite index, one real
worker process, chunks of 5) with the card invoice only, API keys for a producer, a portal
and an admin, and the commands run through `server.cli.main`, exactly what the `kanal`
script calls. The server in the tests' process logs to stdout as well, so JSON output is
picked out of what was captured (`json_out`).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.app import KanalServer
from server.cli import main
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import Settings
from tests.client import Keys

KEYS = Keys(("bank", "producer"), ("bank", "portal"), ("bank", "admin"))
SECRET = "bank-portal-secret-of-at-least-32-bytes"
SAMPLE = (DEFAULT_LAYOUTS_DIR / "card-invoice/2.0.0/sample.json").read_text(encoding="utf-8")
CUSTOMER = json.loads(SAMPLE)["customer"]["customer_id"]


def start_kanal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KanalServer]:
    """The server of a test module (its `kanal` fixture: `yield from start_kanal(...)`)."""
    state = tmp_path_factory.mktemp("kanal-cli")
    layouts = tmp_path_factory.mktemp("layouts")  # only what these tests compose
    for name in ("card-invoice", "_shared"):
        (layouts / name).symlink_to(DEFAULT_LAYOUTS_DIR / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANAL_JOB_CHUNK_SIZE", "5")
        mp.setenv("KANAL_JOB_WORKERS", "1")
        with KanalServer(Settings(
                listen="127.0.0.1:0", state_dir=state, layouts_dir=layouts, render_workers=1,
                api_keys=KEYS.api_keys, metrics_listen="127.0.0.1:0",
                portal={"customer_token_secrets": {"bank": SECRET}})) as server:
            yield server


def kanal_cli(kanal: KanalServer, *args: str, role: str = "producer") -> int:
    return main([*args, "--address", kanal.address, "--key", KEYS["bank", role]])


def json_out(captured: str) -> dict:
    """The one JSON document the command printed (lines '{' ... '}'), between log lines."""
    lines = captured.splitlines()
    start = lines.index("{")
    end = lines.index("}", start)
    return json.loads("\n".join(lines[start:end + 1]))


def scrape(kanal: KanalServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert kanal.metrics is not None
    with urllib.request.urlopen(kanal.metrics.url, timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def one_line(err: str, prefix: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("kanal ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]
