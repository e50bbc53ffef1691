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
with the first pass's ``F`` and ``B_r`` and a narrow one (6 px). Two shortcuts, each below
1/255 of the full computation on video frames:

* the wide pass runs on a grid :data:`WIDE_PASS_SCALE` times coarser (its means are
  averages over 181 px: they hardly change from one pixel to the next), and its ``F_r``
  and ``B_r`` are sampled bilinearly at the soft pixels only;
* the narrow pass keeps the wide pass's ``B_r`` (a mean over 181 px is close to constant
  over the narrow 13 px box, where ``<(1 - alpha) B_r> / <1 - alpha>`` is ``B_r`` itself) and
  blurs only ``alpha`` and ``alpha F``.

On 11 frames of asl_thanks with the selfie model's matte (a 454 x 280 box, one core) that
is 4.8 ms against 10.2 for the plain two passes, their ``F`` 0.09/255 apart on average
(weighted by alpha, at most 0.6/255). Pure numpy / OpenCV.

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
#: The wide pass runs on a grid this many times coarser.
WIDE_PASS_SCALE = 4
_EPS = 1e-5


#: Smallest side (px) at which the best estimate runs at half resolution.
HALF_RESOLUTION_FROM = 64


def _blur(x: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.blur(x, (size, size), borderType=cv2.BORDER_REFLECT)


#: ``cv2.remap`` takes maps and sources under 32,767 px a side.
_REMAP_MAX_SIDE = 32_000


def _sample(field: np.ndarray, ys: np.ndarray, xs: np.ndarray, full: tuple[int, int]) -> np.ndarray:
    """Bilinear samples of ``field`` (``h x w x 3`` float32, a coarser grid over an image of
    ``full`` = ``(H, W)`` px) at the full-resolution pixels ``(ys, xs)`` (``N`` each), as
    ``cv2.resize`` to ``W x H`` would give them there, the border repeated: ``N x 3``
    float32. ``cv2.remap`` over the points laid out in rows of at most 16,384; numpy's
    gathers (1.6x the time) for a field too wide for it."""
    height, width = field.shape[:2]
    fx = (xs.astype(np.float32) + 0.5) * np.float32(width / full[1]) - 0.5
    fy = (ys.astype(np.float32) + 0.5) * np.float32(height / full[0]) - 0.5
    if max(height, width) < _REMAP_MAX_SIDE:
        n = fx.size
        cols = min(n, 16_384)
        rows = -(-n // cols)
        maps = np.zeros((2, rows * cols), np.float32)
        maps[0, :n], maps[1, :n] = fx, fy
        out = cv2.remap(field, maps[0].reshape(rows, cols), maps[1].reshape(rows, cols),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(-1, field.shape[2])[:n]
    fx, fy = np.clip(fx, 0.0, width - 1), np.clip(fy, 0.0, height - 1)
    x0, y0 = fx.astype(np.intp), fy.astype(np.intp)  # floor: both are >= 0
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    wx, wy = (fx - x0)[:, None], (fy - y0)[:, None]
    top = field[y0, x0] + wx * (field[y0, x1] - field[y0, x0])
    bottom = field[y1, x0] + wx * (field[y1, x1] - field[y1, x0])
    return top + wy * (bottom - top)


def estimate_foreground_fast(image: np.ndarray, alpha: np.ndarray,
                             radii: tuple[int, int] = (WIDE_RADIUS, NARROW_RADIUS)) -> np.ndarray:
    """The subject's colour by blur fusion (see the module docstring).

    The blurs run over the whole array (OpenCV box filters: constant time per pixel; the
    wide one on a grid :data:`WIDE_PASS_SCALE` times coarser); the correction only where
    ``0 < alpha < 1`` (elsewhere ``F`` is the photo: it is either the subject itself or
    invisible).

    Args:
        image: ``H x W x 3`` float in ``[0, 1]``.
        alpha: ``H x W`` float in ``[0, 1]``.
        radii: the two passes' box-blur radii, px (the wide one at full resolution).

    Returns:
        ``H x W x 3`` float32 in ``[0, 1]``; equal to ``image`` where ``alpha`` is 0 or 1.
    """
    image = np.asarray(image, dtype=np.float32)
    alpha = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
    fg = image.copy()
    ys, xs = np.nonzero((alpha > 0.0) & (alpha < 1.0))
    if not ys.size:
        return fg
    a = alpha[ys, xs][:, None]
    pixel = image[ys, xs]
    height, width = alpha.shape
    # the wide pass, F = B = I: the local means on the coarse grid, sampled at the soft pixels
    coarse = (-(-width // WIDE_PASS_SCALE), -(-height // WIDE_PASS_SCALE))
    small_alpha = cv2.resize(alpha, coarse, interpolation=cv2.INTER_AREA)
    small_image = cv2.resize(image, coarse, interpolation=cv2.INTER_AREA)
    radius = max(1, round(radii[0] / WIDE_PASS_SCALE))
    blurred_alpha = _blur(small_alpha, radius)[..., None]
    blurred_fg = _blur(small_image * small_alpha[..., None], radius)
    fg_mean = _sample(blurred_fg / (blurred_alpha + _EPS), ys, xs, alpha.shape)
    bg_mean = _sample((_blur(small_image, radius) - blurred_fg) / (1.0 - blurred_alpha + _EPS),
                      ys, xs, alpha.shape)
    fg_soft = np.clip(fg_mean + a * (pixel - a * fg_mean - (1.0 - a) * bg_mean), 0.0, 1.0)
    # the narrow pass, full resolution: this F's local mean, the wide pass's B_r
    fg_alpha = image * alpha[..., None]
    fg_alpha[ys, xs] = fg_soft * a
    blurred_alpha = _blur(alpha, radii[1])[ys, xs][:, None]
    fg_mean = _blur(fg_alpha, radii[1])[ys, xs] / (blurred_alpha + _EPS)
    fg[ys, xs] = np.clip(fg_mean + a * (pixel - a * fg_mean - (1.0 - a) * bg_mean), 0.0, 1.0)
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
        ``H x W x 3`` float32 in ``[0, 1]``; equal to ``image`` where ``alpha`` is 1 (and,
        from :data:`HALF_RESOLUTION_FROM` px, where it is 0).
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
    fg = image.astype(np.float32)
    ys, xs = np.nonzero((alpha > 0.0) & (alpha < 1.0))
    if not ys.size:
        return fg
    # upsampled and corrected only at the soft pixels: elsewhere F is the photo (the subject
    # itself, or invisible); the whole frame's resizes and correction were half the time
    a = alpha[ys, xs].astype(np.float32)[:, None]
    f_ml = _sample(small_fg.astype(np.float32), ys, xs, alpha.shape)
    b_ml = _sample(small_bg.astype(np.float32), ys, xs, alpha.shape)
    fg[ys, xs] = np.clip(f_ml + a * (fg[ys, xs] - a * f_ml - (1.0 - a) * b_ml), 0.0, 1.0)
    return fg
