"""Pure compositing functions on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from contract.parse import parse_crop_margin
from contract.values import CropMargin, Margin, SizeLimit
from render import backgrounds, colour, geometry
from render import composite as compositing
from render import render as render_image


def _random(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_srgb_round_trip_is_exact_for_every_byte():
    values = np.arange(256, dtype=np.uint8)
    assert np.array_equal(colour.linear_to_u8(colour.u8_to_linear(values)), values)
    np.testing.assert_allclose(colour.linear_to_srgb(colour.srgb_to_linear(values / 255.0)),
                               values / 255.0, atol=1e-5)


def test_composite_is_exact_where_alpha_is_0_or_1():
    fg = _random((8, 8, 3), 1).astype(np.float32) / 255.0
    bg = _random((8, 8, 3), 2)
    alpha = np.zeros((8, 8), np.float32)
    alpha[:, 4:] = 1.0
    alpha[0, 0] = 0.5
    out = compositing.composite(fg, alpha, bg)
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
    assert np.array_equal(out[1:, :4], bg[1:, :4])
    assert np.array_equal(out[:, 4:], np.round(fg[:, 4:] * 255).astype(np.uint8))


def test_composite_blends_in_linear_light():
    fg = np.ones((1, 1, 3), np.float32)  # white
    bg = np.zeros((1, 1, 3), np.uint8)  # black
    out = compositing.composite(fg, np.full((1, 1), 0.5, np.float32), bg)
    # half the light of white is sRGB 188, not the 128 of a gamma-space average
    assert out[0, 0].tolist() == [188, 188, 188]


def test_composite_over_a_transparent_colour_gives_rgba():
    fg = np.ones((1, 3, 3), np.float32)
    alpha = np.array([[0.0, 0.5, 1.0]], np.float32)
    bg = backgrounds.solid_background((255, 0, 0, 128), 3, 1)
    assert bg.shape == (1, 3, 4)
    out = compositing.composite(fg, alpha, bg)
    assert out.shape == (1, 3, 4)
    assert out[0, 0].tolist() == [255, 0, 0, 128]  # background exactly
    assert out[0, 2].tolist() == [255, 255, 255, 255]  # subject exactly
    assert out[0, 1, 3] == round((0.5 + 0.5 * 128 / 255) * 255)  # "over"
    assert out[0, 1, 0] == 255 and 0 < out[0, 1, 1] < 255


def test_decontaminated_foreground_removes_the_old_backgrounds_fringe():
    """A white subject's soft edge over green: placed on red, the edge must not stay green."""
    white = np.ones((1, 1, 3), np.float32)
    green = np.array([[[0, 255, 0]]], np.uint8)
    half = np.full((1, 1), 0.5, np.float32)
    edge_pixel = compositing.composite(white, half, green)  # what the camera saw at the edge
    red = np.array([[[255, 0, 0]]], np.uint8)
    with_f = compositing.composite(white, half, red)
    with_image = compositing.composite(edge_pixel.astype(np.float32) / 255.0, half, red)
    # the true subject (white) half over red, in linear light: (1, .5, .5) -> (255, 188, 188)
    assert with_f[0, 0].tolist() == [255, 188, 188]
    r, g, b = (int(v) for v in with_image[0, 0])
    assert g - b > 40 and r < 240  # the old green survives in the edge without F


def test_transparent_keeps_colour_of_visible_pixels_and_zeroes_the_rest():
    fg = _random((4, 4, 3), 3).astype(np.float32) / 255.0
    alpha = np.array([[0, 0.001, 0.5, 1.0]] * 4, np.float32)
    out = compositing.transparent(fg, alpha)
    assert out.shape == (4, 4, 4)
    assert np.array_equal(out[:, :2], np.zeros((4, 2, 4), np.uint8))  # alpha rounds to 0
    assert np.array_equal(out[:, 3, :3], np.round(fg[:, 3] * 255).astype(np.uint8))
    assert out[:, 2, 3].tolist() == [128] * 4


def test_matte_and_flatten():
    alpha = np.array([[0.0, 0.5, 1.0]], np.float32)
    assert compositing.matte(alpha).tolist() == [[0, 128, 255]]
    rgba = np.array([[[0, 0, 0, 0], [0, 0, 0, 255], [0, 0, 0, 128]]], np.uint8)
    flat = compositing.flatten(rgba)
    assert flat.shape == (1, 3, 3)
    assert flat[0, 0].tolist() == [255, 255, 255] and flat[0, 1].tolist() == [0, 0, 0]
    assert compositing.has_transparency(rgba) and not compositing.has_transparency(rgba[..., :3])


def _bands(width: int, height: int) -> np.ndarray:
    """Four vertical bands: red, green, blue, yellow."""
    bg = np.zeros((height, width, 3), np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    for i, c in enumerate(colours):
        bg[:, i * width // 4:(i + 1) * width // 4] = c
    return bg


def test_cover_resize_crops_a_wide_background_instead_of_squashing_it():
    bg = _bands(200, 100)  # 2:1
    out = backgrounds.cover_resize(bg, 50, 50)  # 1:1 frame: the centre half (green, blue) remains
    assert out.shape == (50, 50, 3)
    assert out[:, :20].reshape(-1, 3).tolist() == [[0, 255, 0]] * (50 * 20)
    assert out[:, 30:].reshape(-1, 3).tolist() == [[0, 0, 255]] * (50 * 20)
    assert not (out == [255, 0, 0]).all(axis=2).any()  # no red: nothing squashed in


def test_cover_resize_tall_background_and_upscaling_keep_the_centre():
    bg = np.zeros((40, 10, 3), np.uint8)
    bg[:10] = 255  # top quarter white
    out = backgrounds.cover_resize(bg, 30, 30)  # 1:4 on 1:1: the middle 10 rows, scaled x3
    assert out.shape == (30, 30, 3)
    assert (out[3:-3] == 0).all()
    same = _random((6, 9, 3))
    assert np.array_equal(backgrounds.cover_resize(same, 9, 6), same)


def test_solid_grayscale_and_blur_backgrounds():
    assert backgrounds.solid_background((1, 2, 3, 255), 4, 2).shape == (2, 4, 3)
    rgb = _random((16, 16, 3), 4)
    grey = backgrounds.grayscale_background(rgb)
    assert grey.shape == (16, 16, 3)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    blurred = backgrounds.blur_background(rgb, np.zeros((16, 16), np.float32), 2.0)
    assert blurred.shape == (16, 16, 3) and blurred.std() < rgb.std()


def test_masked_blur_keeps_the_subjects_colour_out_of_the_background():
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[...] = (0, 0, 255)  # blue background
    rgb[16:48, 16:48] = (255, 0, 0)  # red subject
    alpha = np.zeros((64, 64), np.float32)
    alpha[16:48, 16:48] = 1.0
    masked = backgrounds.blur_background(rgb, alpha, 6.0)
    plain = colour.linear_to_u8(backgrounds.gaussian_blur(colour.u8_to_linear(rgb), 6.0))
    ring = (slice(10, 14), slice(20, 44))  # background just above the subject
    assert masked[ring][..., 0].max() <= 2  # no red bleeds out
    assert plain[ring][..., 0].mean() > 50  # a plain blur would bleed it


def test_large_blur_radius_runs_downscaled_and_stays_smooth():
    rgb = _random((120, 90, 3), 5)
    out = backgrounds.blur_background(rgb, np.zeros((120, 90), np.float32), 40.0)
    assert out.shape == (120, 90, 3)
    assert np.abs(np.diff(out.astype(int), axis=1)).max() <= 3


def test_subject_box_and_crop_box_with_px_and_percent_margins():
    alpha = np.zeros((100, 200), np.float32)
    alpha[20:60, 50:150] = 1.0
    alpha[0, 0] = 0.001
    box = geometry.subject_box(alpha, threshold=0.002)
    assert box == (50, 20, 100, 40)
    assert geometry.subject_box(np.zeros((4, 4), np.float32)) is None
    assert geometry.crop_box(box, CropMargin(), (200, 100)) == (50, 20, 100, 40)
    assert geometry.crop_box(box, parse_crop_margin("10px"), (200, 100)) == (40, 10, 120, 60)
    # 10 % of the width (100) left/right, of the height (40) top/bottom
    assert geometry.crop_box(box, parse_crop_margin("10%"), (200, 100)) == (40, 16, 120, 48)
    # clamped to the image
    m = CropMargin(Margin(50), Margin(500), Margin(50), Margin(0))
    assert geometry.crop_box(box, m, (200, 100)) == (50, 0, 150, 100)
    cropped = geometry.crop(np.arange(200 * 100).reshape(100, 200), box)
    assert cropped.shape == (40, 100) and cropped[0, 0] == 20 * 200 + 50


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (SizeLimit(), (400, 300)),
        (SizeLimit(long_side=200), (200, 150)),
        (SizeLimit(long_side=1000), (400, 300)),  # never upscales
        (SizeLimit(max_pixels=30_000), (200, 150)),
        (SizeLimit(long_side=100, max_pixels=30_000), (100, 75)),
    ],
)
def test_fit_size(limit, expected):
    w, h = geometry.fit_size(400, 300, limit)
    assert (w, h) == expected
    if limit.max_pixels:
        assert w * h <= limit.max_pixels


def test_resizes():
    rgb = _random((30, 40, 3))
    assert geometry.resize_image(rgb, 20, 15).shape == (15, 20, 3)
    tri = np.zeros((30, 40), np.uint8)
    tri[:, 10:20] = 128
    tri[:, 20:] = 255
    small = geometry.resize_mask_nearest(tri, 17, 13)
    assert small.shape == (13, 17) and set(np.unique(small)) <= {0, 128, 255}


@pytest.fixture
def parts():
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    fg = rgb.astype(np.float32) / 255.0
    alpha = np.zeros((20, 30), np.float32)
    alpha[5:15, 10:20] = 1.0
    alpha[5:15, 9] = 0.5
    return rgb, fg, alpha


@pytest.mark.parametrize("mode", ["color", "image", "transparent", "blur", "grayscale"])
def test_render_every_background_mode(parts, mode):
    rgb, fg, alpha = parts
    bg_image = _bands(64, 32)
    out = render_image(rgb, fg, alpha, bg_mode=mode, bg_color=(10, 20, 30, 255),
                      bg_image=bg_image, blur_radius=2.0)
    assert out.shape == ((20, 30, 4) if mode == "transparent" else (20, 30, 3))
    # the subject is the input, exactly, in every mode
    assert np.array_equal(out[5:15, 10:20, :3], rgb[5:15, 10:20])
    if mode == "color":
        assert (out[0, 0] == [10, 20, 30]).all()
    if mode == "image":
        assert np.array_equal(out[0, 0], backgrounds.cover_resize(bg_image, 30, 20)[0, 0])
    if mode == "transparent":
        assert out[0, 0, 3] == 0 and out[5, 9, 3] == 128
    if mode == "grayscale":
        assert out[0, 0, 0] == out[0, 0, 1] == out[0, 0, 2]


def test_render_matte_and_crop(parts):
    rgb, fg, alpha = parts
    matte = render_image(rgb, fg, alpha, bg_mode="color", channels="alpha")
    assert matte.shape == (20, 30) and matte[10, 12] == 255 and matte[0, 0] == 0
    box = geometry.subject_box(alpha)
    out = render_image(rgb, fg, alpha, bg_mode="transparent", box=box)
    assert out.shape == (10, 11, 4)
    assert np.array_equal(out[:, 1:, :3], rgb[5:15, 10:20])
