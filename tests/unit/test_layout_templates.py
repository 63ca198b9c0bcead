"""A layout's Jinja environment: its own folder plus `_shared/...`, and nothing else."""

from dataclasses import replace

import jinja2
import pytest

from tests.layouts import shipped

LAYOUTS = shipped()


@pytest.fixture
def layout(tmp_path):
    """card-invoice's Layout moved to layouts/x/1.0.0 below tmp_path, with a _shared folder
    beside it and files outside both that templates must never reach."""
    root = tmp_path / "layouts"
    folder = root / "x" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "own.html").write_text("own {{ value }}")
    shared = root / "_shared" / "brand-1"
    shared.mkdir(parents=True)
    (shared / "macros.html").write_text(
        "{% macro hello(name) %}<b>{{ name }}</b>{% endmacro %}")
    (shared / "base.html").write_text("<p>{% block body %}{% endblock %}</p>")
    (shared / "part.html").write_text("[{{ value }}]")
    (root / "y" / "1.0.0").mkdir(parents=True)
    (root / "y" / "1.0.0" / "other.html").write_text("another layout")
    (root / "secret.txt").write_text("layouts root")
    (tmp_path / "secret.txt").write_text("outside")
    return replace(LAYOUTS.get("card-invoice"), path=folder)


def render(layout, source: str, **values) -> str:
    return layout.templates.from_string(source).render(**values)


def test_a_layout_reaches_shared_templates_by_import_extends_and_include(layout):
    assert render(layout, '{% from "_shared/brand-1/macros.html" import hello %}'
                          "{{ hello(value) }}", value="<i>") == "<b>&lt;i&gt;</b>"
    assert render(layout, '{% extends "_shared/brand-1/base.html" %}'
                          "{% block body %}{{ value }}{% endblock %}", value="a&b") \
        == "<p>a&amp;b</p>"
    assert render(layout, '{% include "_shared/brand-1/part.html" %}', value="v") == "[v]"
    assert layout.templates.get_template("own.html").render(value=1) == "own 1"


def test_shared_templates_keep_strict_undefined(layout):
    with pytest.raises(jinja2.UndefinedError):
        render(layout, '{% include "_shared/brand-1/part.html" %}')


@pytest.mark.parametrize("name", [
    "../../secret.txt",
    "../../../secret.txt",
    "../../y/1.0.0/other.html",
    "_shared/../secret.txt",
    "_shared/../../secret.txt",
    "_shared/../y/1.0.0/other.html",
    "_shared/brand-1/../../secret.txt",
    "/etc/passwd",
])
def test_no_template_name_escapes_the_layout_and_shared_folders(layout, name):
    with pytest.raises(jinja2.TemplateNotFound):
        layout.templates.get_template(name)
    with pytest.raises(jinja2.TemplateNotFound):
        render(layout, "{% include name %}", name=name)


def test_the_project_layouts_use_the_shared_partials():
    card = LAYOUTS.get("card-invoice")
    assert card.shared_path == card.path.parents[1] / "_shared"
    for name in ("letter.html", "giro-slip.html", "email-base.html"):
        assert card.templates.get_template(f"_shared/fjordbank-1/{name}")
