"""Parsing and validation of /v1/matte's parameters (pure)."""

from __future__ import annotations

import pytest

from matting_api.options import (
    Margin,
    SizeLimit,
    parse_color,
    parse_crop_margin,
    parse_matte_options,
    parse_size,
)
from service_common.errors import ApiError


@pytest.mark.parametrize(
    ("text", "rgba"),
    [
        ("81d4fa", (0x81, 0xD4, 0xFA, 255)),
        ("#81d4fa", (0x81, 0xD4, 0xFA, 255)),
        ("#fff", (255, 255, 255, 255)),
        ("fff", (255, 255, 255, 255)),
        ("81d4fa80", (0x81, 0xD4, 0xFA, 0x80)),
        ("f008", (255, 0, 0, 0x88)),
        ("white", (255, 255, 255, 255)),
        ("SkyBlue", (135, 206, 235, 255)),
        (" #81D4FA ", (0x81, 0xD4, 0xFA, 255)),
    ],
)
def test_colours(text, rgba):
    assert parse_color(text) == rgba


@pytest.mark.parametrize("text", ["", "nocolour", "#12", "12345", "#ggg", "81d4fa8"])
def test_bad_colours_name_the_field(text):
    with pytest.raises(ApiError) as info:
        parse_color(text)
    assert info.value.code == "invalid_parameter"
    assert info.value.details["field"] == "bg_color"


def test_crop_margins():
    assert parse_crop_margin(None).top == Margin(0)
    one = parse_crop_margin("30px")
    assert one.top == one.right == one.bottom == one.left == Margin(30)
    two = parse_crop_margin("10% 20px")
    assert two.top == two.bottom == Margin(10, percent=True)
    assert two.left == two.right == Margin(20)
    four = parse_crop_margin("1 2px 3% 4")
    assert (four.top, four.right, four.bottom, four.left) == (
        Margin(1), Margin(2), Margin(3, percent=True), Margin(4))
    for bad in ("501px", "51%", "1 2 3", "-5px", "ten"):
        with pytest.raises(ApiError) as info:
            parse_crop_margin(bad)
        assert info.value.details["field"] == "crop_margin"


def test_sizes():
    assert parse_size(None) == SizeLimit() and parse_size("FULL").is_full
    assert parse_size("1024") == SizeLimit(long_side=1024)
    for bad in ("0", "8", "-5", "big", "1.5"):
        with pytest.raises(ApiError) as info:
            parse_size(bad)
        assert info.value.details["field"] == "size"


def test_background_mode_defaults():
    assert parse_matte_options({}, has_bg_image=False).bg_mode == "transparent"
    assert parse_matte_options({}, has_bg_image=True).bg_mode == "image"
    opts = parse_matte_options({"bg_color": "red"}, has_bg_image=False)
    assert (opts.bg_mode, opts.bg_color) == ("color", (255, 0, 0, 255))
    assert parse_matte_options({"bg_color": "red"}, has_bg_image=True).bg_mode == "image"
    assert parse_matte_options({"bg_mode": "color"}, has_bg_image=False).bg_color == (
        255, 255, 255, 255)
    blur = parse_matte_options({"bg_mode": "BLUR", "blur_radius": "7.5"}, has_bg_image=False)
    assert (blur.bg_mode, blur.blur_radius, blur.bg_color) == ("blur", 7.5, None)


def test_all_fields_parse():
    opts = parse_matte_options(
        {"channels": "alpha", "format": "jpeg", "size": "512", "crop": "TRUE",
         "crop_margin": "5%", "classes": "Person, Teddy Bear", "score_threshold": "0.5",
         "instances": "largest"},
        has_bg_image=False,
    )
    assert opts.channels == "alpha" and opts.format == "jpg" and opts.size.long_side == 512
    assert opts.crop and opts.crop_margin.left == Margin(5, percent=True)
    assert opts.segmentation.as_form() == {
        "classes": "person,teddy bear", "score_threshold": "0.5", "instances": "largest"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bg_mode": "image"}, "bg_mode"),  # without a bg_image
        ({"bg_mode": "sepia"}, "bg_mode"),
        ({"channels": "rgb"}, "channels"),
        ({"format": "gif"}, "format"),
        ({"crop": "maybe"}, "crop"),
        ({"blur_radius": "0"}, "blur_radius"),
        ({"blur_radius": "nan"}, "blur_radius"),
        ({"score_threshold": "1.5"}, "score_threshold"),
        ({"instances": "some"}, "instances"),
        ({"classes": "person;dog"}, "classes"),
        ({"classes": " , "}, "classes"),
    ],
)
def test_invalid_parameters_name_the_field(params, field):
    with pytest.raises(ApiError) as info:
        parse_matte_options(params, has_bg_image=False)
    assert info.value.code == "invalid_parameter" and info.value.status == 400
    assert info.value.details["field"] == field
    assert field in info.value.message
