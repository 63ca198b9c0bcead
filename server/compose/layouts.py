"""Layout registry: `layouts/<id>/<version>/` folders -> immutable `Layout` objects.

A layout version is a folder holding `manifest.toml`, `schema.json` (JSON Schema 2020-12 of
the input data), Jinja2 templates per channel, CSS, assets and a realistic `sample.json`.
A version folder is never edited once documents were made with it: archived documents
record `layout_id@version` so they can be re-rendered exactly. A new version is a new folder:
a whole one, or a *based* one (`base = "2.0.0"`) holding only the manifest keys and the
schema changes it makes, every other file its base's (server/compose/layout_bases.py).

Manifest (TOML)::

    id = "card-invoice"
    version = "1.0.0"
    kind = "invoice"                 # server.compose.model.DocumentKind
    builder = "card_statement"       # server/compose/builders/<builder>.py
    title = "Kredittkortfaktura"
    locales = ["nb-NO", "sv-SE"]
    default_locale = "nb-NO"
    channels = ["print"]             # channels this layout can render; the default plan
    samples = { "nb-NO" = "sample.json", "de-DE" = "samples/de-DE.json" }  # per locale

    [[locale.rules]]                 # optional: how the locale follows the data when the
    region = "$.currency"            # request names none (server/compose/locales.py)

    [print]
    engine = "typst"                 # or "weasyprint" (the default): which template renders
    typst_template = "print.typ"     # Typst: reads the context as JSON, fonts in `fonts`
    fonts = ["../../_shared/fonts/inter-4.1-ttf", "../../_shared/fonts/noto-sans-2.004", ...]
                                     # the font folders both engines draw with, in fallback
                                     # order (`typst_fonts`: the older name); the glyph check
                                     # reads them (server/channels/glyphs.py)
    text_area_mm = [18, 5, 174, 287] # where text may stand; window_mm: the window address
    window_mm = [18, 47, 99, 29]     # (x, y, w, h from the paper's corner; preflight.py)
    template = "print.html"          # WeasyPrint: Jinja2 HTML + stylesheets
    stylesheets = ["print.css"]
    pdf_standards = ["a-3a", "ua-1"] # default ["a-3b"]
    margins_mm = [14, 18, 20, 18]    # the templates' page margins, [top, right, bottom, left]:
                                     # the print area must miss every profile's mark zones
    envelope = "C5"
    address_field = "by-country"     # optional: address block and envelope follow the
                                     # destination (server/compose/countries.toml)
    duplex = false                   # false: simplex sheets (blank backs) on a duplex line
    slip_page = -1                   # a tear-off slip's page: a sheet front, blank back
    replace_unprintable = ["$.transactions[*].description"]
                                     # fields printed without what the fonts cannot draw
                                     # (emoji dropped, other scripts as "?"), not refused

    [email]                          # optional: subject is a Jinja template over the context
    subject = "Faktura {{ invoice.number }}"
    ...

Shared brand files live in `layouts/_shared/` (versioned folders such as `fjordbank-1/`, never
changed in place): stylesheets listed as `"../../_shared/fjordbank-1/letter.css"` in
`[print] stylesheets`, templates reached as `_shared/fjordbank-1/...` from a layout's templates
(see `Layout.templates`).

Loading parses and checks everything up front (manifest fields, schema validity, that the
templates exist), so a broken layout fails at server start, not on a customer's document.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jinja2
from jsonschema import Draft202012Validator
from markupsafe import Markup

from server.compose.fast_schema import compile_fast_check
from server.compose.layout_bases import BasedVersionError, read_version
from server.compose.locales import LocaleRule, LocaleRuleError, parse_locale_rules, spelled_as
from server.compose.model import Channel, DocumentKind
from server.compose.schema_numbers import numeric_field
from server.errors import NotFound
from server.printing.profile_rules import PAPER_SIZES_MM
from server.printing.profiles import Rect
from server.printing.zones import MarkZone, all_mark_zones, zones_reached

DEFAULT_LAYOUTS_DIR = Path(__file__).resolve().parents[2] / "layouts"
# Shared brand assets and templates: layouts/_shared/ (fonts/, fjordbank-N/).
SHARED_DIR = "_shared"


def isolate(text: object) -> Markup | str:
    """`{{ customer.name | bdi }}`: a value holding right-to-left letters (Unicode bidi
    class R or AL: Hebrew, Arabic) wrapped in `<bdi>` (HTML, "the bdi element"; UAX #9
    isolates), so the punctuation and digits beside it keep their places in a
    left-to-right sentence ("محمد 2," would otherwise show its comma and digit out of
    order). Other text is returned as it is (escaped by autoescape as before)."""
    value = str(text)
    if any(unicodedata.bidirectional(c) in ("R", "AL") for c in value):
        return Markup("<bdi>{}</bdi>").format(value)
    return value


def line_breaks(text: object) -> Markup:
    """`{{ legal_text | breaks }}`: free text in HTML with its line breaks kept as `<br>`
    (each line escaped; CRLF, CR and LF alike, and U+2028 LINE SEPARATOR, as
    `str.splitlines` splits). For the e-mail: mail clients ignore `white-space: pre-line`
    where they render with Word (Outlook on Windows), while every one shows `<br>`."""
    return Markup("<br>\n").join(str(text).splitlines())


class LayoutError(Exception):
    """A layout folder is broken (a deployment error, reported at load time)."""


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True, eq=False)
class Layout:
    id: str
    version: str
    kind: DocumentKind
    builder: str
    title: str
    locales: tuple[str, ...]
    default_locale: str
    channels: tuple[Channel, ...]
    # the folder of its templates, assets, labels and samples: its own, or a based
    # version's base's (server/compose/layout_bases.py)
    path: Path
    schema: Mapping[str, Any]
    manifest: Mapping[str, Any] = field(repr=False)
    # labels.toml: the layout's fixed text, one table per locale (read at load time so
    # composing never touches the disk)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    # `[[locale.rules]]`: how the locale follows the data (server/compose/locales.py)
    locale_rules: tuple[LocaleRule, ...] = field(default=(), repr=False)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def section(self, name: str) -> Mapping[str, Any]:
        """A channel's manifest section, e.g. `section("print")["template"]`."""
        return self.manifest.get(name, {})

    @cached_property
    def validator(self) -> Draft202012Validator:
        from server.compose.schema_regex import DataValidator  # ECMA-262 `pattern`

        return DataValidator(self.schema)

    @cached_property
    def fast_validator(self) -> Callable[[Any], bool] | None:
        """A compiled yes/no check of the data against the schema, once per layout and
        process (server.compose.fast_schema); None when the schema uses a keyword it does
        not take. `validator` still gives the errors of data it refuses."""
        return compile_fast_check(self.schema)

    @cached_property
    def numeric_field(self) -> Callable[[str], bool]:
        """Whether a JSON path (`$.lines[0].quantity`) of this layout's data is a number by
        its schema (server.compose.schema_numbers), worked out once per layout."""
        return numeric_field(self.schema)

    @property
    def shared_path(self) -> Path:
        """`layouts/_shared/`: the versioned brand assets and partials every layout may use."""
        return self.path.parents[1] / SHARED_DIR

    @cached_property
    def templates(self) -> jinja2.Environment:
        """The layout's own Jinja2 environment: templates load from its folder, and names
        starting with `_shared/` from `layouts/_shared/` (`{% extends
        "_shared/fjordbank-1/email-base.html" %}`, `{% from ... import ... %}`), nothing
        else (the loaders refuse `..`). HTML is autoescaped, and an undefined variable is an
        error, not an empty string. Filter `bdi`: a name in running text (`isolate`); `breaks`: free
        text whose line breaks the HTML keeps (`line_breaks`)."""
        environment = jinja2.Environment(
            loader=jinja2.ChoiceLoader([
                jinja2.PrefixLoader({SHARED_DIR: jinja2.FileSystemLoader(self.shared_path)}),
                jinja2.FileSystemLoader(self.path),
            ]),
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        environment.filters["bdi"] = isolate
        environment.filters["breaks"] = line_breaks
        return environment

    def labels_for(self, locale: str) -> Mapping[str, str]:
        if locale not in self.labels:
            raise LayoutError(f"{self.ref}: labels.toml has no [{locale!r}] table")
        return self.labels[locale]

    @property
    def sample_locales(self) -> tuple[str, ...]:
        """The locales with a sample of their own (the manifest's `samples` table), in its
        order."""
        return tuple(self.manifest.get("samples", {}))

    def sample_data(self, locale: str | None = None) -> str:
        """The layout's sample for `locale` (the manifest's `samples` table: one realistic
        sample per country, `samples/<locale>.json`), else `sample.json`."""
        samples = self.manifest.get("samples", {})
        name = samples.get(spelled_as(locale or "", samples), "sample.json")  # "en-gb": en-GB's
        return (self.path / name).read_text(encoding="utf-8")


def load_layout(path: Path, mark_zones: Sequence[MarkZone] | None = None) -> Layout:
    """Read and check one layout version folder. `mark_zones` are the print profiles'
    OMR and DataMatrix zones its print area must stay out of (default: every builtin
    profile's, `server.printing.zones.all_mark_zones`)."""
    manifest_path = path / "manifest.toml"
    try:  # a based version (`base = "2.0.0"`): its base's files (server/compose/layout_bases.py)
        version_read = read_version(path)
    except BasedVersionError as exc:
        raise LayoutError(str(exc)) from exc
    manifest, schema, files = version_read.manifest, version_read.schema, version_read.files

    def need(key: str) -> Any:
        if key not in manifest:
            raise LayoutError(f"{manifest_path}: missing {key!r}")
        return manifest[key]

    try:
        kind = DocumentKind(need("kind"))
        channels = tuple(Channel(c) for c in need("channels"))
    except ValueError as exc:
        raise LayoutError(f"{manifest_path}: {exc}") from exc
    layout_id, version = need("id"), need("version")
    if (path.parent.name, path.name) != (layout_id, version):
        raise LayoutError(f"{path}: folder must be layouts/{layout_id}/{version}/")
    try:
        _version_key(version)
    except ValueError as exc:
        raise LayoutError(f"{manifest_path}: version {version!r} is not N.N.N") from exc

    Draft202012Validator.check_schema(schema)
    locales = tuple(need("locales"))
    default_locale = manifest.get("default_locale", locales[0])
    if Channel.EMAIL in channels and not str(manifest.get("email", {}).get("subject", "")).strip():
        raise LayoutError(f"{manifest_path}: an email layout needs [email] subject")
    labels: dict[str, Mapping[str, str]] = {}
    if (files / "labels.toml").is_file():
        try:
            table = tomllib.loads((files / "labels.toml").read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise LayoutError(f"{files / 'labels.toml'}: {exc}") from exc
        labels = {loc: MappingProxyType(dict(text)) for loc, text in table.items()}
        missing = [loc for loc in locales if loc not in labels]
        if missing:
            raise LayoutError(f"{files / 'labels.toml'}: no labels for {', '.join(missing)}")
    try:
        locale_rules = parse_locale_rules(manifest, locales)
    except LocaleRuleError as exc:
        raise LayoutError(f"{manifest_path}: {exc}") from exc
    data_locales = schema.get("properties", {}).get("locale", {}).get("enum")
    if data_locales is not None and set(data_locales) != set(locales):
        raise LayoutError(f"{path / 'schema.json'}: the `locale` field's enum must be the "
                          f"manifest's locales {list(locales)}")
    for channel in channels:
        section = manifest.get(channel.value, {})
        for template in [section.get("template"), *section.get("templates", ())]:
            if template and not (files / template).is_file():
                raise LayoutError(f"{files}: {channel} template {template!r} is missing")
    _check_print_engine(files, manifest.get("print", {}))
    _check_print_sides(path, manifest.get("print", {}))
    _check_replaced_fields(path, manifest.get("print", {}))
    if Channel.PRINT in channels:
        _check_print_area(path, version, manifest.get("print", {}), mark_zones)
    return Layout(
        id=layout_id,
        version=version,
        kind=kind,
        builder=need("builder"),
        title=need("title"),
        locales=locales,
        default_locale=default_locale,
        channels=channels,
        path=files,
        schema=schema,
        manifest=manifest,
        labels=MappingProxyType(labels),
        locale_rules=locale_rules,
    )


PRINT_ENGINES = {"weasyprint": "template", "typst": "typst_template"}
PDF_STANDARDS = frozenset({"a-2a", "a-2b", "a-3a", "a-3b", "ua-1"})


def _check_print_engine(path: Path, section: Mapping[str, Any]) -> None:
    """`[print] engine` names a known engine whose template exists; `pdf_standards` are
    ones both engines write, PDF/UA-1 beside PDF/A-2 or -3 (ISO 14289-1 needs a PDF/A
    that allows tags; -1 does not); Typst fonts come from the layout or `_shared/`."""
    if not section:
        return
    engine = section.get("engine", "weasyprint")
    if engine not in PRINT_ENGINES:
        raise LayoutError(f"{path}: [print] engine {engine!r} is not one of "
                          f"{', '.join(PRINT_ENGINES)}")
    for name, key in PRINT_ENGINES.items():
        template = section.get(key)
        if (name == engine or template) and not (template and (path / template).is_file()):
            raise LayoutError(f"{path}: [print] {key} {template!r} ({name}) is missing")
    standards = set(section.get("pdf_standards", ()))
    if standards - PDF_STANDARDS:
        raise LayoutError(f"{path}: [print] pdf_standards {sorted(standards - PDF_STANDARDS)} "
                          f"unknown; known: {', '.join(sorted(PDF_STANDARDS))}")
    if "ua-1" in standards and not any(s.startswith("a-") for s in standards):
        raise LayoutError(f"{path}: [print] pdf_standards: ua-1 needs a PDF/A-2 or -3 beside it")
    # symlinked layout folders (a test's or a deployment's selection) resolve elsewhere
    allowed = (path.resolve(), (path.parents[1] / SHARED_DIR).resolve(),
               path.resolve().parents[1] / SHARED_DIR)
    key = "fonts" if "fonts" in section else "typst_fonts"
    for folder in section.get(key, ()):
        resolved = (path / folder).resolve()
        if not resolved.is_dir() or not any(resolved.is_relative_to(a) for a in allowed):
            raise LayoutError(f"{path}: [print] {key} {folder!r} is not a folder in the "
                              f"layout or {SHARED_DIR}/")
    for key, size in (("text_area_mm", 4), ("window_mm", 4)):
        box = section.get(key)
        if box is not None and (len(box) != size or not all(
                isinstance(v, int | float) and v >= 0 for v in box)):
            raise LayoutError(f"{path}: [print] {key} must be [x, y, width, height] in mm")


# The fonts of a layout that names none (the 1.0.0 versions): Inter 4.1, which their
# stylesheets declare (as WOFF2; these are the same faces as TrueType).
DEFAULT_FONT_FOLDERS = ("../../_shared/fonts/inter-4.1-ttf",)


def font_folders(layout: Layout) -> tuple[Path, ...]:
    """The folders of the fonts a layout's print templates draw with, in fallback order:
    `[print] fonts` (or its older name `typst_fonts`), else `DEFAULT_FONT_FOLDERS`."""
    section = layout.section("print")
    folders = section.get("fonts") or section.get("typst_fonts") or DEFAULT_FONT_FOLDERS
    return tuple((layout.path / folder).resolve() for folder in folders)


def _check_print_sides(path: Path, section: Mapping[str, Any]) -> None:
    """`duplex` is a boolean; `slip_page` (the page holding a tear-off slip, which prints as
    a sheet front with a blank back) is a page number, 1-based or negative from the end."""
    if not isinstance(section.get("duplex", False), bool):
        raise LayoutError(f"{path}: [print] duplex must be true or false")
    slip = section.get("slip_page")
    if slip is not None and (not isinstance(slip, int) or isinstance(slip, bool) or slip == 0):
        raise LayoutError(f"{path}: [print] slip_page must be a page number, 1-based or "
                          f"negative from the end (-1 = the last page), not {slip!r}")


def _check_replaced_fields(path: Path, section: Mapping[str, Any]) -> None:
    """`replace_unprintable` is a list of JSON paths of the data (`$.a.b`, `[*]` for any
    index), the fields server/channels/glyphs.py may print without what no font draws."""
    fields = section.get("replace_unprintable", [])
    if not isinstance(fields, list) or not all(
            isinstance(f, str) and re.fullmatch(r"\$(\.[A-Za-z_][\w-]*(\[\*\])?)+", f)
            for f in fields):
        raise LayoutError(f"{path}: [print] replace_unprintable must be a list of JSON paths "
                          f"of the data such as \"$.transactions[*].description\", not "
                          f"{fields!r}")


def print_area(section: Mapping[str, Any]) -> Rect | None:
    """Where a layout may put ink on the A4 sheet, from `[print] margins_mm` ([top, right,
    bottom, left] as in CSS `@page { margin }` and Typst `set page(margin:)`): the strip
    between the side margins, full height (the running header and the footer sit in the
    top and bottom margins, within the same strip). None when the manifest has no margins."""
    margins = section.get("margins_mm")
    if margins is None:
        return None
    _, right, _, left = margins
    width, height = PAPER_SIZES_MM["A4"]
    return Rect(left, 0.0, width - left - right, height)


def _check_print_area(path: Path, version: str, section: Mapping[str, Any],
                      mark_zones: Sequence[MarkZone] | None) -> None:
    """A layout whose fixed content can reach a print profile's OMR or DataMatrix zone
    would lose ink under the marks on every sheet: refused at load, naming the zone.
    Layouts from 2.0.0 on must declare `[print] margins_mm`; the frozen 1.0.0 versions
    predate it (their pages are still checked when rendered, server.channels.print_zones)."""
    margins = section.get("margins_mm")
    if margins is None:
        if _version_key(version) >= (2,):
            raise LayoutError(f"{path}: [print] margins_mm is required ([top, right, bottom, "
                              f"left] in mm, as the templates' page margins)")
        return
    if (not isinstance(margins, list) or len(margins) != 4
            or not all(isinstance(m, int | float) and not isinstance(m, bool) and m >= 0
                       for m in margins)):
        raise LayoutError(f"{path}: [print] margins_mm must be [top, right, bottom, left] in "
                          f"mm, not {margins!r}")
    area = print_area(section)
    assert area is not None
    if mark_zones is None:
        mark_zones = all_mark_zones()
    reached = zones_reached(area, mark_zones)
    if reached:
        raise LayoutError(
            f"{path}: [print] margins_mm {margins}: the print area (x {area.x:g}-"
            f"{area.right:g} mm) reaches {reached[0]}; the marks would be painted over "
            f"the layout's content. Widen the side margins.")


class LayoutRegistry:
    """Every layout version below a root folder, loaded once at start. Each print layout's
    area is checked against `mark_zones` (default: every builtin print profile's)."""

    def __init__(self, root: Path = DEFAULT_LAYOUTS_DIR,
                 mark_zones: Sequence[MarkZone] | None = None):
        # absolute: the engines give layout folders to their fetchers as file URIs
        self.root = root = Path(root).resolve()
        self._versions: dict[str, dict[str, Layout]] = {}
        if mark_zones is None:
            mark_zones = all_mark_zones()
        for manifest in sorted(root.glob("*/*/manifest.toml")):
            layout = load_layout(manifest.parent, mark_zones)
            self._versions.setdefault(layout.id, {})[layout.version] = layout
        if not self._versions:
            raise LayoutError(f"no layouts found below {root}")

    def get(self, layout_id: str, version: str | None = None) -> Layout:
        """The pinned version, or the newest one. Unknown id or version -> NotFound."""
        versions = self._versions.get(layout_id)
        if not versions:
            raise NotFound(f"unknown layout {layout_id!r}")
        if not version:
            return versions[max(versions, key=_version_key)]
        if version not in versions:
            known = ", ".join(sorted(versions, key=_version_key))
            raise NotFound(f"layout {layout_id!r} has no version {version!r} (known: {known})")
        return versions[version]

    def versions(self, layout_id: str) -> list[str]:
        self.get(layout_id)
        return sorted(self._versions[layout_id], key=_version_key)

    def latest(self) -> list[Layout]:
        return [self.get(layout_id) for layout_id in sorted(self._versions)]

    def every_version(self) -> list[Layout]:
        """Every loaded layout version, by id then version."""
        return [versions[v] for _, versions in sorted(self._versions.items())
                for v in sorted(versions, key=_version_key)]
