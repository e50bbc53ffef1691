"""Parsing and validation of /v1/matte's parameters (pure; the value parsers themselves are
tested in tests/contract)."""

from __future__ import annotations

import pytest

from contract.parse import InvalidValue
from contract.values import Margin
from matting_api.options import parse_matte_options
from service_common.errors import invalid_parameter


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
    with pytest.raises(InvalidValue) as info:
        parse_matte_options(params, has_bg_image=False)
    assert info.value.field == field
    error = invalid_parameter(info.value)  # what the service answers
    assert error.code == "invalid_parameter" and error.status == 400
    assert error.details["field"] == field and error.message.startswith(f"{field}: ")
