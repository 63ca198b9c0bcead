"""A based layout version (`base = "2.0.0"`, server/compose/layout_bases.py): a new version
that changes the manifest or the schema only and takes every other file from its base,
instead of a copy of the whole folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.compose.layout_bases import merge_patch, merge_tables
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, LayoutError, LayoutRegistry

NATIONAL_ID = ("$defs", "customer", "properties", "national_id")
PATCH = {"$defs": {"customer": {"properties": {"national_id": {
    "pattern": None, "description": "checked by the scheme of its country"}}}}}


def at(schema, path):
    for key in path:
        schema = schema[key]
    return schema


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """layouts/ with welcome-letter 2.0.0 (the shipped folder) and a based 2.1.0."""
    (tmp_path / "_shared").symlink_to(DEFAULT_LAYOUTS_DIR / "_shared")
    (tmp_path / "welcome-letter").mkdir()
    (tmp_path / "welcome-letter" / "2.0.0").symlink_to(
        DEFAULT_LAYOUTS_DIR / "welcome-letter" / "2.0.0")
    based = tmp_path / "welcome-letter" / "2.1.0"
    based.mkdir()
    (based / "manifest.toml").write_text(
        'id = "welcome-letter"\nversion = "2.1.0"\nbase = "2.0.0"\ntitle = "Velkommen"\n'
        '[print]\nduplex = true\n', encoding="utf-8")
    (based / "schema-patch.json").write_text(json.dumps(PATCH), encoding="utf-8")
    return tmp_path


def test_a_based_version_reads_its_base_s_files_with_its_own_manifest_keys_and_schema(root):
    registry = LayoutRegistry(root)
    base, based = registry.get("welcome-letter", "2.0.0"), registry.get("welcome-letter")
    assert based.ref == "welcome-letter@2.1.0"
    assert based.path == base.path  # templates, assets, labels, samples: the base's
    assert based.sample_data() == base.sample_data()
    assert based.labels == base.labels
    assert based.templates.get_template("print.html").filename.startswith(str(base.path))
    # the manifest: its own keys win, a table merges key by key, the rest is the base's
    assert based.title == "Velkommen" and based.manifest["base"] == "2.0.0"
    assert based.section("print")["duplex"] is True
    assert {k: v for k, v in based.section("print").items() if k != "duplex"} == {
        k: v for k, v in base.section("print").items() if k != "duplex"}
    assert (based.channels, based.locales, based.builder) == (
        base.channels, base.locales, base.builder)
    # the schema: the base's with the patch applied, and nothing else changed
    assert "pattern" in at(base.schema, NATIONAL_ID)
    assert at(based.schema, NATIONAL_ID) == {
        "type": "string", "maxLength": 14, "description": "checked by the scheme of its country"}
    without = {"$defs": {"customer": {"properties": {"national_id": None}}}}
    assert merge_patch(based.schema, without) == merge_patch(base.schema, without)


def test_without_a_schema_of_its_own_a_based_version_has_its_base_s(root):
    (root / "welcome-letter" / "2.1.0" / "schema-patch.json").unlink()
    registry = LayoutRegistry(root)
    assert registry.get("welcome-letter").schema == registry.get("welcome-letter", "2.0.0").schema


@pytest.mark.parametrize("change, error", [
    (lambda v: (v / "print.html").write_text("x"),
     "a based version takes every file but README.md, manifest.toml, schema-patch.json, "
     "schema.json from its base (2.0.0); print.html would not be used"),
    (lambda v: (v / "schema.json").write_text("{}"), "schema.json or schema-patch.json, not both"),
    (lambda v: (v / "manifest.toml").write_text(
        'id = "welcome-letter"\nversion = "2.1.0"\nbase = "1.9.0"\n'),
     "base '1.9.0': there is no welcome-letter/1.9.0/"),
    (lambda v: (v / "manifest.toml").write_text(
        'id = "welcome-letter"\nversion = "2.1.0"\nbase = "2.1.0"\n'),
     "base '2.1.0' must be an older version than 2.1.0"),
    (lambda v: (v / "manifest.toml").write_text(
        'id = "welcome-letter"\nversion = "2.1.0"\nbase = "latest"\n'),
     "base 'latest' is not a version N.N.N"),
    (lambda v: (v / "manifest.toml").write_text('id = "welcome-letter"\nbase = "2.0.0"\n'),
     "folder must be layouts/welcome-letter/2.0.0/"),  # the version is its own to name
    (lambda v: (v / "schema-patch.json").write_text("{"), "schema-patch.json: Expecting"),
])
def test_a_broken_based_version_fails_at_load_naming_the_fault(root, change, error):
    change(root / "welcome-letter" / "2.1.0")
    with pytest.raises(LayoutError, match="2.1.0") as refused:
        LayoutRegistry(root)
    assert error in str(refused.value)


def test_merge_patch_is_rfc_7386():
    # RFC 7386 appendix A, a selection
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": None}})
    assert target == {"a": {"b": 1}}  # not changed in place


def test_merge_tables_merges_tables_and_replaces_the_rest():
    assert merge_tables({"a": {"x": 1, "y": [1]}, "b": 2}, {"a": {"y": [2]}, "c": 3}) == {
        "a": {"x": 1, "y": [2]}, "b": 2, "c": 3}
