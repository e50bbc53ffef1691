"""Command-line value parsing of the clients (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.options import (
    extension_for,
    format_for_output,
    parse_classes,
    parse_color,
    parse_crop_margin,
    parse_fraction,
    parse_size,
    parse_video_size,
)


@pytest.mark.parametrize(("text", "rgba"), [
    ("81d4fa", (0x81, 0xD4, 0xFA, 255)),
    ("#fff", (255, 255, 255, 255)),
    ("81d4fa80", (0x81, 0xD4, 0xFA, 0x80)),
    ("SkyBlue", (135, 206, 235, 255)),
    ("rgb(1, 2, 3)", (1, 2, 3, 255)),
])
def test_parse_color_accepts_the_api_forms(text, rgba):
    assert parse_color(text) == rgba


@pytest.mark.parametrize("text", ["nocolour", "#12", "12345"])
def test_parse_color_rejects_garbage(text):
    with pytest.raises(ValueError, match="colour"):
        parse_color(text)


def test_crop_margin_forms():
    assert parse_crop_margin("10PX") == "10px"
    assert parse_crop_margin("5%") == "5%"
    assert parse_crop_margin("10px, 5%") == "10px 5%"
    assert parse_crop_margin("1 2 3 4") == "1 2 3 4"
    for bad in ("ten", "1 2 3", "-5px", "5em"):
        with pytest.raises(ValueError, match="crop margin"):
            parse_crop_margin(bad)


def test_sizes_classes_fractions():
    assert parse_size("FULL") == "full"
    assert parse_size("0640") == "640"
    with pytest.raises(ValueError):
        parse_size("0")
    assert parse_video_size("640x360") == (640, 360)
    with pytest.raises(ValueError):
        parse_video_size("640")
    assert parse_classes(" person, dog ,") == "person,dog"
    with pytest.raises(ValueError):
        parse_classes(" , ")
    assert parse_fraction("0.25", "x") == 0.25
    with pytest.raises(ValueError):
        parse_fraction("1", "--smooth", closed_top=False)
    with pytest.raises(ValueError):
        parse_fraction("abc", "x")


def test_format_follows_the_extension_unless_given():
    assert format_for_output(Path("a.JPEG"), None) == "jpg"
    assert format_for_output(Path("a.webp"), "webp") == "webp"
    assert format_for_output(Path("a"), "png") == "png"
    assert format_for_output(None, None) is None
    with pytest.raises(ValueError, match="contradicts"):
        format_for_output(Path("a.png"), "jpg")
    with pytest.raises(ValueError, match=r"\.tiff"):
        format_for_output(Path("a.tiff"), None)


def test_extension_from_content_type():
    assert extension_for("image/jpeg", None) == ".jpg"
    assert extension_for("image/png; charset=binary", "jpg") == ".png"
    assert extension_for(None, "webp") == ".webp"
