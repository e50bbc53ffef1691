"""render/shadow.py and the product-photo geometry it comes with (render/geometry.py's
``placed_box`` / ``place_subject``): pure numpy, no service."""

from __future__ import annotations

import numpy as np
import pytest

from contract.values import Box
from render import render
from render.colour import linear_to_u8, u8_to_linear
from render.geometry import place_subject, placed_box
from render.shadow import Shadow, darken, matte_with_shadow, shadow_alpha, shadow_layer, subject_size


def _disc(size: int = 200, radius: int = 40, centre: tuple[int, int] = (100, 90)) -> np.ndarray:
    """A hard disc matte, ``size x size`` float32."""
    yy, xx = np.mgrid[:size, :size]
    return ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2).astype(np.float32)


def _centroid(weights: np.ndarray) -> tuple[float, float]:
    yy, xx = np.mgrid[: weights.shape[0], : weights.shape[1]]
    total = weights.sum()
    return float((xx * weights).sum() / total), float((yy * weights).sum() / total)


# --- the shadow's alpha ------------------------------------------------------------------


def test_shadow_is_the_matte_moved_down_right_blurred_and_see_through():
    alpha = _disc()
    shade = shadow_alpha(alpha, Shadow(opacity=0.6))
    assert shade.dtype == np.float32 and shade.shape == alpha.shape
    assert 0.55 < shade.max() <= 0.6 + 1e-6  # the opacity, under the subject's solid middle
    size = subject_size(alpha)
    assert size == 81
    cx, cy = _centroid(shade)
    right, down = Shadow().offset
    assert cx - 100 == pytest.approx(right * size, abs=0.3)  # moved right ...
    assert cy - 90 == pytest.approx(down * size, abs=0.3)  # ... and down, by the subject's size
    # soft: the hard edge of the disc becomes a ramp a few px wide
    ramp = shade[90 + 2, 100 + 1 + 40 - 6:100 + 1 + 40 + 6]
    assert ((ramp > 0.05) & (ramp < 0.55)).sum() >= 4
    assert shade[0, 0] == 0.0 and shade[-1, -1] == 0.0  # nothing far from the subject


def test_shadow_follows_the_subject_size_not_the_picture_size():
    small = shadow_alpha(_disc(200, 40, (100, 90)), Shadow())
    large = shadow_alpha(_disc(400, 80, (200, 180)), Shadow())
    shrunk = large.reshape(200, 2, 200, 2).mean(axis=(1, 3))
    assert np.abs(shrunk - small).max() < 0.1  # the discs' pixel edges differ
    assert np.abs(shrunk - small).mean() < 0.005


def test_no_shadow_without_a_subject_or_opacity():
    assert not shadow_alpha(np.zeros((50, 60), np.float32), Shadow()).any()
    assert not shadow_alpha(_disc(), Shadow(opacity=0.0)).any()
    with pytest.raises(ValueError):
        Shadow(opacity=1.5)


# --- under the subject -------------------------------------------------------------------


def test_darken_an_opaque_background_in_linear_light():
    background = np.full((4, 4, 3), 200, np.uint8)
    shade = np.zeros((4, 4), np.float32)
    shade[1, 1], shade[2, 2] = 1.0, 0.5
    out = darken(background, shade)
    assert np.array_equal(out[0, 0], [200, 200, 200])  # no shade: byte for byte
    assert np.array_equal(out[1, 1], [0, 0, 0])  # full shade: black
    # half of the light of sRGB 200 (linear 0.578) is linear 0.289: sRGB 146, not 100
    half = linear_to_u8(u8_to_linear(np.uint8(200)) * 0.5)
    assert half == 146 and np.array_equal(out[2, 2], [half] * 3)


def test_darken_a_see_through_background_adds_alpha():
    background = np.zeros((2, 2, 4), np.uint8)
    background[..., :3] = 255
    background[0, 0, 3] = 255
    shade = np.full((2, 2), 0.4, np.float32)
    out = darken(background, shade)
    assert out[1, 1, 3] == 102  # over nothing: the shadow's own alpha
    assert out[0, 0, 3] == 255 and out[0, 0, 0] < 255  # over white: opaque, darker
    assert np.array_equal(shadow_layer(shade)[..., 3], np.full((2, 2), 102))
    assert not shadow_layer(shade)[..., :3].any()  # black


def _scene(size: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    alpha = _disc(size, 25, (60, 50))
    fg = np.zeros((size, size, 3), np.float32)
    fg[..., 0] = 1.0  # a red subject
    rgb = np.full((size, size, 3), 90, np.uint8)
    return rgb, fg, alpha


def test_render_with_a_shadow_over_a_colour():
    rgb, fg, alpha = _scene()
    plain = render(rgb, fg, alpha, bg_mode="color", bg_color=(255, 255, 255, 255))
    shaded = render(rgb, fg, alpha, bg_mode="color", bg_color=(255, 255, 255, 255),
                    drop_shadow=Shadow(opacity=0.5))
    subject = alpha >= 1.0
    assert np.array_equal(shaded[subject], plain[subject])  # the subject is untouched
    below = (60, 50 + 25 + 1)  # x, y just under the disc, where the shadow falls
    assert shaded[below[1], below[0]].max() < 230 and plain[below[1], below[0]].min() == 255
    assert np.array_equal(shaded[:5, :5], plain[:5, :5])  # far away: white
    assert np.array_equal(render(rgb, fg, alpha, bg_mode="color", bg_color=(255, 255, 255, 255),
                                 drop_shadow=Shadow(opacity=0.0)), plain)


def test_render_with_a_shadow_keeps_transparency_in_the_alpha():
    rgb, fg, alpha = _scene()
    cut = render(rgb, fg, alpha, bg_mode="transparent", drop_shadow=Shadow(opacity=0.5))
    assert cut.shape == (120, 120, 4)
    x, y = 60, 50 + 25 + 1
    assert 20 < cut[y, x, 3] < 128 and not cut[y, x, :3].any()  # a black, half-seen shadow
    assert cut[0, 0, 3] == 0  # far away: transparent
    assert np.array_equal(cut[alpha >= 1.0], np.tile([255, 0, 0, 255], ((alpha >= 1.0).sum(), 1)))
    matte = render(rgb, fg, alpha, bg_mode="transparent", channels="alpha", drop_shadow=Shadow(opacity=0.5))
    assert matte.ndim == 2 and np.array_equal(matte, cut[..., 3])  # the matte is the result's alpha
    assert np.allclose(matte_with_shadow(alpha, np.zeros_like(alpha)), alpha)


def test_render_with_a_shadow_in_a_crop_and_with_poisson():
    rgb, fg, alpha = _scene()
    box = Box(20, 10, 90, 90)
    cropped = render(rgb, fg, alpha, bg_mode="color", bg_color=(0, 0, 255, 255), box=box,
                     drop_shadow=Shadow())
    assert cropped.shape == (90, 90, 3)
    poisson = render(rgb, fg, alpha, bg_mode="color", bg_color=(255, 255, 255, 255), blend="poisson",
                     drop_shadow=Shadow())
    assert poisson[50 + 25 + 1, 60].max() < 230  # the shadow is in the background it blends into


# --- scale and position --------------------------------------------------------------------


def test_placed_box_scale_and_position():
    frame = Box(0, 0, 200, 100)
    subject = Box(10, 20, 40, 20)
    assert placed_box(subject, frame, None, None) == subject  # nothing asked: where it is
    assert placed_box(subject, frame, 0.5, (50.0, 50.0)) == Box(50, 25, 100, 50)  # fits 50% of the height
    assert placed_box(subject, frame, None, (0.0, 100.0)) == Box(0, 80, 40, 20)  # bottom left
    assert placed_box(subject, frame, None, (100.0, 0.0)) == Box(160, 0, 40, 20)  # top right
    assert placed_box(subject, frame, 1.0, None) == Box(-70, -20, 200, 100)  # grown about its centre
    assert placed_box(subject, Box(5, 10, 100, 50), None, (0.0, 0.0)) == Box(0, 0, 40, 20)


def test_place_subject_moves_and_resizes_the_subject_only():
    rgb, fg, alpha = _scene()
    subject = Box.of(alpha > 0)
    frame = Box(0, 0, 120, 120)
    out_rgb, out_fg, out_alpha, box = place_subject(rgb, fg, alpha, subject, frame, 0.5, (50.0, 100.0))
    assert out_alpha.shape == (120, 120) and out_fg.shape == (120, 120, 3)
    assert box == Box(30, 60, 60, 60)  # half the frame, centred, at the bottom
    assert not out_alpha[:60].any()  # nothing left at the old place
    assert out_alpha[90, 60] == pytest.approx(1.0) and out_fg[90, 60, 0] == pytest.approx(1.0)
    assert out_alpha.max() <= 1.0 and out_alpha.min() >= 0.0
    same = place_subject(rgb, fg, alpha, subject, frame, None, None)
    assert np.array_equal(same[2], alpha) and same[3] == subject  # nothing asked: unchanged
    moved = place_subject(rgb, fg, alpha, subject, frame, None, (0.0, 0.0))
    assert moved[3] == Box(0, 0, subject.width, subject.height)
    assert np.array_equal(moved[2][:subject.height, :subject.width], alpha[subject.top:subject.bottom,
                                                                           subject.left:subject.right])
