"""What one archived object costs the client, in instructions (callgrind: the same count
however loaded the machine is): `ArchiveStore.put` as the archive step calls it, and the
request's signing alone.

    python load_tests/count_s3_put.py [--count 200] [--bytes 60000] [--keep out.callgrind]

One embedded SeaweedFS (archive.embedded, an Object Lock bucket) is started by this
process; the count runs this script again under `valgrind --tool=callgrind
--instr-atstart=no` with PYTHONHASHSEED=0 against it (SeaweedFS is not traced), with the
heap settled as a bulk worker settles it (`gc.collect`, `gc.freeze`). Instrumentation is
switched on with `callgrind_control` around `--count` puts of `--bytes` random bytes (a
card invoice PDF is ~60 KB) with a document's 15 metadata keys, COMPLIANCE retention and
the sha256 given (the renderers give it), after WARM_UP puts; the store's request threads
are counted too. `--what sign` counts `SignedPut._signed` alone (the signed, prepared
request, nothing sent). Counts include callgrind_control's own cost (some 0.6 M for the
run), so per-put figures are for a few hundred puts. The running under callgrind:
load_tests/callgrind.py.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH: another checkout's archive may be counted

from archive.embedded import EmbeddedS3  # noqa: E402
from archive.store import ArchiveStore  # noqa: E402
from load_tests import callgrind  # noqa: E402
from load_tests.bench_s3_clients import ACCESS, BUCKET, SECRET, metadata  # noqa: E402

WARM_UP = 10


def measure(endpoint: str, what: str, count: int, size: int) -> None:
    """`count` puts (or signings) after WARM_UP, instrumentation on for them only."""
    store = ArchiveStore(endpoint_url=endpoint, bucket=BUCKET, access_key=ACCESS,
                         secret_key=SECRET)
    body = os.urandom(size)
    sha256 = hashlib.sha256(body).hexdigest()
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    run = os.urandom(4).hex()

    if what == "put":
        def one(n: int) -> None:
            store.put(f"count/{run}/{n}/print.pdf", body, media_type="application/pdf",
                      metadata=metadata(n), retain_until=until, sha256=sha256)
    else:
        from archive.digests import checksum_base64, digest_from_hex
        from archive.metadata import encode_metadata
        from archive.put_request import put_headers

        headers = put_headers(media_type="application/pdf",
                              metadata=encode_metadata(metadata(1), sha256),
                              checksum_sha256=checksum_base64(digest_from_hex(sha256)),
                              retain_until=until, legal_hold=False)
        signed = store._signed_put._signed  # main's takes a URL, this branch's a path
        target = (f"/{BUCKET}/count/{run}/print.pdf" if "path" in
                  signed.__code__.co_varnames[:2] else
                  f"{endpoint}/{BUCKET}/count/{run}/print.pdf")

        def one(n: int) -> None:
            signed(target, body, headers)

    for n in range(WARM_UP):
        one(-1 - n)
    callgrind.measured_loop(range(count), one, "callgrind")


def count_instructions(endpoint: str, what: str, count: int, size: int,
                       keep: Path | None) -> int:
    """The instructions callgrind counted for `count` of `what` against `endpoint`; its
    output file is copied to `keep` when given."""
    return callgrind.count_instructions(
        __file__, ["--endpoint", endpoint, "--what", what, "--count", str(count),
                   "--bytes", str(size)], keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--bytes", type=int, default=60_000)
    parser.add_argument("--what", choices=("put", "sign"), default="put")
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    callgrind.add_arguments(parser)
    args = parser.parse_args()
    if args.inside:
        measure(args.endpoint, args.what, args.count, args.bytes)
        return
    with tempfile.TemporaryDirectory(prefix="kanal-count-put-") as state, EmbeddedS3(
            Path(state) / "s3", access_key=ACCESS, secret_key=SECRET) as s3:
        ArchiveStore(endpoint_url=s3.endpoint_url, bucket=BUCKET, access_key=ACCESS,
                     secret_key=SECRET).ensure_bucket()
        total = count_instructions(s3.endpoint_url, args.what, args.count, args.bytes,
                                   args.keep)
    print(f"{args.what}: {total:,} instructions for {args.count}, "
          f"{total // args.count:,} per {args.what}")


if __name__ == "__main__":
    main()
