"""The shared value parsers (contract.parse): one behaviour for the services and the clients."""

from __future__ import annotations

import pytest

from contract import parse
from contract.values import Box, CropMargin, Margin, SizeLimit
from contract.vocab import SEGMENTATION_BACKENDS


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
        ("rgb(1, 2, 3)", (1, 2, 3, 255)),
    ],
)
def test_colours(text, rgba):
    assert parse.parse_color(text) == rgba


@pytest.mark.parametrize("text", ["", "nocolour", "#12", "12345", "#ggg", "81d4fa8", "rgb(999,0,0)"])
def test_bad_colours_name_the_field_in_a_sentence(text):
    with pytest.raises(parse.InvalidValue) as info:
        parse.parse_color(text)
    assert info.value.field == "bg_color"
    assert "colour" in info.value.message or "0..255" in info.value.message


def test_crop_margins():
    assert parse.parse_crop_margin(None) == CropMargin()
    one = parse.parse_crop_margin("30px")
    assert one.top == one.right == one.bottom == one.left == Margin(30)
    two = parse.parse_crop_margin("10% 20px")
    assert two.top == two.bottom == Margin(10, percent=True)
    assert two.left == two.right == Margin(20)
    four = parse.parse_crop_margin("1 2px 3% 4")
    assert (four.top, four.right, four.bottom, four.left) == (
        Margin(1), Margin(2), Margin(3, percent=True), Margin(4))
    assert parse.parse_crop_margin("10PX, 5%").text() == "10px 5% 10px 5%"
    for bad in ("501px", "51%", "1 2 3", "-5px", "ten", "5em"):
        with pytest.raises(parse.InvalidValue) as info:
            parse.parse_crop_margin(bad)
        assert info.value.field == "crop_margin"


def test_sizes():
    assert parse.parse_size(None) == SizeLimit() and parse.parse_size("FULL").is_full
    assert parse.parse_size("1024") == SizeLimit(long_side=1024) == parse.parse_size("01024px")
    assert parse.parse_size("640").text() == "640" and parse.parse_size("full").text() == "full"
    for bad in ("0", "8", "-5", "big", "1.5", "²²²", "9" * 5000):
        with pytest.raises(parse.InvalidValue) as info:
            parse.parse_size(bad)
        assert info.value.field == "size"
    with pytest.raises(parse.InvalidValue, match="neither 'full' nor a whole number"):
        parse.parse_size("abc")


def test_numbers_choices_bools():
    assert parse.parse_number("0.25", "x", low=0, high=1) == 0.25
    for bad, message in (("abc", "is not a number"), ("1", r"in \[0, 1\)"), ("nan", "must be"),
                         ("-0.1", "must be")):
        with pytest.raises(parse.InvalidValue, match=message):
            parse.parse_number(bad, "x", low=0, high=1, high_open=True)
    assert parse.parse_choice(None, "f", ("a", "b"), "a") == "a"
    assert parse.parse_choice(" B ", "f", ("a", "b"), "a") == "b"
    with pytest.raises(parse.InvalidValue, match="is not one of a, b"):
        parse.parse_choice("c", "f", ("a", "b"), "a")
    assert parse.parse_format("JPEG") == "jpg" and parse.parse_format(None) == "auto"
    assert parse.parse_bool("Yes", "crop") is True and parse.parse_bool(None, "crop") is False
    with pytest.raises(parse.InvalidValue, match="true or false"):
        parse.parse_bool("maybe", "crop")


def test_classes_and_backends():
    assert parse.parse_classes(" Person, Teddy  Bear ,person,") == ("person", "teddy bear")
    for bad in (" , ", "person;dog", "dog2"):
        with pytest.raises(parse.InvalidValue) as info:
            parse.parse_classes(bad)
        assert info.value.field == "classes"
    assert parse.parse_backend("ModNet") == "modnet"
    assert "modnet" in SEGMENTATION_BACKENDS
    with pytest.raises(parse.InvalidValue, match="is not one of auto, maskrcnn"):
        parse.parse_backend("sam2")


def test_long_values_are_not_echoed_whole():
    long = "x" * 100_000
    assert len(parse.shown(long)) < 100
    with pytest.raises(parse.InvalidValue) as info:
        parse.parse_color(long)
    assert len(info.value.message) < 300


def test_box():
    import numpy as np

    region = np.zeros((10, 20), bool)
    assert Box.of(region) == (0, 0, 0, 0) and Box.of(region).empty
    region[2:5, 3:9] = True
    box = Box.of(region)
    assert box == (3, 2, 6, 3) and (box.right, box.bottom) == (9, 5) and box.text() == "3,2,6,3"
    assert box.within(Box(4, 0, 10, 4)) == (0, 2, 5, 2)
    assert box.within(Box(10, 0, 5, 5)) == (0, 0, 0, 0)
