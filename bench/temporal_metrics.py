"""How steady a video matte is, without ground truth, and how right, with it (pure numpy).

Without ground truth, in alpha x 1000 (alpha in ``[0, 1]``), means over the frame pairs of a
clip:

* :func:`flicker`: mean ``|alpha_t - alpha_{t-1}|`` over the pixels whose colour did not
  change between the two frames (no channel by more than ``still_levels`` of 255: the
  compression noise of a still camera). A perfect matte of a still pixel does not change,
  so all of it is flicker.
* :func:`drift`: mean ``|smoothed_t - raw_t|`` over the pixels whose colour changed by
  ``moving_levels`` or more (every pixel that is not still): what temporal smoothing costs
  where the picture changes (0 = the smoothed matte follows the motion exactly; a lag shows
  up here). Counting only the clearly moving pixels (12 levels or more) would hide the lag
  of a filter that keeps smoothing faint motion.
* :func:`departures`: pixels per frame where the smoothed matte is more than 0.2 off the
  raw one: a mean hides a trail of a few hundred pixels behind a moving arm, this does not
  (it also counts the pixels where smoothing keeps a better alpha the raw matte lost: look
  at the frames).

With a true alpha per frame (composites: ``bench/video_groundtruth.py``), the two figures of
the Robust Video Matting paper: :func:`mad` (mean |alpha - true| x 1000) and :func:`dtssd`
(temporal coherence x 100).
"""

from __future__ import annotations

import numpy as np

#: A pixel is still when no channel changed by more than this (0..255).
STILL_LEVELS = 2
#: A pixel moves when some channel changed by at least this (0..255): any pixel not still.
MOVING_LEVELS = STILL_LEVELS + 1


def colour_change(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Largest change over the channels between two ``H x W x 3`` uint8 frames:
    ``H x W`` int16 in 0..255."""
    return np.abs(cur.astype(np.int16) - prev.astype(np.int16)).max(axis=2)


def flicker(frames: list[np.ndarray], alphas: list[np.ndarray],
            still_levels: int = STILL_LEVELS) -> float:
    """Mean alpha change x 1000 on still pixels (see the module doc).

    Args:
        frames: ``H x W x 3`` uint8 frames, in order.
        alphas: their ``H x W`` float alphas in ``[0, 1]``.
        still_levels: colour change (0..255) that still counts as none.
    """
    values = []
    for t in range(1, len(frames)):
        still = colour_change(frames[t - 1], frames[t]) <= still_levels
        if still.any():
            change = np.abs(alphas[t].astype(np.float64) - alphas[t - 1])
            values.append(float(change[still].mean()))
    return 1000.0 * float(np.mean(values)) if values else 0.0


def drift(frames: list[np.ndarray], raw: list[np.ndarray], smoothed: list[np.ndarray],
          moving_levels: int = MOVING_LEVELS) -> float:
    """Mean ``|smoothed - raw|`` x 1000 on moving pixels (see the module doc); same shapes
    as :func:`flicker`, ``raw`` and ``smoothed`` the alphas before and after smoothing."""
    values = []
    for t in range(1, len(frames)):
        moving = colour_change(frames[t - 1], frames[t]) >= moving_levels
        if moving.any():
            gap = np.abs(smoothed[t].astype(np.float64) - raw[t])
            values.append(float(gap[moving].mean()))
    return 1000.0 * float(np.mean(values)) if values else 0.0


#: How far from the raw alpha a smoothed pixel counts as departed.
DEPARTED = 0.2


def departures(raw: list[np.ndarray], smoothed: list[np.ndarray], threshold: float = DEPARTED) -> float:
    """Mean number of pixels per frame (after the first) with ``|smoothed - raw| > threshold``."""
    counts = [int((np.abs(s.astype(np.float64) - r) > threshold).sum())
              for r, s in zip(raw[1:], smoothed[1:], strict=True)]
    return float(np.mean(counts)) if counts else 0.0


# With ground truth (the protocol of the Robust Video Matting paper, Lin et al. 2021).


def mad(alphas: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """Mean absolute difference x 1000: ``1000 * mean_t mean_pixels |alpha_t - true_t|``.

    Args:
        alphas: the predicted ``H x W`` float alphas in ``[0, 1]``, one per frame.
        truths: the true ``H x W`` float alphas in ``[0, 1]`` of the same frames.

    Returns:
        0 for a perfect matte; 1000 when every pixel is wrong by 1 (0 for an empty clip).
    """
    if len(alphas) != len(truths):
        raise ValueError(f"{len(alphas)} alphas for {len(truths)} true alphas")
    values = [float(np.abs(a.astype(np.float64) - g).mean()) for a, g in zip(alphas, truths, strict=True)]
    return 1000.0 * float(np.mean(values)) if values else 0.0


def dtssd(alphas: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """Temporal coherence (dtSSD of the RVM paper) x 100: how much the matte's change from one
    frame to the next differs from the true alpha's change::

        dtSSD_t = sqrt( mean_pixels( ((a_t - a_{t-1}) - (g_t - g_{t-1}))^2 ) )
        dtSSD   = 100 * mean_{t = 1 .. T-1} dtSSD_t

    with ``a`` the predicted and ``g`` the true alpha in ``[0, 1]``. A matte that is wrong by
    the same amount in every frame scores 0 (the error does not move); flicker and lag score
    above 0. Same shapes as :func:`mad`; 0 for fewer than 2 frames.
    """
    if len(alphas) != len(truths):
        raise ValueError(f"{len(alphas)} alphas for {len(truths)} true alphas")
    values = []
    for t in range(1, len(alphas)):
        pred = alphas[t].astype(np.float64) - alphas[t - 1]
        true = truths[t].astype(np.float64) - truths[t - 1]
        values.append(float(np.sqrt(np.mean((pred - true) ** 2))))
    return 100.0 * float(np.mean(values)) if values else 0.0
