"""What the HTTP layers under the archive's put cost the client, in instructions (callgrind):
the same signed, conditional, retained PutObject sent three ways, to decide whether a put
of our own over a kept-alive socket would pay (issue 14). An experiment, not a client.

    python load_tests/count_s3_http_layers.py [--count 100] [--bytes 60000]

One embedded SeaweedFS (an Object Lock bucket). For each way, this script runs itself again
under callgrind (load_tests/callgrind.py) and counts `--count` puts of `--bytes` random bytes
with a document's 15 metadata keys, COMPLIANCE retention and the sha256 given, each signed
by archive.sigv4 (the signing and the headers are in every figure):

- `signed_put`: archive.put_request.SignedPut, as ArchiveStore.put sends it (botocore's
  HTTP session, urllib3's pool, http.client; botocore's retry policy);
- `urllib3`: urllib3's connection pool alone (`urlopen`, no retries): what botocore's
  session layer adds is the difference;
- `socket`: one kept-alive socket, the request written as one `sendall`, the status line and
  headers read by hand (Content-Length bodies only, no retries, no error handling): the
  floor an own writer and reader could approach.

Measured on 2026-12-01 (100 puts of 60 KB, two runs): signed_put 2.08 M instructions per
put (2,077,253 and 2,081,638), urllib3 1.72 M, socket 0.57 M. botocore's session adds
~0.36 M; urllib3 and http.client (a `putheader` with two regular expressions per header,
the response headers parsed by the email package) ~1.15 M. A bulk card invoice makes 2.5
puts (load_tests/profile_stages.py), so an own writer and reader could save ~3.8 M of a
worker's ~87 M instructions per document (load_tests/count_bulk_worker.py), about 0.5 ms.
SeaweedFS gets the same request bytes either way. What it would have to do that `socket`
does not: the store's timeouts, a pool shared by threads, a stale kept-alive connection
retried, chunked and error responses (to botocore's parser and retry policy, as SignedPut
does), TLS and proxies (or SignedPut kept for them), and never reading one response as
another's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.digests import checksum_base64, digest_from_hex  # noqa: E402
from archive.embedded import EmbeddedS3  # noqa: E402
from archive.metadata import encode_metadata  # noqa: E402
from archive.objects import retention_instant  # noqa: E402
from archive.put_request import put_headers  # noqa: E402
from archive.sigv4 import amz_date, sign  # noqa: E402
from archive.store import ArchiveStore  # noqa: E402
from load_tests import callgrind  # noqa: E402
from load_tests.bench_s3_clients import ACCESS, BUCKET, SECRET, metadata  # noqa: E402

WAYS = ("signed_put", "urllib3", "socket")
WARM_UP = 10


def measure(endpoint: str, way: str, count: int, size: int) -> None:
    """`count` puts sent `way`, after WARM_UP, instrumentation on for them only."""
    import urllib3

    store = ArchiveStore(endpoint_url=endpoint, bucket=BUCKET, access_key=ACCESS,
                         secret_key=SECRET)
    signed_put = store._signed_put
    body = os.urandom(size)
    sha256 = hashlib.sha256(body).hexdigest()
    until = retention_instant((datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0))
    run = os.urandom(4).hex()
    address = urlsplit(endpoint)
    pool = urllib3.HTTPConnectionPool(address.hostname, address.port, maxsize=1)
    connection = socket.create_connection((address.hostname, address.port))
    reader = connection.makefile("rb")

    def headers(n: int) -> dict[str, str]:
        return put_headers(media_type="application/pdf",
                           metadata=encode_metadata(metadata(n), sha256),
                           checksum_sha256=checksum_base64(digest_from_hex(sha256)),
                           retain_until=until, legal_hold=False)

    def signed(path: str, n: int) -> dict[str, str]:
        return sign(signed_put._keys, signed_put._credentials.get_frozen_credentials(), "PUT",
                    signed_put._host, path, headers(n), amz_date())

    def by_signed_put(n: int) -> None:
        signed_put(BUCKET, f"layers/{run}/s/{n}/print.pdf", body, headers(n))

    def by_urllib3(n: int) -> None:
        path = f"/{BUCKET}/layers/{run}/u/{n}/print.pdf"
        request = signed(path, n)
        request["Content-Length"] = str(len(body))
        response = pool.urlopen("PUT", path, body=body, headers=request, retries=False,
                                preload_content=True)
        assert response.status == 200, response.status

    def by_socket(n: int) -> None:
        path = f"/{BUCKET}/layers/{run}/k/{n}/print.pdf"
        lines = "".join(f"{name}: {value}\r\n" for name, value in signed(path, n).items())
        connection.sendall(f"PUT {path} HTTP/1.1\r\nHost: {signed_put._host}\r\n{lines}"
                           f"Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body)
        status = reader.readline()
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        if length:
            reader.read(length)
        assert status.split()[1] == b"200", status

    step = {"signed_put": by_signed_put, "urllib3": by_urllib3, "socket": by_socket}[way]
    for n in range(WARM_UP):
        step(-1 - n)
    callgrind.measured_loop(range(count), step, "callgrind")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--bytes", type=int, default=60_000)
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    callgrind.add_arguments(parser)
    args = parser.parse_args()
    if args.inside:
        measure(args.endpoint, args.way, args.count, args.bytes)
        return
    with tempfile.TemporaryDirectory(prefix="kanal-http-layers-") as state, EmbeddedS3(
            Path(state) / "s3", access_key=ACCESS, secret_key=SECRET) as s3:
        ArchiveStore(endpoint_url=s3.endpoint_url, bucket=BUCKET, access_key=ACCESS,
                     secret_key=SECRET).ensure_bucket()
        for way in WAYS:
            total = callgrind.count_instructions(
                __file__, ["--endpoint", s3.endpoint_url, "--way", way, "--count",
                           str(args.count), "--bytes", str(args.bytes)])
            print(f"{way}: {total // args.count:,} instructions per put")


if __name__ == "__main__":
    main()
