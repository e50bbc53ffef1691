"""Poisson blending: the pure functions of :mod:`render.poisson` and :func:`render.render`
on small synthetic arrays (``POST /v1/matte`` with ``blend`` is in
``tests/matting/test_matting_blending.py``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from render import composite as compositing
from render import geometry, poisson
from render import render as render_image

MODES = ("poisson", "poisson_mixed")
OLD_BG, SUBJECT, NEW_BG, SPOT = 90, 160, 30, 250


def square_scene(
    height: int = 40, width: int = 60, top: int = 10, left: int = 20, size: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """A flat grey square (with one bright spot 5 px right of its left side, at mid-height)
    on a flat old background, and a flat dark new background.

    Returns:
        ``(rgb, fg, alpha, background, spot)``; ``spot`` = ``(row, col)`` of the bright pixel.
    """
    rgb = np.full((height, width, 3), OLD_BG, np.uint8)
    alpha = np.zeros((height, width), np.float32)
    rows = slice(max(0, top), top + size)
    cols = slice(max(0, left), left + size)
    rgb[rows, cols] = SUBJECT
    alpha[rows, cols] = 1.0
    spot = (top + size // 2, max(0, left) + 5)
    rgb[spot] = SPOT
    background = np.full((height, width, 3), NEW_BG, np.uint8)
    return rgb, rgb.astype(np.float32) / 255.0, alpha, background, spot


def brightest(pixels: np.ndarray) -> tuple[int, int]:
    total = pixels.astype(np.int32).sum(axis=2)
    row, col = np.unravel_index(int(total.argmax()), total.shape)
    return int(row), int(col)


# ---------------------------------------------------------------- pure: the clone region


def test_clone_mask_holds_the_soft_edge_and_a_margin():
    alpha = np.zeros((30, 30), np.float32)
    alpha[10:20, 10:20] = 1.0
    alpha[10:20, 20] = 0.004  # barely visible (rounds to 1/255), part of the subject
    alpha[10:20, 21] = 0.001  # invisible in 8 bits: not the subject
    mask = poisson.clone_mask(alpha)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert (mask[alpha > poisson.MASK_THRESHOLD] == 255).all()
    ys, xs = np.nonzero(mask)
    # grown by MASK_DILATION_PX beyond the visible part (columns 10..20), not beyond that
    assert (xs.min(), xs.max()) == (10 - poisson.MASK_DILATION_PX, 20 + poisson.MASK_DILATION_PX)
    assert (ys.min(), ys.max()) == (10 - poisson.MASK_DILATION_PX, 19 + poisson.MASK_DILATION_PX)
    assert not poisson.clone_mask(np.zeros((5, 5), np.float32)).any()


def test_boundary_shift_is_the_typical_difference_around_the_region():
    rgb, _, alpha, background, _ = square_scene()
    shift = poisson.boundary_shift(rgb, background, poisson.clone_mask(alpha))
    assert shift.shape == (3,) and shift.dtype == np.float32
    assert shift.tolist() == [NEW_BG - OLD_BG] * 3
    everything = np.full(alpha.shape, 255, np.uint8)
    assert poisson.boundary_shift(rgb, background, everything).tolist() == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------- pure: in place


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize(("top", "left"), [
    (10, 20),  # well inside
    (10, 0),  # touches the left border
    (10, 40),  # touches the right border
    (0, 20),  # touches the top border
    (20, 20),  # touches the bottom border
    (-5, -5),  # cut by the top-left corner
    (10, 2),  # 2 px from the border: the clone region touches it, the subject does not
])
def test_the_clone_stays_exactly_in_place(mixed, top, left):
    rgb, fg, alpha, background, spot = square_scene(top=top, left=left)
    raw = poisson.poisson_composite(rgb, fg, alpha, background, mixed=mixed, matte_finish=False)
    assert brightest(raw) == spot
    finished = poisson.poisson_composite(rgb, fg, alpha, background, mixed=mixed)
    assert brightest(finished) == spot
    # the subject's edge is where the matte's is: one column left of it is background
    # (exactly, after the matte finish) and the square's own first column is not
    row, col = spot[0], max(0, left)
    if col > 0:
        assert (finished[row, col - 1] == NEW_BG).all()
    assert (finished[row, col] > NEW_BG + 20).all()


def test_a_border_touching_subject_gets_the_same_colour_as_an_inner_one():
    """The clone (whole subject, ``edge_only=False``): a flat subject shifted by (new - old)
    background; where the frame cuts it, the frame imposes no colour of its own (no pull
    toward the new background there)."""
    expected = SUBJECT + NEW_BG - OLD_BG
    for top, left in [(10, 20), (10, 0), (10, 40), (-5, -5)]:
        rgb, fg, alpha, background, spot = square_scene(top=top, left=left)
        out = poisson.poisson_composite(rgb, fg, alpha, background, edge_only=False)
        subject = (alpha == 1.0)
        subject[spot] = False
        values = out[subject].astype(np.float32)
        assert abs(values.mean() - expected) < 1.5, (top, left, values.mean())
        assert values.std() < 1.5


def test_opencv_alone_pins_a_border_subject_to_the_background():
    """Why the padding exists: OpenCV's own call ignores the mask's outer ring, so a subject
    that touches the border is pinned to the new background there (and its box, hence the
    clone, can move by a pixel). It also clears that ring in the caller's mask array."""
    rgb, _, alpha, background, spot = square_scene(top=0, left=0)
    mask = poisson.clone_mask(alpha)
    given = mask.copy()
    x, y, w, h = cv2.boundingRect(given)
    naive = cv2.seamlessClone(rgb, background, given, (x + w // 2, y + h // 2),
                              cv2.NORMAL_CLONE)
    assert not given[0].any()  # OpenCV wrote into our array
    assert (naive[0, :20] == NEW_BG).all()  # the subject's top row became background
    ours = poisson.seamless_clone(rgb, background, mask)
    assert np.array_equal(mask, poisson.clone_mask(alpha))  # ours leaves the mask alone
    assert (np.abs(ours[0, :20].astype(int) - (SUBJECT + NEW_BG - OLD_BG)) <= 1).all()
    assert brightest(ours) == spot


# ---------------------------------------------------------------- pure: sizes and edge cases


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 7), (5, 1), (2, 3), (17, 33),
                                               (40, 9), (131, 257)])
def test_any_size_gives_the_frame_and_keeps_the_background_exact(mode, height, width):
    rng = np.random.default_rng(height * 1000 + width)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    dist = np.hypot((yy - height / 2) / max(height, 1), (xx - width / 3) / max(width, 1))
    alpha = np.clip((0.3 - dist) * 10, 0, 1).astype(np.float32)
    alpha[0, 0] = 0.0
    fg = rgb.astype(np.float32) / 255.0
    background = np.full((height, width, 3), (20, 120, 220), np.uint8)
    out = poisson.poisson_composite(rgb, fg, alpha, background, mixed=mode == "poisson_mixed")
    assert out.shape == (height, width, 3) and out.dtype == np.uint8
    assert (out[alpha == 0] == background[alpha == 0]).all()


@pytest.mark.parametrize("mixed", [False, True])
def test_nothing_visible_falls_back_to_alpha_compositing(mixed):
    rgb, fg, _, background, _ = square_scene()
    alpha = np.full(rgb.shape[:2], 0.001, np.float32)  # rounds to 0 in 8 bits
    out = poisson.poisson_composite(rgb, fg, alpha, background, mixed=mixed)
    assert np.array_equal(out, compositing.composite(fg, alpha, background))
    empty = np.zeros(rgb.shape[:2], np.float32)
    assert np.array_equal(poisson.poisson_composite(rgb, fg, empty, background, mixed=mixed),
                          background)
    assert np.array_equal(poisson.seamless_clone(rgb, background, np.zeros_like(empty, np.uint8)),
                          background)


def test_a_subject_that_fills_the_frame_is_left_as_it_is():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (12, 18, 3), dtype=np.uint8)
    alpha = np.ones((12, 18), np.float32)
    background = np.zeros_like(rgb)
    out = poisson.poisson_composite(rgb, rgb.astype(np.float32) / 255.0, alpha, background)
    assert np.abs(out.astype(int) - rgb).max() <= 1


def test_mixed_lets_the_background_texture_through_a_flat_subject():
    rgb, fg, alpha, _, spot = square_scene()
    stripes = np.zeros(rgb.shape, np.uint8)
    stripes[:, ::4] = 200  # strong vertical lines
    inner = np.zeros(alpha.shape, bool)
    inner[13:27, 23:37] = True
    inner[spot] = False
    normal = poisson.poisson_composite(rgb, fg, alpha, stripes, edge_only=False)
    mixed = poisson.poisson_composite(rgb, fg, alpha, stripes, mixed=True, edge_only=False)
    normal_texture = np.abs(np.diff(normal[..., 0].astype(int), axis=1))[inner[:, 1:]].mean()
    mixed_texture = np.abs(np.diff(mixed[..., 0].astype(int), axis=1))[inner[:, 1:]].mean()
    assert normal_texture < 2 < 20 < mixed_texture
    # the service's edge band: the texture stays out of the subject's interior
    banded = poisson.poisson_composite(rgb, fg, alpha, stripes, mixed=True)
    deep = inner & (poisson.edge_weight(alpha) == 0)
    assert deep.any() and np.array_equal(banded[deep], compositing.composite(fg, alpha, stripes)[deep])


def test_edge_band_weight():
    """1 on the soft edge and outside, 0 deep inside, linear in between; the frame border
    is no edge."""
    alpha = np.zeros((40, 60), np.float32)
    alpha[:, 20:] = 1.0  # a subject cut by the top, bottom and right borders
    alpha[:, 19] = 0.5
    w = poisson.edge_weight(alpha, width_px=4.0)
    assert (w[:, :20] == 1).all()
    assert np.allclose(w[20, 20:25], [0.75, 0.5, 0.25, 0.0, 0.0])
    assert (w[:, 24:] == 0).all()  # the top, bottom and right borders do not count
    assert poisson.edge_band_px(512, 512) == pytest.approx(3.072)
    assert poisson.edge_band_px(100, 100) == poisson.EDGE_BAND_MIN_PX


def test_bad_inputs_are_refused():
    rgb, fg, alpha, background, _ = square_scene()
    rgba = np.dstack([background, np.full(alpha.shape, 128, np.uint8)])
    with pytest.raises(ValueError, match="opaque"):
        poisson.poisson_composite(rgb, fg, alpha, rgba)
    with pytest.raises(ValueError, match="shape"):
        poisson.poisson_composite(rgb[:-1], fg, alpha, background)
    with pytest.raises(ValueError, match="pad"):
        poisson.seamless_clone(rgb, background, poisson.clone_mask(alpha), pad=0)
    with pytest.raises(ValueError, match="blend"):
        render_image(rgb, fg, alpha, bg_mode="color", blend="median")
    with pytest.raises(ValueError, match="new background"):
        render_image(rgb, fg, alpha, bg_mode="transparent", blend="poisson")


def test_render_alpha_is_plain_compositing_and_poisson_crops():
    rgb, fg, alpha, _, _ = square_scene()
    kw = {"bg_mode": "color", "bg_color": (200, 10, 10, 255)}
    assert np.array_equal(render_image(rgb, fg, alpha, **kw), render_image(rgb, fg, alpha, **kw))
    box = (15, 5, 30, 28)
    out = render_image(rgb, fg, alpha, blend="poisson", box=box, **kw)
    assert out.shape == (28, 30, 3)
    cropped_alpha = geometry.crop(alpha, box)
    assert (out[cropped_alpha == 0] == (200, 10, 10)).all()
    for bg_mode in ("blur", "grayscale"):
        assert render_image(rgb, fg, alpha, bg_mode=bg_mode, blend="poisson_mixed").shape == rgb.shape
