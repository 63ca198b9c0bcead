"""A real SMPP peer for the tests: the npm `smpp` package's server (node-smpp), run by
tests/smsc/smsc.js on free loopback ports, with an HTTP control port to drop links,
throttle, choose receipt outcomes and read what it received.

`.ci/run` installs the package (`npm ci --prefix tests/smsc`, pinned by its lock file);
`Smsc.start` does it too when the folder has no node_modules yet.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.postfix import free_port

HERE = Path(__file__).resolve().parent / "smsc"
SYSTEM_ID, PASSWORD = "kanal", "smsc1234"


def install() -> None:
    """`npm ci` into tests/smsc once (several test processes may ask at once)."""
    if (HERE / "node_modules" / "smpp").is_dir():
        return
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed: run .ci/run (apt-get install nodejs npm)")
    with open(HERE / "package.json") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (HERE / "node_modules" / "smpp").is_dir():
            subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=HERE,
                           check=True, capture_output=True)


class Smsc:
    def __init__(self, root: Path | None = None):
        self.root = root or Path(tempfile.mkdtemp(prefix="kanal-smsc-"))
        self.port = free_port()
        self.control_port = free_port()
        self.log_file = self.root / "received.jsonl"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        install()
        self.process = subprocess.Popen(
            ["node", str(HERE / "smsc.js"), "--port", str(self.port),
             "--control-port", str(self.control_port), "--log", str(self.log_file),
             "--system-id", SYSTEM_ID, "--password", PASSWORD],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the readiness signal
        if b"smsc ready" not in line:
            raise RuntimeError(f"the SMSC did not start: {line!r}")

    def stop(self) -> None:
        """Stop (an outage); what it received stays in its log."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _control(self, path: str, method: str = "POST") -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}",
                                         method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def received(self) -> list[dict[str, Any]]:
        """Every submit_sm the SMSC accepted, across its restarts, oldest first."""
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line]

    def drop_links(self) -> None:
        self._control("/drop")

    def throttle(self, count: int) -> None:
        self._control(f"/throttle?count={count}")

    def stall(self, count: int) -> None:
        """Take the next `count` submit_sm (and send their receipts) but never answer
        them: the ESME does not learn the message ids."""
        self._control(f"/stall?count={count}")

    def outcome(self, number: str, stat: str, err: str = "000") -> None:
        """Receipts for `number` (E.164) say `stat` (UNDELIV, REJECTD, EXPIRED ...)."""
        self._control(f"/outcome?destination={number.lstrip('+')}&stat={stat}&err={err}")

    def receipts(self, *, tlvs: bool | None = None, hold: bool | None = None) -> None:
        query = [f"tlvs={int(tlvs)}"] if tlvs is not None else []
        query += [f"hold={int(hold)}"] if hold is not None else []
        self._control("/receipts?" + "&".join(query))

    def mobile_originated(self, source: str, text: str, destination: str = "2222") -> None:
        """A customer's SMS from `source` (E.164) to the short number, as deliver_sm."""
        query = urllib.parse.urlencode({"source": source.lstrip("+"), "text": text,
                                        "destination": destination})
        self._control(f"/mo?{query}")

    def provider_settings(self, **overrides: Any) -> dict[str, Any]:
        """`[delivery.providers.<name>]` for Kanal's SMPP adapter bound to this SMSC."""
        return {"type": "smpp", "host": "127.0.0.1", "port": self.port,
                "system_id": SYSTEM_ID, "password": PASSWORD, "source_addr": "Fjordbank",
                "enquire_link_seconds": 5, "response_timeout": 5, "rebind_seconds": 0.2,
                "backoff_seconds": 0.2, "backoff_max_seconds": 1.0, "breaker_failures": 3,
                "breaker_seconds": 1.0, "max_attempts": 50, **overrides}

