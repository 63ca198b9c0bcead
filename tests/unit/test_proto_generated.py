"""The committed generated code is exactly what `python proto/generate.py` makes."""

import importlib.util
from pathlib import Path

PROTO = Path(__file__).resolve().parents[2] / "proto"


def test_generated_code_is_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location("generate", PROTO / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    generate.generate(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*.py*"))
    committed = sorted(p.relative_to(PROTO) for p in PROTO.rglob("*_pb2*.py*"))
    assert fresh == committed and fresh
    for path in fresh:
        assert (tmp_path / path).read_bytes() == (PROTO / path).read_bytes(), (
            f"{path} is stale: run `python proto/generate.py` and commit the result")
