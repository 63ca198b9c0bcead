"""boto3 and the `minio` SDK side by side on the archive's hot path, against the embedded
SeaweedFS: client CPU per put (object-lock retention headers), per head, and what reusing
the connection saves.

    python load_tests/bench_s3_clients.py [--size 400 | --quick] [--bytes 60000]

One embedded SeaweedFS (archive.embedded, with an identity) and one Object Lock bucket.
Each client puts `--size` objects of `--bytes` random bytes with what `ArchiveStore.put`
sends: 12 user metadata keys, `x-amz-checksum-sha256`, COMPLIANCE retention until a date,
and (where the client can send it) `If-None-Match: *`, the conditional write that keeps a
key immutable. Then it HEADs every object. Reported per operation: CPU ms of this process
(time.process_time: the client's signing, hashing, header building and HTTP parsing; the
server's CPU is not in it), wall ms, and TCP connections opened (urllib3
HTTPConnection._new_conn calls: both clients use urllib3).

Variants:
- boto3, one client (ArchiveStore's configuration), put_object with every header;
- minio, one client, `put_object(..., retention=Retention(COMPLIANCE, ...))`: its public
  API has no If-None-Match (nor any conditional put), so this put is *not* the archive's
  conditional write; `x-amz-checksum-sha256` goes in as a header through `metadata`;
- minio `_put_object` (private API) with the full header set including If-None-Match:
  the like-for-like cost, shown to separate the SDK's cost from the missing feature;
- the archive's own put (archive.put_request: the same request signed by botocore's signer
  and sent over the boto3 client's connections, without `put_object`'s machinery, without
  `Expect: 100-continue`, payload UNSIGNED with the signed checksum), bare and through
  `ArchiveStore.put` (which adds its sha256, metadata encoding and its bounded threads);
- both again with a new client per operation: the cost of not reusing connections.
The server's CPU per put is reported per variant as well (`server_cpu_ms_per_op`, read from
/proc for the embedded SeaweedFS).
Operations run one at a time in one thread, so CPU per operation is the client's own.
Writes load_tests/results/s3-clients.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.embedded import EmbeddedS3  # noqa: E402
from archive.metadata import encode_metadata  # noqa: E402
from archive.put_request import put_headers  # noqa: E402
from archive.store import ArchiveStore  # noqa: E402

BUCKET = "bench-clients"
ACCESS, SECRET = "benchaccesskey", "benchsecretkey-0123456789"

_connects = 0
import urllib3.connection  # noqa: E402

_new_conn = urllib3.connection.HTTPConnection._new_conn


def _counting_new_conn(self):
    global _connects
    _connects += 1
    return _new_conn(self)


urllib3.connection.HTTPConnection._new_conn = _counting_new_conn  # both clients use urllib3


def metadata(n: int) -> dict[str, str]:
    """The user metadata a document's object carries (server.documents._object_metadata)."""
    return {
        "tenant": "bench", "customer-id": f"{30000000 + n}", "document-id": f"01JBENCH{n:018d}",
        "kind": "invoice", "layout": "card-invoice@2.0.0", "locale": "nb-NO",
        "created-at": "2026-11-30T05:00:00+00:00", "input-sha256": "ab" * 32,
        "idempotency-key": "", "channel-plan": "print,sms", "corrects-document-id": "",
        "locale-decision": "", "channel": "print", "pages": "2",
        "facts": '{"engine":"typst","engine_version":"0.14.2"}',
    }


_server_pid: int | None = None
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu_seconds() -> float:
    if _server_pid is None:
        return 0.0
    fields = Path(f"/proc/{_server_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime + stime


def measure(operation: Callable[[int], object], count: int) -> dict[str, float]:
    global _connects
    _connects = 0
    server = server_cpu_seconds()
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(count):
        operation(n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = server_cpu_seconds() - server
    return {"cpu_ms_per_op": round(cpu * 1000 / count, 3),
            "server_cpu_ms_per_op": round(server * 1000 / count, 3),
            "wall_ms_per_op": round(wall * 1000 / count, 3),
            "connections_opened": _connects, "operations": count}


def boto3_client(endpoint: str, **config: object):
    store = ArchiveStore(endpoint_url=endpoint, bucket=BUCKET, access_key=ACCESS,
                         secret_key=SECRET)
    client = store._client  # the archive's own client configuration
    if config:
        import boto3
        from botocore.config import Config

        client = boto3.session.Session(ACCESS, SECRET, region_name="us-east-1").client(
            "s3", endpoint_url=endpoint, config=client.meta.config.merge(Config(**config)))
    return client


def minio_client(endpoint: str):
    from minio import Minio

    host = endpoint.removeprefix("http://")
    return Minio(host, access_key=ACCESS, secret_key=SECRET, secure=False, region="us-east-1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=400, help="objects per variant")
    parser.add_argument("--quick", action="store_true", help="60 objects per variant")
    parser.add_argument("--bytes", type=int, default=60_000, help="object size (a PDF ~60 KB)")
    args = parser.parse_args()
    count = 60 if args.quick else args.size
    from minio.commonconfig import COMPLIANCE
    from minio.retention import Retention

    body = os.urandom(args.bytes)
    digest = hashlib.sha256(body).digest()
    checksum = base64.b64encode(digest).decode()
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    result: dict[str, object] = {"objects": count, "bytes": args.bytes}
    with tempfile.TemporaryDirectory(prefix="kanal-s3-clients-") as state, EmbeddedS3(
            Path(state) / "s3", access_key=ACCESS, secret_key=SECRET) as s3:
        global _server_pid
        _server_pid = s3.pid
        endpoint = s3.endpoint_url
        store = ArchiveStore(endpoint_url=endpoint, bucket=BUCKET, access_key=ACCESS,
                             secret_key=SECRET)
        store.ensure_bucket()
        boto, mc = boto3_client(endpoint), minio_client(endpoint)

        def boto_put(client, key: str, n: int) -> None:
            client.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="application/pdf",
                              Metadata=encode_metadata(metadata(n), digest.hex()),
                              ChecksumSHA256=checksum, IfNoneMatch="*",
                              ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)

        def minio_put(client, key: str, n: int) -> None:
            headers = {**encode_metadata(metadata(n), digest.hex()),
                       "x-amz-checksum-sha256": checksum}
            client.put_object(BUCKET, key, io.BytesIO(body), len(body),
                              content_type="application/pdf", metadata=headers,
                              retention=Retention(COMPLIANCE, until))

        def minio_private_put(client, key: str, n: int) -> None:
            from minio.helpers import genheaders

            headers = genheaders(encode_metadata(metadata(n), digest.hex()), None, None,
                                 Retention(COMPLIANCE, until), False)
            headers.update({"Content-Type": "application/pdf", "If-None-Match": "*",
                            "x-amz-checksum-sha256": checksum})
            client._put_object(BUCKET, key, body, headers)

        def signed_put(key: str, n: int) -> None:  # archive.put_request, as the store sends it
            store._signed_put(BUCKET, key, body, put_headers(
                media_type="application/pdf", metadata=encode_metadata(metadata(n), digest.hex()),
                checksum_sha256=checksum, retain_until=until, legal_hold=False))

        def store_put(key: str, n: int) -> None:
            store.put(key, body, media_type="application/pdf", metadata=metadata(n),
                      retain_until=until)

        for warm in range(3):  # connections, credentials, endpoint resolution
            boto_put(boto, f"warm/boto-{warm}", warm)
            minio_put(mc, f"warm/minio-{warm}", warm)
            minio_private_put(mc, f"warm/minio-private-{warm}", warm)
            signed_put(f"warm/signed-{warm}", warm)
            store_put(f"warm/store-{warm}", warm)
        print("puts ...", file=sys.stderr)
        result["boto3_put"] = measure(lambda n: boto_put(boto, f"b/{n}", n), count)
        tuned = boto3_client(endpoint, parameter_validation=False)
        boto_put(tuned, "warm/tuned", 0)
        result["boto3_put_no_parameter_validation"] = measure(
            lambda n: boto_put(tuned, f"t/{n}", n), count)
        result["minio_put_public_no_if_none_match"] = measure(
            lambda n: minio_put(mc, f"m/{n}", n), count)
        result["minio_put_private_full_headers"] = measure(
            lambda n: minio_private_put(mc, f"p/{n}", n), count)
        result["archive_signed_put"] = measure(lambda n: signed_put(f"s/{n}", n), count)
        result["archive_store_put"] = measure(lambda n: store_put(f"a/{n}", n), count)
        result["boto3_put_again"] = measure(  # the first variant again: drift over the run
            lambda n: boto_put(boto, f"b2/{n}", n), count)
        print("heads ...", file=sys.stderr)
        result["boto3_head"] = measure(
            lambda n: boto.head_object(Bucket=BUCKET, Key=f"b/{n}"), count)
        result["minio_head"] = measure(lambda n: mc.stat_object(BUCKET, f"m/{n}"), count)
        print("a new client per operation ...", file=sys.stderr)
        few = max(count // 10, 10)
        result["boto3_put_new_client_each"] = measure(
            lambda n: boto_put(boto3_client(endpoint), f"bn/{n}", n), few)
        result["minio_put_new_client_each"] = measure(
            lambda n: minio_private_put(minio_client(endpoint), f"mn/{n}", n), few)
        refused = 0
        try:
            boto_put(boto, "b/0", 0)
        except Exception as exc:  # noqa: BLE001 - 412: the key is taken
            refused = "PreconditionFailed" in str(exc) or "412" in str(exc)
        result["boto3_second_put_refused_412"] = bool(refused)
    b, m = result["boto3_put"], result["minio_put_private_full_headers"]
    a = result["archive_signed_put"]
    result["ratios"] = {
        "put_cpu_boto3_over_minio": round(b["cpu_ms_per_op"] / m["cpu_ms_per_op"], 2),
        "put_cpu_archive_signed_over_boto3": round(a["cpu_ms_per_op"] / b["cpu_ms_per_op"], 2),
        "put_cpu_archive_signed_over_minio": round(a["cpu_ms_per_op"] / m["cpu_ms_per_op"], 2),
        "head_cpu_boto3_over_minio": round(result["boto3_head"]["cpu_ms_per_op"]
                                           / result["minio_head"]["cpu_ms_per_op"], 2),
        "boto3_put_cpu_new_client_over_reused": round(
            result["boto3_put_new_client_each"]["cpu_ms_per_op"] / b["cpu_ms_per_op"], 1),
        "minio_put_cpu_new_client_over_reused": round(
            result["minio_put_new_client_each"]["cpu_ms_per_op"] / m["cpu_ms_per_op"], 1),
    }
    result["load_average"] = os.getloadavg()
    out = ROOT / "load_tests" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "s3-clients.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
