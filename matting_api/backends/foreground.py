"""The subject's colour where it is see-through: a fast estimate by blur fusion.

Compositing a soft edge over a new background needs the subject's own colour ``F`` there,
not the photo's (which still holds the old background). The closed-form backend estimates
``F`` by pymatting's multi-level method (Germer et al. 2020), the best colours, but its cost
grows with the whole box around the edge: on a 640 x 480 video frame it takes two thirds of
the matting service's time. Video asks for the fast estimate instead (``foreground=fast``).

Blur fusion (the estimator of Forte & Pitié, "Approximate Fast Foreground Colour
Estimation", ICIP 2021): with box blurs of radius ``r`` written ``<.>``, the local means of
the foreground and background colours are

    F_r = <alpha F> / <alpha>,      B_r = <(1 - alpha) B> / <1 - alpha>,

and each pixel's foreground is corrected towards the compositing equation
``I = alpha F + (1 - alpha) B``:

    F = F_r + alpha (I - alpha F_r - (1 - alpha) B_r).

It runs twice: first with ``F = B = I`` and a wide radius (90 px at the paper's scale), then
with the first pass's ``F`` and ``B_r`` and a narrow one (6 px). A few box filters over the
box: about 5 ms on a 640 x 480 frame. Pure numpy / OpenCV.

Photos ask for the best estimate (``foreground=best``), :func:`estimate_foreground_best`:
pymatting's multi-level estimate at half resolution, its foreground and background upsampled
and corrected at full resolution by the same compositing-equation step,
``F = F_ml + alpha (I - alpha F_ml - (1 - alpha) B_ml)``. A quarter of the pixels for the
multi-level estimate (0.6x its time at 1 MP); on the dev photos it composites no worse than
the full-resolution estimate (``bench/refinement.py --foreground``, docs/photo_speed.md).
"""

from __future__ import annotations

import cv2
import numpy as np

#: The two passes' blur radii, px.
WIDE_RADIUS = 90
NARROW_RADIUS = 6
_EPS = 1e-5


#: Smallest side (px) at which the best estimate runs at half resolution.
HALF_RESOLUTION_FROM = 64


def _blur(x: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.blur(x, (size, size), borderType=cv2.BORDER_REFLECT)


def estimate_foreground_fast(image: np.ndarray, alpha: np.ndarray,
                             radii: tuple[int, int] = (WIDE_RADIUS, NARROW_RADIUS)) -> np.ndarray:
    """The subject's colour by blur fusion (see the module docstring).

    The blurs run over the whole array (OpenCV box filters: constant time per pixel); the
    correction only where ``0 < alpha < 1`` (elsewhere ``F`` is the photo: it is either the
    subject itself or invisible).

    Args:
        image: ``H x W x 3`` float in ``[0, 1]``.
        alpha: ``H x W`` float in ``[0, 1]``.
        radii: the two passes' box-blur radii, px.

    Returns:
        ``H x W x 3`` float32 in ``[0, 1]``; equal to ``image`` where ``alpha`` is 0 or 1.
    """
    image = np.asarray(image, dtype=np.float32)
    alpha = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
    fg = image.copy()
    soft = np.nonzero((alpha > 0.0) & (alpha < 1.0))
    if not soft[0].size:
        return fg
    a = alpha[soft][:, None]
    pixel = image[soft]
    fg_alpha = image * alpha[..., None]  # alpha F, with F = I at first
    bg_rest = image - fg_alpha  # (1 - alpha) B, with B = I at first
    for radius in radii:
        blurred_alpha = _blur(alpha, radius)
        fg_mean = _blur(fg_alpha, radius)[soft] / (blurred_alpha[soft][:, None] + _EPS)
        bg_mean = _blur(bg_rest, radius) / ((1.0 - blurred_alpha)[..., None] + _EPS)
        fg_soft = np.clip(fg_mean + a * (pixel - a * fg_mean - (1.0 - a) * bg_mean[soft]), 0.0, 1.0)
        fg[soft] = fg_soft
        fg_alpha[soft] = fg_soft * a  # the next pass blurs this pass's F ...
        bg_rest = bg_mean * (1.0 - alpha[..., None])  # ... and its mean background
    return fg


def estimate_foreground_best(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The subject's colour by pymatting's multi-level estimate (Germer et al. 2020) at half
    resolution, corrected at full resolution (see the module docstring); the full-resolution
    estimate below :data:`HALF_RESOLUTION_FROM` px.

    pymatting's kernel is numba ``parallel=True``: the caller sets its threads and keeps two
    threads out of it at once (:mod:`matting_api.backends.closed_form`).

    Args:
        image: ``H x W x 3`` float in ``[0, 1]``.
        alpha: ``H x W`` float in ``[0, 1]``.

    Returns:
        ``H x W x 3`` float32 in ``[0, 1]``; equal to ``image`` where ``alpha`` is 1.
    """
    from pymatting import estimate_foreground_ml

    image = np.asarray(image, dtype=np.float64)
    alpha = np.clip(np.asarray(alpha, dtype=np.float64), 0.0, 1.0)
    height, width = alpha.shape
    if min(height, width) < HALF_RESOLUTION_FROM:
        return np.clip(estimate_foreground_ml(image, alpha), 0.0, 1.0).astype(np.float32)
    size = ((width + 1) // 2, (height + 1) // 2)
    small_fg, small_bg = estimate_foreground_ml(
        cv2.resize(image, size, interpolation=cv2.INTER_AREA),
        cv2.resize(alpha, size, interpolation=cv2.INTER_AREA), return_background=True)
    fg = cv2.resize(small_fg.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    bg = cv2.resize(small_bg.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    a = alpha.astype(np.float32)[..., None]
    fg += a * (image.astype(np.float32) - a * fg - (1.0 - a) * bg)
    return np.clip(fg, 0.0, 1.0)
