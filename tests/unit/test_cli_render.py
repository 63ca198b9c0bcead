"""`kanal render`: a layout designer's PDF and page PNGs, without a server."""

import json
from pathlib import Path

import pytest
from PIL import Image

from server.cli import main
from tests.pdf_inspect import pages_text


def test_render_writes_the_pdf_and_a_png_per_page(tmp_path, capsys):
    assert main(["render", "card-invoice", "--out", str(tmp_path), "--dpi", "40"]) == 0
    pdf = (tmp_path / "card-invoice-nb-NO.pdf").read_bytes()
    pages = pages_text(pdf)
    pngs = sorted(tmp_path.glob("card-invoice-nb-NO-page*.png"))
    assert len(pngs) == len(pages) >= 2
    with Image.open(pngs[0]) as image:
        assert image.size == (round(210 / 25.4 * 40), round(297 / 25.4 * 40))
    assert f"{len(pages)} page(s)" in capsys.readouterr().out


def test_render_reports_an_unknown_layout(tmp_path, capsys):
    assert main(["render", "no-such-layout", "--out", str(tmp_path)]) == 2
    assert "unknown layout 'no-such-layout'" in capsys.readouterr().err


def test_render_with_both_engines_writes_them_side_by_side(tmp_path, capsys):
    assert main(["render", "payment-reminder", "--engine", "both", "--out", str(tmp_path),
                 "--dpi", "30"]) == 0
    out = capsys.readouterr().out
    assert "by typst" in out and "by weasyprint" in out
    for engine in ("typst", "weasyprint"):
        pdf = (tmp_path / f"payment-reminder-nb-NO-{engine}.pdf").read_bytes()
        assert "Betalingspåminnelse" in " ".join(pages_text(pdf))
        assert (tmp_path / f"payment-reminder-nb-NO-{engine}-page1.png").is_file()
    with Image.open(tmp_path / "payment-reminder-nb-NO-typst-page1.png") as typst_page:
        width, height = typst_page.size
    with Image.open(tmp_path / "payment-reminder-nb-NO-page1-compare.png") as image:
        assert image.size == (2 * width + 20, height)
        assert image.getpixel((width + 10, height // 2)) == (0x8A, 0x98, 0xA4)  # the gutter


def test_render_with_one_engine_names_it(tmp_path, capsys):
    assert main(["render", "card-invoice", "--engine", "weasyprint", "--out", str(tmp_path),
                 "--dpi", "30"]) == 0
    assert "by weasyprint" in capsys.readouterr().out
    assert (tmp_path / "card-invoice-nb-NO-weasyprint.pdf").is_file()
    assert not list(tmp_path.glob("*-compare.png"))


def test_render_with_a_locale_takes_that_countrys_sample(tmp_path, capsys):
    assert main(["render", "payment-reminder", "--locale", "de-AT", "--out", str(tmp_path),
                 "--dpi", "20"]) == 0
    text = " ".join(pages_text((tmp_path / "payment-reminder-de-AT.pdf").read_bytes()))
    assert "Zahlungserinnerung" in text and "Lukas Huber" in text and "8010 Graz" in text


def test_render_takes_a_relative_layouts_folder(tmp_path, capsys, monkeypatch):
    # WeasyPrint's fetcher takes the layout folder as a file URI, which a relative path
    # cannot be: "unexpected error: ValueError: relative path can't be expressed as a
    # file URI"
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert main(["render", "welcome-letter", "--layouts-dir", "layouts", "--out",
                 str(tmp_path), "--dpi", "30"]) == 0
    [pdf] = tmp_path.glob("*.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")


def _longest_address(layout: str = "card-invoice") -> dict:
    """The layout's sample with the customer's name and address at the schema's maximum
    lengths (70 characters each; a 58-letter city): compose refuses it for print."""
    root = Path(__file__).resolve().parents[2] / "layouts" / layout / "2.0.0"
    data = json.loads((root / "sample.json").read_text())
    data["customer"]["name"] = ("Wolfeschlegelsteinhausenbergerdorffwelchevoralternwarenge"
                                "wissenhaftsch")[:70]
    data["customer"]["address"]["lines"] = ["Ö" * 70, "W" * 70, "W" * 70]
    data["customer"]["address"]["city"] = ("LLANFAIRPWLLGWYNGYLLGOGERYCHWYRNDROBWLLLLANTYSILIOG"
                                           "OGOGOCH")
    return data


def test_render_runs_composes_print_checks_on_each_engines_pdf(tmp_path, capsys):
    # It exited 0 with a 6-page WeasyPrint PDF whose giro slip had lost its payment row (and
    # a Typst one printing it over the footer); compose refuses the same data.
    data = tmp_path / "long.json"
    data.write_text(json.dumps(_longest_address(), ensure_ascii=False))
    out = tmp_path / "out"
    assert main(["render", "card-invoice", "--data", str(data), "--engine", "both",
                 "--out", str(out), "--dpi", "20"]) == 3
    err = capsys.readouterr().err.splitlines()
    for engine in ("typst", "weasyprint"):
        name = f"card-invoice-nb-NO-{engine}.pdf"
        assert (out / name).read_bytes().startswith(b"%PDF")  # written to show the problem
        assert (out / f"card-invoice-nb-NO-{engine}-page1.png").is_file()
        mine = [line for line in err if line.startswith(f"kanal render: {name}: $.")]
        assert any("envelope window" in line for line in mine), err
        assert any(line.startswith(f"kanal render: {name}: $.customer.address.lines[")
                   for line in mine), err
        assert len(mine) == len(set(mine))  # each problem once
    assert "compose refuses this data" in err[-1]


def test_render_refuses_an_engine_the_layout_has_no_template_for(tmp_path, capsys):
    # was: "kanal render: unexpected error: LayoutError: ... [print] has no typst_template", 1
    assert main(["render", "welcome-letter", "--engine", "typst", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected" not in err
    assert "has no Typst template; its engines: weasyprint" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [["welcome-letter"],
                                  ["card-invoice", "--layout-version", "1.0.0"]])
def test_render_refuses_both_engines_for_a_layout_with_one(argv, tmp_path, capsys):
    # was: the WeasyPrint PDF alone, exit 0, nothing said about Typst (no compare PNGs),
    # while --engine typst on the same layout is refused
    out = tmp_path / "out"
    assert main(["render", *argv, "--engine", "both", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected" not in err, err
    assert "has no Typst template, so --engine both has nothing to set beside WeasyPrint; " \
           "its engines: weasyprint (--engine weasyprint, or no --engine" in err, err
    assert not out.exists()


@pytest.mark.parametrize("engine", [[], ["--engine", "both"], ["--engine", "typst"],
                                    ["--engine", "weasyprint"]])
def test_render_refuses_a_layout_without_a_print_template(engine, tmp_path, capsys):
    # was: no --engine "unexpected error: KeyError: 'template'", 1; --engine both: 0 with
    # nothing written and nothing said; --engine typst suggested "--engine both"
    out = tmp_path / "out"
    assert main(["render", "nps-survey", *engine, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected" not in err, err
    assert err.startswith("kanal render: layout nps-survey@1.0.0 has no print template "
                          "(its channels: email, sms)"), err
    assert "--engine both" not in err
    assert "`kanal compose nps-survey --data FILE --preview --out DIR`" in err
    assert not out.exists()


@pytest.mark.parametrize("dpi", ["0", "-5", "601", "100000", "72.5", "many"])
def test_render_refuses_a_dpi_outside_its_range_before_rendering(dpi, tmp_path, capsys):
    # was: 0 and -5 "unexpected error: ValueError: Crop exceeds page dimensions", 1, after
    # the PDF was written; 100000 allocated until MemoryError
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["render", "card-invoice", "--out", str(out), "--dpi", dpi])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --dpi:" in err and "unexpected" not in err
    assert f"must be within 18..600, not {dpi}" in err or "not a whole number" in err
    assert not out.exists()


def test_render_help_states_the_dpi_range(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    assert "18..600" in capsys.readouterr().out


def test_render_draws_the_layout_version_asked_for(tmp_path, capsys):
    # card-invoice 2.0.0 (and 2.1.0 and 2.2.0, the newest) renders with Typst, 1.0.0
    # with WeasyPrint only; `--layout-version` as `kanal compose` and `kanal submit` spell
    # it (was `--version`)
    assert main(["render", "card-invoice", "--layout-version", "1.0.0", "--out", str(tmp_path),
                 "--dpi", "18"]) == 0
    assert "page(s) by weasyprint" in capsys.readouterr().out


def test_a_version_asked_for_writes_files_of_its_own(tmp_path, capsys):
    # QA: `--layout-version 1.0.0` wrote card-invoice-nb-NO.pdf, over the newest version's
    assert main(["render", "card-invoice", "--out", str(tmp_path), "--dpi", "18"]) == 0
    newest = (tmp_path / "card-invoice-nb-NO.pdf").read_bytes()
    assert main(["render", "card-invoice", "--layout-version", "1.0.0", "--out", str(tmp_path),
                 "--dpi", "18"]) == 0
    assert (tmp_path / "card-invoice-nb-NO.pdf").read_bytes() == newest
    older = (tmp_path / "card-invoice-1.0.0-nb-NO.pdf").read_bytes()
    assert older != newest and (tmp_path / "card-invoice-1.0.0-nb-NO-page1.png").is_file()
    assert "card-invoice-1.0.0-nb-NO.pdf: 2 page(s) by weasyprint" in capsys.readouterr().out
