"""Data can never make the PDF engine fetch a URL or read a file outside the layout."""

import pytest

from server.channels.weasyprint_engine import AssetFetcher


@pytest.fixture
def fetcher(tmp_path):
    layout = tmp_path / "layouts" / "x" / "1.0.0"
    layout.mkdir(parents=True)
    (layout / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("top secret")
    return AssetFetcher((layout,)), layout, tmp_path


def test_serves_the_layouts_own_files(fetcher):
    fetch, layout, _ = fetcher
    response = fetch.fetch((layout / "logo.svg").as_uri())
    assert response.read().startswith(b"<svg")
    assert response.content_type == "image/svg+xml"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/track.png",
    "https://example.org/x.css",
    "ftp://example.org/x",
    "data:text/plain,hello",
])
def test_refuses_other_schemes(fetcher, url):
    fetch, _, _ = fetcher
    with pytest.raises(ValueError):
        fetch.fetch(url)


def test_refuses_files_outside_the_layout(fetcher):
    fetch, layout, root = fetcher
    escape = layout / ".." / ".." / ".." / "secret.txt"
    for url in ((root / "secret.txt").as_uri(), escape.as_uri(),
                "file:///etc/passwd"):
        with pytest.raises(ValueError):
            fetch.fetch(url)


def test_serves_base64_svg_and_png_data_images_only(fetcher):
    """The payment codes (EPC QR, Code 128) reach WeasyPrint as base64 data: images; they
    name no place, so nothing is fetched. Other data: media types stay refused."""
    import base64
    fetch, _, _ = fetcher
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    response = fetch.fetch("data:image/svg+xml;base64," + base64.b64encode(svg).decode())
    assert response.read() == svg and response.content_type == "image/svg+xml"
    for url in ("data:text/html;base64,PGI+", "data:image/svg+xml,<svg/>",
                "data:image/svg+xml;base64,PHN2Zz4=#x", "data:application/pdf;base64,JVBE"):
        with pytest.raises(ValueError):
            fetch.fetch(url)
