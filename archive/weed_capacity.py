"""Whether the embedded SeaweedFS is refusing writes for want of room, which no restart mends.

Why: the server restarts an embedded SeaweedFS whose writes keep failing (archive.embedded
`restart_soon`, archive.write_health), because after a full disk its filer refused every write
until restarted, however much room the disk had again. But while the disk is still full, or
SeaweedFS has no volume left to write to and the disk has gained no room since it started, a
restart cannot help: it only killed a process that was still serving reads, and a restart
on a full disk may not come up at all. QA 2026-12-02, the state dir on a 200 MB tmpfs:
writes failed at 99 MB used ("No writable volumes and no free volumes left" in weed.log;
`weed mini` sizes its volumes by the free disk at start); the server then restarted SeaweedFS
seven times, and with the disk full every read of an archived document failed UNAVAILABLE
for as long as no `weed` ran.

Shape: `free_bytes(data_dir)` -> bytes free on the fullest file system under `data_dir` (it
and its direct subfolders: SeaweedFS's stores may be mounts of their own); `problem(data_dir,
log_since_start, free_at_start)` -> a sentence naming the shortage, or None when a restart may
help. Linux `statvfs`; errors reading a folder leave it out.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["free_bytes", "problem"]

FULL_BYTES = 64 << 20  # a disk with less free than this (or FULL_SHARE of its size) is full
FULL_SHARE = 0.10  # ... for a small file system: a 16 MB one is full below 1.6 MB
# what SeaweedFS logs when it has no volume left to write to (weed/topology)
NO_VOLUMES = "no free volumes left"


def _usage(path: Path) -> tuple[int, int] | None:
    """(free bytes, size in bytes) of the file system holding `path`."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize


def _usages(data_dir: Path) -> list[tuple[Path, int, int]]:
    folders = [data_dir]
    with contextlib.suppress(OSError):
        folders += [child for child in data_dir.iterdir() if child.is_dir()]
    return [(folder, *usage) for folder in folders if (usage := _usage(folder)) is not None]


def free_bytes(data_dir: Path) -> int | None:
    """Bytes free on the fullest file system under `data_dir` (None if none could be read)."""
    usages = _usages(data_dir)
    return min(free for _, free, _ in usages) if usages else None


def problem(data_dir: Path, log_since_start: str, free_at_start: int | None) -> str | None:
    """Why SeaweedFS under `data_dir` cannot take writes that a restart would bring back, or
    None: the disk is full (less than FULL_BYTES or FULL_SHARE of it free), or SeaweedFS
    logged NO_VOLUMES since it started (`log_since_start`) and the disk has no more room
    than it had then (`free_at_start`, bytes)."""
    for folder, free, size in _usages(data_dir):
        if free < min(FULL_BYTES, size * FULL_SHARE):
            return (f"the disk of {folder} is full ({free / 1e6:.1f} MB free of "
                    f"{size / 1e6:.0f} MB): free space or grow it; a restart cannot help")
    if NO_VOLUMES in log_since_start.lower():
        free = free_bytes(data_dir)
        if free is not None and (free_at_start is None or free <= free_at_start * 1.05):
            return (f"SeaweedFS has no free volume left under {data_dir} ({free / 1e6:.0f} MB "
                    "free, sized when it started: weed.log 'no free volumes left'); grow the "
                    "disk: it is restarted once there is more room")
    return None
