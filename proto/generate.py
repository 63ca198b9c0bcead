"""Regenerate the Python gRPC code beside the .proto files: `python proto/generate.py`.

The output is committed and installs as the `kanal.v1` package; grpcio-tools is pinned in
pyproject.toml so the generated files are byte-for-byte reproducible (a test checks that).
"""

import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent


def generate(out_dir: Path = PROTO_ROOT) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.glob("kanal/v1/*.proto"))
    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    status = protoc.main([
        "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{include}",
        f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}",
        *protos,
    ])
    if status != 0:
        sys.exit(f"protoc failed with status {status}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT)
