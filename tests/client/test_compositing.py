"""Backgrounds and compositing of the video client (pure numpy)."""

from __future__ import annotations

import numpy as np

from client.compositing import composite, fit_cover, solid, to_rgba8, vertical_gradient


def test_composite_exact_at_0_and_1_and_linear_in_between():
    fg = np.full((2, 3, 3), 255, np.uint8)
    bg = np.zeros((2, 3, 3), np.uint8)
    alpha = np.array([[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]], np.float32)
    out = composite(fg, alpha, bg)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert np.all(out[:, 0] == 0) and np.all(out[:, 2] == 255)
    # half of white in linear light is sRGB 188, not 128
    assert np.all(np.abs(out[:, 1].astype(int) - 188) <= 1)


def test_fit_cover_keeps_aspect_and_fills():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 50:150] = 255  # the centre half
    out = fit_cover(img, (50, 50))
    assert out.shape == (50, 50, 3)
    assert np.all(out[25, 5:45] == 255)  # centre crop of the white band
    assert np.array_equal(fit_cover(img, (200, 100)), img)


def test_solid_gradient_rgba():
    assert np.all(solid((1, 2, 3), (4, 3)) == (1, 2, 3))
    grad = vertical_gradient((0, 0, 0), (255, 255, 255), (4, 11))
    assert grad.shape == (11, 4, 3) and grad[0, 0, 0] == 0 and grad[-1, 0, 0] == 255
    assert np.all(np.diff(grad[:, 0, 0].astype(int)) >= 0)
    rgba = to_rgba8(np.full((2, 2, 3), 9, np.uint8), np.array([[0, 1], [0.5, 0.002]], np.float32))
    assert rgba.shape == (2, 2, 4)
    assert list(rgba[0, 0]) == [0, 0, 0, 0] and list(rgba[0, 1]) == [9, 9, 9, 255]
    assert rgba[1, 0, 3] == 128 and rgba[1, 1, 3] == 1
