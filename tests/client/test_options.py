"""The clients' own command-line values (the shared parsers are tested in tests/contract)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from client.options import arg, extension_for, format_for_output, fraction, parse_video_size
from contract.parse import parse_color, parse_size
from contract.values import SizeLimit


def test_video_sizes():
    assert parse_video_size("640x360") == (640, 360) == parse_video_size(" 640X360 ")
    for bad in ("640", "1x360", "axb"):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
            parse_video_size(bad)


def test_argparse_adapter_keeps_the_sentence():
    assert arg(parse_size)("1024") == SizeLimit(long_side=1024)
    assert arg(parse_color, keep_text=True)(" SkyBlue ") == "SkyBlue"
    with pytest.raises(argparse.ArgumentTypeError, match="is not a colour"):
        arg(parse_color)("nocolour")
    assert fraction("smooth", closed_top=False)("0.5") == 0.5
    with pytest.raises(argparse.ArgumentTypeError, match=r"in \[0, 1\)"):
        fraction("smooth", closed_top=False)("1")


def test_format_follows_the_extension_unless_given():
    assert format_for_output(Path("a.JPEG"), None) == "jpg"
    assert format_for_output(Path("a.webp"), "webp") == "webp"
    assert format_for_output(Path("a"), "png") == "png"
    assert format_for_output(None, None) is None
    with pytest.raises(ValueError, match="contradicts"):
        format_for_output(Path("a.png"), "jpg")
    assert format_for_output(Path("a.TIFF"), None) == format_for_output(Path("a.tif"), "tiff") == "tiff"
    with pytest.raises(ValueError, match=r"\.gif"):
        format_for_output(Path("a.gif"), None)


def test_extension_from_content_type():
    assert extension_for("image/jpeg", None) == ".jpg"
    assert extension_for("image/png; charset=binary", "jpg") == ".png"
    assert extension_for(None, "webp") == ".webp"
