"""How images travel between the parts (contract.transport): uncompressed on this machine (BMP
up, TIFF back: the RGBA answer and the segmentation mask), PNG elsewhere."""

from __future__ import annotations

import pytest

from contract.transport import answer_format, is_loopback, mask_format, upload_format


@pytest.mark.parametrize(("url", "local"), [
    ("http://127.0.0.1:3000", True),
    ("http://127.8.9.10:3000/x", True),
    ("http://localhost:3000", True),
    ("http://LOCALHOST", True),
    ("http://[::1]:3000", True),
    ("http://segmentation:3000", False),
    ("https://10.0.0.7:3000", False),
    ("http://127.0.0.1.example.com", False),
    ("http://localhost.example.com", False),
    ("", False),
])
def test_loopback_urls(url, local):
    assert is_loopback(url) is local
    assert upload_format(url) == ("bmp" if local else "png")
    assert answer_format(url) == ("tiff" if local else "png")
    assert mask_format(url) == ("tiff" if local else "png")


def test_an_explicit_choice_wins():
    assert upload_format("http://127.0.0.1:3000", "png") == "png"
    assert upload_format("http://segmentation:3000", "bmp") == "bmp"


def test_the_mask_comes_back_as_the_image_went():
    """One setting decides both ways of the segmentation hop: uncompressed or PNG."""
    assert mask_format("http://127.0.0.1:3000", "png") == "png"
    assert mask_format("http://127.0.0.1:3000", "bmp") == "tiff"
    assert mask_format("http://segmentation:3000", "bmp") == "tiff"
    assert mask_format("http://segmentation:3000", "png") == "png"
