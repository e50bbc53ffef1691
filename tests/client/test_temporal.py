"""Temporal smoothing of alpha (pure numpy, synthetic frames)."""

from __future__ import annotations

import numpy as np
import pytest

from client.temporal import AlphaSmoother, still_weight

H, W = 24, 32


def _frames(n: int, moving: bool) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.full((H, W, 3), 60, np.uint8)
        x = 4 + (3 * i if moving else 0)
        f[6:18, x:x + 10] = 220
        frames.append(f)
    return frames


def _jittery_alpha(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = np.zeros((H, W), np.float32)
    base[6:18, 4:14] = 1.0
    base[5, 4:14] = base[18, 4:14] = 0.5  # an edge band
    return [np.clip(base + rng.normal(0, 0.1, base.shape).astype(np.float32) * (base > 0), 0, 1)
            for _ in range(n)]


def _mean_change(alphas: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(b - a).mean() for a, b in zip(alphas, alphas[1:], strict=False)]))


def test_still_weight_is_one_when_static_zero_when_moving():
    a, b = _frames(2, moving=True)
    w = still_weight(a, a, 12.0)
    assert w.shape == (H, W) and w.dtype == np.float32 and np.all(w == 1.0)
    w = still_weight(a, b, 12.0)
    assert w[12, 6] == 0.0  # the block left this pixel
    assert w[0, 0] == 1.0


def test_smoothing_reduces_flicker_on_a_still_subject():
    frames, alphas = _frames(12, moving=False), _jittery_alpha(12)
    fg = np.full((H, W, 3), 220, np.uint8)
    smoother = AlphaSmoother(strength=0.6)
    out = [smoother(f, fg, a)[1] for f, a in zip(frames, alphas, strict=True)]
    assert _mean_change(out) < 0.6 * _mean_change(alphas)
    assert all(o.dtype == np.float32 and o.min() >= 0 and o.max() <= 1 for o in out)


def test_moving_pixels_are_not_smoothed():
    frames = _frames(2, moving=True)
    fg = np.full((H, W, 3), 220, np.uint8)
    a0 = np.zeros((H, W), np.float32)
    a0[6:18, 4:14] = 1
    a1 = np.zeros((H, W), np.float32)
    a1[6:18, 7:17] = 1
    smoother = AlphaSmoother(strength=0.9)
    smoother(frames[0], fg, a0)
    _, out = smoother(frames[1], fg, a1)
    # where the block moved in and out, the new alpha is taken as is
    assert out[12, 15] == 1.0 and out[12, 5] == 0.0


def test_colour_is_kept_where_the_new_alpha_vanishes():
    frame = _frames(1, moving=False)[0]
    fg0 = np.full((H, W, 3), (10, 200, 30), np.uint8)
    black = np.zeros((H, W, 3), np.uint8)  # what the service sends where alpha is 0
    smoother = AlphaSmoother(strength=0.5)
    smoother(frame, fg0, np.ones((H, W), np.float32))
    fg, alpha = smoother(frame, black, np.zeros((H, W), np.float32))
    assert np.allclose(alpha, 0.5)
    assert np.all(fg == (10, 200, 30))  # not darkened towards black


def test_strength_zero_is_identity_and_bad_values_refused():
    frame = _frames(1, moving=False)[0]
    fg = np.full((H, W, 3), 100, np.uint8)
    a = _jittery_alpha(1)[0]
    smoother = AlphaSmoother(strength=0.0)
    smoother(frame, fg, 1 - a)
    out_fg, out_a = smoother(frame, fg, a)
    assert np.array_equal(out_a, a)
    assert np.array_equal(out_fg[a > 0], fg[a > 0])
    with pytest.raises(ValueError):
        AlphaSmoother(strength=1.0)


def test_camera_noise_counts_as_still_and_motion_as_motion():
    """Noise within ``noise`` levels gets the full strength; a change of ``motion_threshold``
    or more (in any one channel) none; in between, linearly less."""
    rng = np.random.default_rng(3)
    a = rng.integers(60, 200, (H, W, 3), dtype=np.uint8)
    noisy = np.clip(a.astype(int) + rng.integers(-2, 3, a.shape), 0, 255).astype(np.uint8)
    assert np.all(still_weight(a, noisy, 8.0, noise=3.0) == 1.0)
    assert still_weight(a, noisy, 8.0, noise=0.0).mean() < 0.9  # without the dead zone
    red = a.copy()
    red[..., 0] = np.clip(a[..., 0].astype(int) + 40, 0, 255)  # one channel changes a lot
    assert np.all(still_weight(a, red, 8.0, noise=3.0) == 0.0)
    one = a.copy()
    one[10, 10] = (a[10, 10].astype(int) + 100) % 256  # one pixel moves: its neighbours stay still
    w = still_weight(a, one, 8.0, noise=2.0)
    assert w[10, 10] == 0.0 and (w == 1.0).sum() == H * W - 1
    with pytest.raises(ValueError):
        AlphaSmoother(noise=8.0, motion_threshold=8.0)


def test_generated_clip_flickers_less_and_its_moving_edge_does_not_lag():
    """A subject that stands still for 10 frames (jittery alpha, noisy frames), then moves
    right 2 px per frame: flicker on the still part falls well below the raw one, and once it
    moves every moving pixel takes the new alpha at once (no ghost of the old position)."""
    rng = np.random.default_rng(5)
    frames, alphas = [], []
    for i in range(20):
        x = 2 + max(0, i - 10) * 2
        f = np.full((H, W, 3), 60, np.uint8)
        f[6:18, x:x + 10] = 220
        frames.append(np.clip(f.astype(int) + rng.integers(-2, 3, f.shape), 0, 255).astype(np.uint8))
        a = np.zeros((H, W), np.float32)
        a[6:18, x:x + 10] = 1.0
        a[6:18, x] = a[6:18, x + 9] = 0.5 + rng.normal(0, 0.15, 12).clip(-0.4, 0.4)  # edges
        alphas.append(a)
    smoother = AlphaSmoother()  # the video client's defaults
    fg = np.full((H, W, 3), 220, np.uint8)
    out = [smoother(f, fg, a)[1] for f, a in zip(frames, alphas, strict=True)]
    assert _mean_change(out[:10]) < 0.3 * _mean_change(alphas[:10])
    for i in range(11, 20):
        moved = np.abs(frames[i].astype(int) - frames[i - 1].astype(int)).max(axis=2) >= 100
        assert moved.any()
        assert np.abs(out[i] - alphas[i])[moved].max() < 1e-6


def test_a_restored_state_continues_exactly():
    """What a resumed video job relies on: state() after frame k, restore() into a new
    smoother, and frames k+1.. come out as from the one smoother."""
    frames, alphas = _frames(8, moving=False), _jittery_alpha(8, seed=2)
    fg = np.full((H, W, 3), 220, np.uint8)
    one = AlphaSmoother()
    straight = [one(f, fg, a) for f, a in zip(frames, alphas, strict=True)]
    first = AlphaSmoother()
    assert first.state() is None
    for f, a in zip(frames[:5], alphas[:5], strict=True):
        first(f, fg, a)
    second = AlphaSmoother()
    second.restore({k: v.copy() for k, v in first.state().items()})
    for (f, a), (want_fg, want_a) in zip(zip(frames[5:], alphas[5:], strict=True), straight[5:],
                                         strict=True):
        got_fg, got_a = second(f, fg, a)
        assert np.array_equal(got_a, want_a) and np.array_equal(got_fg, want_fg)
    second.restore(None)
    assert second.state() is None


def test_an_edge_of_nearly_the_background_colour_leaves_no_trail():
    """A subject whose right half has almost the background's colour (4 levels apart, under
    the motion threshold) moves right: its alpha jumps there next to the moving bright half,
    so the new alpha is taken (no trail of the old position), while a faint alpha wobble on
    still pixels far from the motion is still smoothed."""
    frames, alphas = [], []
    for i in range(6):
        x = 4 + 2 * i
        f = np.full((H, W, 3), 100, np.uint8)
        f[6:18, x:x + 5] = 220  # bright left half
        f[6:18, x + 5:x + 10] = 104  # dim right half
        frames.append(f)
        a = np.zeros((H, W), np.float32)
        a[6:18, x:x + 10] = 1.0
        a[20:, :] = 0.02 * (i % 2)  # flicker on still pixels, far below the subject
        alphas.append(a)
    fg = np.full((H, W, 3), 220, np.uint8)
    smoother = AlphaSmoother()
    out = [smoother(f, fg, a)[1] for f, a in zip(frames, alphas, strict=True)]
    for i in range(1, 6):
        assert np.abs(out[i][:20] - alphas[i][:20]).max() < 1e-6  # follows the moving subject
    assert _mean_change([o[20:] for o in out]) < 0.3 * _mean_change([a[20:] for a in alphas])
    plain = AlphaSmoother(jump=2.0)  # without the jump rule: the dim half leaves a trail
    trail = [plain(f, fg, a)[1] for f, a in zip(frames, alphas, strict=True)]
    assert max(np.abs(t[:20] - a[:20]).max() for t, a in zip(trail, alphas, strict=True)) > 0.3
