"""The refinement band of a prior (trimap.from_prior): pure numpy on synthetic masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from masks import disc

from trimap.from_prior import PriorBand, band_radius, prior_trimap, transition_width


def test_binary_prior_gets_a_band_of_the_minimum_width_across_its_edge():
    prior = disc()
    assert transition_width(prior) == 0.0
    assert band_radius(prior) == PriorBand().min_px
    trimap = prior_trimap(prior)
    assert set(np.unique(trimap)) == {0, 128, 255}
    unknown = trimap == 128
    yy, xx = np.mgrid[:80, :80]
    dist = np.hypot(yy - 40, xx - 40)
    assert unknown[(dist > 22.5) & (dist < 25.5)].all()  # straddles the edge
    assert (trimap[dist < 20] == 255).all() and (trimap[dist > 28] == 0).all()


def test_band_follows_the_prior_transition_width():
    narrow, wide = disc(soft=4.0), disc(soft=12.0)
    assert transition_width(wide) == pytest.approx(3 * transition_width(narrow), rel=0.15)
    options = PriorBand(width_factor=0.5)
    assert band_radius(wide, options) > band_radius(narrow, options)
    assert (prior_trimap(wide) == 128).sum() > 2 * (prior_trimap(narrow) == 128).sum()


def test_band_scales_with_the_image():
    """The same prior at 2x resolution has a transition twice as wide, so twice the band."""
    small = disc(80, 24, soft=6.0)
    large = cv2.resize(small, (160, 160), interpolation=cv2.INTER_LINEAR)
    options = PriorBand(width_factor=1.0, min_px=0.5)
    assert band_radius(large, options) == pytest.approx(2 * band_radius(small, options), rel=0.15)


def test_soft_region_is_always_unknown_and_outside_the_prior_stands():
    prior = disc(soft=6.0)
    trimap = prior_trimap(prior)
    options = PriorBand()
    soft = (prior > options.low) & (prior < options.high)
    assert (trimap[soft] == 128).all()
    outside = trimap != 128
    assert ((trimap == 255)[outside] == (prior >= 0.5)[outside]).all()


def test_edge_cases():
    assert (prior_trimap(np.ones((10, 10), np.float32)) == 255).all()  # all subject
    assert (prior_trimap(np.zeros((10, 10), np.float32)) == 0).all()
    with pytest.raises(ValueError):
        PriorBand(low=0.6)
    with pytest.raises(ValueError):
        PriorBand(min_px=0)
