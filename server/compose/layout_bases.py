"""A layout version made from an older version of the same layout: `base = "N.N.N"`.

A version folder is immutable once used, so a fix to a layout's data contract alone (its
schema, a manifest setting) is a new version; copying the whole folder for it would repeat
every template, stylesheet, label and sample. A *based* version holds only what it changes:

    layouts/card-invoice/2.1.0/
        manifest.toml      id, version, base = "2.0.0", and the keys it changes (a table
                           merges into the base's table key by key; any other value, a list
                           included, replaces the base's)
        schema-patch.json  optional: an RFC 7386 JSON Merge Patch of the base's schema
                           (`null` removes a keyword); or schema.json, a whole schema of its
                           own; neither: the base's schema
        README.md          optional: why the version exists

Every other file (templates, stylesheets, labels.toml, assets, samples) is the base's: the
`Layout.path` of a based version is its base's folder (`Version.files`), so the templates,
the engines' fetchers and the samples read the very files the base renders with. They cannot
change under it, since the base's folder is immutable too. A based version cannot have files
of its own besides those above (refused at load): one that changes a template is a whole
folder. The base must be an older version of the same layout, and may itself be based.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST, SCHEMA, SCHEMA_PATCH = "manifest.toml", "schema.json", "schema-patch.json"
# what a based version's folder may hold; the rest is its base's
OWN_FILES = frozenset({MANIFEST, SCHEMA, SCHEMA_PATCH, "README.md"})


class BasedVersionError(Exception):
    """A version folder's manifest, schema or `base` is unreadable or wrong (the message
    names the file); `server.compose.layouts` reports it as a LayoutError."""


@dataclass(frozen=True, slots=True)
class Version:
    """A version folder as it composes: its manifest and schema with its base's merged in,
    and `files`, the folder its templates, assets, labels and samples are read from (its
    own, or, for a based version, its base's)."""

    manifest: dict[str, Any]
    schema: dict[str, Any]
    files: Path


def read_version(path: Path) -> Version:
    """The version folder `path` (`layouts/<id>/<version>/`) with its bases resolved.
    Raises BasedVersionError."""
    manifest = _read(path / MANIFEST, tomllib.loads, tomllib.TOMLDecodeError)
    base = manifest.get("base")
    if base is None:
        return Version(manifest, _read(path / SCHEMA, json.loads, ValueError), path)
    where = f"{path / MANIFEST}: base {base!r}"
    if not (isinstance(base, str) and _is_version(base) and _is_version(path.name)):
        raise BasedVersionError(f"{where} is not a version N.N.N")
    if _key(base) >= _key(path.name):
        raise BasedVersionError(f"{where} must be an older version than {path.name}")
    base_path = path.parent / base
    if not (base_path / MANIFEST).is_file():
        raise BasedVersionError(f"{where}: there is no {path.parent.name}/{base}/")
    stray = sorted(p.name for p in path.iterdir() if p.name not in OWN_FILES)
    if stray:
        raise BasedVersionError(
            f"{path}: a based version takes every file but {', '.join(sorted(OWN_FILES))} "
            f"from its base ({base}); {', '.join(stray)} would not be used (a version that "
            f"changes them is a whole folder)")
    if (path / SCHEMA).is_file() and (path / SCHEMA_PATCH).is_file():
        raise BasedVersionError(f"{path}: {SCHEMA} or {SCHEMA_PATCH}, not both")
    parent = read_version(base_path)
    if manifest.get("id", parent.manifest.get("id")) != parent.manifest.get("id"):
        raise BasedVersionError(f"{where} is a version of {parent.manifest.get('id')!r}")
    if (path / SCHEMA).is_file():
        schema = _read(path / SCHEMA, json.loads, ValueError)
    elif (path / SCHEMA_PATCH).is_file():
        schema = merge_patch(parent.schema,
                             _read(path / SCHEMA_PATCH, json.loads, ValueError))
    else:
        schema = parent.schema
    return Version(merge_tables(parent.manifest, manifest), schema, parent.files)


def merge_tables(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """TOML tables merged: `own`'s keys win; a table in both merges key by key."""
    merged = dict(base)
    for key, value in own.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            value = merge_tables(merged[key], value)
        merged[key] = value
    return merged


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: `patch` applied to `target` (neither is changed): an
    object merges member by member, `null` removes a member, anything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _read(path: Path, parse: Any, error: type[Exception]) -> dict[str, Any]:
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, error) as exc:
        raise BasedVersionError(f"{path}: {exc}") from exc


def _is_version(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 3 and all(p.isdigit() for p in parts)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))
