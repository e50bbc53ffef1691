"""The trimap builder on synthetic masks: pure numpy, no model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trimap.from_masks import (
    BACKGROUND,
    FOREGROUND,
    UNKNOWN,
    TrimapOptions,
    band_half_width,
    build_trimap,
    combine_masks,
)


def disk(size: int, radius: float, center: tuple[float, float] | None = None) -> np.ndarray:
    """``size x size`` float32 binary disk."""
    cy, cx = center if center is not None else (size / 2, size / 2)
    yy, xx = np.mgrid[:size, :size]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2).astype(np.float32)


def soft_disk(size: int, radius: float, ramp: float) -> np.ndarray:
    """A disk whose value falls linearly from 1 to 0 over ``ramp`` px around ``radius``."""
    yy, xx = np.mgrid[:size, :size]
    dist = np.hypot(yy - size / 2, xx - size / 2)
    return np.clip(0.5 - (dist - radius) / ramp, 0.0, 1.0).astype(np.float32)


def check_valid(trimap: np.ndarray, mask: np.ndarray, options: TrimapOptions) -> None:
    assert trimap.dtype == np.uint8 and trimap.shape == mask.shape
    assert set(np.unique(trimap)) <= {BACKGROUND, UNKNOWN, FOREGROUND}
    assert (trimap == FOREGROUND).any()
    # nothing the mask calls at all likely is background; nothing unsure is foreground
    assert not (trimap[mask >= options.bg_threshold] == BACKGROUND).any()
    assert (mask[trimap == FOREGROUND] >= options.fg_threshold).all()


def test_binary_mask_gets_a_band_on_both_sides_of_its_edge():
    mask = disk(256, 60)
    result = build_trimap(mask)
    assert result is not None
    check_valid(result.trimap, mask, TrimapOptions())
    r = result.band_px
    assert r == pytest.approx(0.03 * math.sqrt(mask.sum()))
    row = result.trimap[128]
    edge = 128 + 60  # last column inside the disk on the centre row
    assert row[128] == FOREGROUND
    assert row[edge] == UNKNOWN and row[edge - int(r) + 1] == UNKNOWN  # inside the contour
    assert row[edge + 1] == UNKNOWN and row[edge + int(r)] == UNKNOWN  # outside it
    assert row[edge - int(r) - 2] == FOREGROUND
    assert row[edge + int(r) + 2] == BACKGROUND
    assert result.trimap[0, 0] == BACKGROUND


def test_soft_mask_uncertain_region_is_unknown_and_dilated():
    mask = soft_disk(256, radius=60, ramp=30)
    options = TrimapOptions()
    result = build_trimap(mask, options)
    assert result is not None
    check_valid(result.trimap, mask, options)
    uncertain = (mask >= options.bg_threshold) & (mask < options.fg_threshold)
    assert (result.trimap[uncertain] == UNKNOWN).all()
    # dilated: pixels just below bg_threshold but within r of the uncertain ring are unknown
    row, r = result.trimap[128], result.band_px
    # last column where the ramp (0.5 at the radius, 1/30 per px) is still >= bg_threshold
    outer = 128 + 60 + math.floor((0.5 - options.bg_threshold) * 30)
    assert row[outer + int(r) - 1] == UNKNOWN
    assert row[outer + int(r) + 2] == BACKGROUND
    assert row[128] == FOREGROUND


def test_thresholds_are_configurable():
    mask = soft_disk(256, radius=60, ramp=30)
    narrow = build_trimap(mask, TrimapOptions(fg_threshold=0.6, bg_threshold=0.4))
    wide = build_trimap(mask, TrimapOptions(fg_threshold=0.95, bg_threshold=0.05))
    assert narrow is not None and wide is not None
    assert (narrow.trimap == FOREGROUND).sum() > (wide.trimap == FOREGROUND).sum()
    assert (narrow.trimap == UNKNOWN).sum() < (wide.trimap == UNKNOWN).sum()


def test_band_scales_with_subject_size():
    small = build_trimap(disk(512, 40))
    large = build_trimap(disk(512, 160))
    assert small is not None and large is not None
    assert large.band_px / small.band_px == pytest.approx(4.0, rel=0.02)
    # the same framing at twice the resolution gets twice the band
    hires = build_trimap(disk(1024, 320))
    assert hires is not None
    assert hires.band_px / large.band_px == pytest.approx(2.0, rel=0.02)


def test_band_factor_and_clamps():
    options = TrimapOptions()
    assert band_half_width(100 * 100, 1000, 1000, options) == pytest.approx(3.0)
    assert band_half_width(100 * 100, 1000, 1000, TrimapOptions(band=2.0)) == pytest.approx(6.0)
    assert band_half_width(10, 1000, 1000, options) == pytest.approx(options.min_band_px)
    assert band_half_width(1000 * 1000, 100, 1000, options) == pytest.approx(0.06 * 100)
    assert band_half_width(100 * 100, 1000, 1000, TrimapOptions(band=0.01)) == 1.0
    doubled = build_trimap(disk(256, 60), TrimapOptions(band=2.0))
    single = build_trimap(disk(256, 60))
    assert doubled is not None and single is not None
    assert (doubled.trimap == UNKNOWN).sum() > 1.8 * (single.trimap == UNKNOWN).sum()


def test_tiny_band_factor_still_leaves_a_band_around_a_binary_mask():
    mask = disk(128, 30)
    result = build_trimap(mask, TrimapOptions(band=0.001))
    assert result is not None and result.band_px == 1.0
    row = result.trimap[64]
    assert row[64 + 30] == UNKNOWN and row[64 + 31] == UNKNOWN


def test_several_instances_combine_with_maximum_not_sum():
    a = np.zeros((100, 100), np.float32)
    b = np.zeros((100, 100), np.float32)
    a[20:80, 10:60] = 0.5
    b[20:80, 40:90] = 0.5
    a[40:60, 15:25] = 1.0  # a sure core so a trimap exists
    combined = combine_masks(np.stack([a, b]))
    assert combined[50, 50] == pytest.approx(0.5)  # a sum would say 1.0
    assert combined.dtype == np.float32
    result = build_trimap(np.stack([a, b]))
    assert result is not None
    assert result.trimap[50, 50] == UNKNOWN  # overlap of two half-sure masks stays unsure
    grow = math.floor(result.band_px)  # the unknown band reaches r px beyond the masks
    assert result.box == (10 - grow, 20 - grow, 80 + 2 * grow, 60 + 2 * grow)


def test_tiny_subject_keeps_a_foreground_pixel():
    mask = np.zeros((100, 100), np.float32)
    mask[50:53, 70:73] = 1.0
    result = build_trimap(mask)
    assert result is not None
    assert result.band_px == pytest.approx(2.0)
    assert result.trimap[51, 71] == FOREGROUND
    assert (result.trimap == FOREGROUND).sum() >= 1
    left, top, width, height = result.box
    assert left <= 70 and top <= 50 and left + width >= 73 and top + height >= 53
    check_valid(result.trimap, mask, TrimapOptions())


@pytest.mark.parametrize("masks", [
    np.zeros((2, 40, 50), np.float32),
    np.zeros((0, 40, 50), np.float32),
    np.full((1, 40, 50), 0.4, np.float32),
])
def test_no_subject_gives_none(masks):
    assert build_trimap(masks) is None


def test_subject_touching_the_border_keeps_foreground_up_to_the_edge():
    mask = np.zeros((120, 100), np.float32)
    mask[60:, 20:80] = 1.0  # a body cut by the bottom of the frame
    result = build_trimap(mask)
    assert result is not None
    assert result.trimap[119, 50] == FOREGROUND  # the frame does not erode
    assert result.trimap[60, 50] == UNKNOWN  # the real edge does
    left, top, width, height = result.box
    assert top + height == 120


def test_thin_stripe_becomes_unknown_never_background():
    mask = disk(256, 50, center=(128, 80))
    mask[126:129, 130:250] = 1.0  # a 3 px "finger" sticking out of the body
    result = build_trimap(mask)
    assert result is not None
    assert result.band_px > 2
    stripe = result.trimap[126:129, 140:250]
    assert (stripe == UNKNOWN).all()
    assert result.trimap[110, 200] == BACKGROUND  # well beside the stripe
    check_valid(result.trimap, mask, TrimapOptions())


def test_whole_frame_subject_is_all_foreground():
    result = build_trimap(np.ones((30, 40), np.float32))
    assert result is not None
    assert (result.trimap == FOREGROUND).all()
    assert result.box == (0, 0, 40, 30)


def test_random_soft_masks_keep_the_invariants():
    rng = np.random.default_rng(0)
    options = TrimapOptions(fg_threshold=0.8, bg_threshold=0.2, band=1.5)
    for _ in range(5):
        blobs = rng.random((3, 12, 16)).astype(np.float32)
        masks = np.stack([np.kron(b, np.ones((8, 8), np.float32)) for b in blobs])
        result = build_trimap(masks, options)
        assert result is not None
        check_valid(result.trimap, masks.max(axis=0), options)
        non_bg = np.argwhere(result.trimap > 0)
        top, left = non_bg.min(axis=0)
        bottom, right = non_bg.max(axis=0)
        assert result.box == (left, top, right - left + 1, bottom - top + 1)


def test_mask_values_outside_the_range_are_cleaned():
    mask = disk(64, 20) * 3.0
    mask[0, 0] = np.nan
    mask[0, 1] = -2.0
    combined = combine_masks(mask)
    assert combined.max() == 1.0 and combined.min() == 0.0


@pytest.mark.parametrize("kwargs", [
    {"fg_threshold": 0.1, "bg_threshold": 0.1},
    {"fg_threshold": 1.5},
    {"bg_threshold": 0.0},
    {"band": 0.0},
    {"band": float("nan")},
])
def test_invalid_options_are_refused(kwargs):
    with pytest.raises(ValueError):
        TrimapOptions(**kwargs)


def test_masks_must_be_two_or_three_dimensional():
    with pytest.raises(ValueError):
        combine_masks(np.zeros((1, 2, 3, 4), np.float32))
