"""`kanal render`: a layout designer's PDF and page PNGs, without a server."""

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
