"""The ground-truth video bench's pure helpers: MAD and dtSSD by hand on tiny clips, the
objects' choice, the path, the cut-out, placing and compositing, the lossless round trip and
the message when the dev data is absent."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest

from bench import video_groundtruth as gt
from bench.temporal_metrics import dtssd, mad


def test_mad_is_the_mean_absolute_error_times_1000() -> None:
    truths = [np.zeros((2, 2)), np.ones((2, 2))]
    alphas = [np.array([[0.1, 0.0], [0.0, 0.3]]), np.array([[1.0, 1.0], [0.6, 1.0]])]
    # frame 0: (0.1 + 0.3) / 4 = 0.1; frame 1: 0.4 / 4 = 0.1
    assert mad(alphas, truths) == pytest.approx(100.0)
    assert mad(truths, truths) == 0.0
    assert mad([np.ones((3, 3), np.float32)], [np.zeros((3, 3), np.uint8)]) == pytest.approx(1000.0)
    with pytest.raises(ValueError):
        mad(alphas, truths[:1])


def test_dtssd_scores_the_change_not_the_error() -> None:
    truths = [np.zeros((2, 2)), np.full((2, 2), 0.5), np.full((2, 2), 0.5)]
    # wrong by the same 0.2 everywhere, in every frame: the error does not move, dtSSD 0
    steady_error = [t + 0.2 for t in truths]
    assert dtssd(steady_error, truths) == pytest.approx(0.0)
    assert mad(steady_error, truths) == pytest.approx(200.0)
    # pair 1: the matte changes by 0.5 on one pixel of 4 where the truth changes by 0.5
    # everywhere: differences (0, -0.5, -0.5, -0.5) -> sqrt(0.75 / 4); pair 2: one pixel
    # flickers by 0.4 -> sqrt(0.16 / 4) = 0.2
    alphas = [np.zeros((2, 2)), np.array([[0.5, 0.0], [0.0, 0.0]]), np.array([[0.5, 0.4], [0.0, 0.0]])]
    expected = 100 * (math.sqrt(0.75 / 4) + 0.2) / 2
    assert dtssd(alphas, truths) == pytest.approx(expected)
    assert dtssd(alphas[:1], truths[:1]) == 0.0
    with pytest.raises(ValueError):
        dtssd(alphas, truths[:2])


def test_pick_evenly_keeps_first_and_last() -> None:
    assert gt.pick_evenly(13, 5) == [0, 3, 6, 9, 12]
    assert gt.pick_evenly(13, 2) == [0, 12]
    assert gt.pick_evenly(13, 1) == [0]
    assert gt.pick_evenly(3, 6) == [0, 1, 2]


def test_pose_is_smooth_with_fast_and_slow_stretches_inside_the_frame() -> None:
    size = (640, 480)
    for index in range(6):
        poses = [gt.pose(t, index, size) for t in range(gt.PERIOD + 1)]
        steps = [math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(poses, poses[1:], strict=False)]
        assert max(steps) < 40  # smooth: no jump
        assert max(steps) > 4 * min(steps)  # fast and slow stretches
        for x, y, scale in poses:
            assert 0.25 * size[0] <= x <= 0.75 * size[0] and 0.3 * size[1] <= y <= 0.7 * size[1]
            assert 1 - gt.SCALE_SWING - 1e-9 <= scale <= 1 + gt.SCALE_SWING + 1e-9
        assert poses[0] == pytest.approx(poses[-1])  # one lap per PERIOD frames
    assert gt.pose(0, 0) != gt.pose(0, 1)  # objects start apart


def test_cut_out_crops_to_the_alpha_and_fits_the_frame_part() -> None:
    photo = np.zeros((100, 200, 3), np.uint8)
    photo[...] = (10, 20, 30)
    alpha = np.zeros((100, 200), np.uint8)
    alpha[20:60, 50:150] = 255  # a 100 x 40 box
    cut = gt.cut_out("box", photo, alpha, size=(640, 480), fill=0.5)
    # fits 320 x 240: width-bound, factor 3.2 -> 320 x 128
    assert cut.alpha.shape == (128, 320)
    assert cut.alpha.min() == pytest.approx(1.0) and cut.premultiplied.shape == (128, 320, 3)
    np.testing.assert_allclose(cut.premultiplied[64, 160], (10, 20, 30), atol=1e-3)
    with pytest.raises(ValueError):
        gt.cut_out("empty", photo, np.zeros((100, 200), np.uint8))


def test_place_and_composite() -> None:
    cut = gt.Cutout("square", np.full((10, 10, 3), 200.0, np.float32), np.ones((10, 10), np.float32))
    premultiplied, alpha = gt.place(cut, (32.0, 24.0, 1.0), size=(64, 48))
    assert alpha.shape == (48, 64) and alpha.sum() == pytest.approx(100.0, abs=1e-3)
    ys, xs = np.nonzero(alpha > 0.5)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (19, 28, 27, 36)  # centred at (32, 24)
    _, doubled = gt.place(cut, (32.0, 24.0, 1.08), size=(64, 48))
    assert doubled.sum() == pytest.approx(100.0 * 1.08**2, rel=0.02)
    background = np.full((48, 64, 3), 50, np.uint8)
    out = gt.composite(premultiplied, alpha, background)
    assert out.dtype == np.uint8
    assert (out[24, 32] == 200).all() and (out[0, 0] == 50).all()
    half = gt.composite(np.full((1, 1, 3), 100.0), np.full((1, 1), 0.5), np.full((1, 1, 3), 100, np.uint8))
    assert (half == 150).all()


def test_lossless_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    clip = tmp_path / "noise.mkv"
    gt.write_lossless(frames, clip)
    back = gt.read_back(clip, frames)
    assert all(np.array_equal(a, b) for a, b in zip(frames, back, strict=True))
    with pytest.raises(SystemExit):
        gt.read_back(clip, frames[:2])


def test_missing_dev_data_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--dev-dir"):
        gt.find_objects(tmp_path)


def test_methods_parse_in_table_order() -> None:
    assert gt.parse_methods("rvm, ours") == ("ours", "rvm")
    with pytest.raises(argparse.ArgumentTypeError):
        gt.parse_methods("ours,nope")


def test_table_shows_each_method_and_the_checks() -> None:
    row = {"frames": 2,
           "ours": {"mad": 5.0, "dtssd": 1.0, "fps": 4.0},
           "modnet": {"mad": 9.0, "dtssd": 3.0, "fps": 3.0},
           "rvm": {"mad": 7.0, "dtssd": 2.0, "fps": 20.0, "ratio": 0.5}}
    results = {"size": [640, 480], "frames": 2, "methods": list(gt.METHODS),
               "ours_options": {"backend": "u2netp"}, "clips": {"am_GT01": row},
               "mean": {m: {k: row[m][k] for k in ("mad", "dtssd", "fps")} for m in gt.METHODS}}
    text = gt.table(results)
    assert "| am_GT01 | 5.0 | 9.0 | 7.0 (0.5) | 1.00 | 3.00 | 2.00 (0.5) |" in text
    assert "| RVM (best ratio) | 7.0 | 2.00 | 20.0 |" in text
    assert "MODNet per frame's: yes" in text and "RVM's: yes" in text
