"""Matte quality metrics with the conventions of the Deep Image Matting evaluation.

All functions take alpha mattes as ``H x W`` float arrays in [0, 1] (predicted and ground
truth) and an optional boolean ``region`` mask (the trimap's unknown pixels for the
matting-stage figures; ``None`` = the whole image). Scales, as commonly reported:

* SAD: sum of absolute differences / 1000;
* MSE: mean squared difference over the region x 1000;
* Grad: sum over the region of the squared difference of gradient magnitudes, gradients
  from first-derivative-of-Gaussian filters (sigma 1.4, filter L2-normalised), / 1000;
* Conn: connectivity error with threshold step 0.1 (4-connected components, as the
  reference ``bwconncomp(..., 4)``), / 1000;
* IoU of the mattes thresholded at 0.5 (segmentation quality).

The reference Grad also stretches each matte to [0, 1] (``mat2gray``) first; that is the
identity for mattes holding both 0 and 1 (every ground truth here, and every prediction
that keeps a trimap's known regions), so it is left out.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _region(shape: tuple[int, ...], region: np.ndarray | None) -> np.ndarray:
    if region is None:
        return np.ones(shape, dtype=bool)
    if region.shape != shape:
        raise ValueError(f"region shape {region.shape} != alpha shape {shape}")
    return region.astype(bool)


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"expected two H x W mattes of one size, got {pred.shape} and {gt.shape}")
    return pred.astype(np.float64), gt.astype(np.float64)


def sad(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> float:
    """Sum of absolute differences over ``region``, divided by 1000."""
    pred, gt = _check(pred, gt)
    return float(np.abs(pred - gt)[_region(gt.shape, region)].sum() / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean squared difference over ``region``, times 1000 (0 for an empty region)."""
    pred, gt = _check(pred, gt)
    mask = _region(gt.shape, region)
    n = int(mask.sum())
    return float(((pred - gt) ** 2)[mask].sum() / n * 1000.0) if n else 0.0


def gaussian_derivative_filters(sigma: float = 1.4, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """The (hx, hy) first-derivative-of-Gaussian kernels of the DIM evaluation.

    Half size ``ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma epsilon)))``;
    ``hx[i, j] = g(i) * dg(j)`` with ``g`` the Gaussian and ``dg`` its derivative, scaled to
    unit L2 norm; ``hy = hx.T``.
    """
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * epsilon))))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2)) / (sigma * np.sqrt(2.0 * np.pi))
    dg = -x * g / sigma**2
    hx = np.outer(g, dg)
    hx /= np.sqrt((hx**2).sum())
    return hx, hx.T.copy()


def gradient_magnitude(alpha: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """``H x W`` gradient magnitude with the DIM filters (convolution, replicated border)."""
    hx, hy = gaussian_derivative_filters(sigma)
    gx = ndimage.convolve(alpha.astype(np.float64), hx, mode="nearest")
    gy = ndimage.convolve(alpha.astype(np.float64), hy, mode="nearest")
    return np.sqrt(gx**2 + gy**2)


def grad(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None, sigma: float = 1.4) -> float:
    """Gradient error over ``region``, divided by 1000."""
    pred, gt = _check(pred, gt)
    diff = (gradient_magnitude(pred, sigma) - gradient_magnitude(gt, sigma)) ** 2
    return float(diff[_region(gt.shape, region)].sum() / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean ``H x W`` mask (first one on ties)."""
    labels, count = ndimage.label(mask)  # default structure: 4-connected
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def conn(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None, step: float = 0.1) -> float:
    """Connectivity error over ``region`` (threshold step ``step``), divided by 1000.

    For each threshold t in (step, 2 step, ..., 1), the largest 4-connected component of
    ``pred >= t and gt >= t`` is found; a pixel's level ``l`` is the last threshold before
    it dropped out of that component (1 if it never did). Then
    ``phi = 1 - d * (d >= 0.15)`` with ``d = alpha - l``, and the error is the sum of
    ``|phi_pred - phi_gt|``.

    The thresholds are the exact decimals ``i * step`` (rounded to 10 places): with plain
    ``np.arange`` the 7th is 0.6000000000000001, which an 8-bit alpha of 153 (= 0.6) fails.
    """
    pred, gt = _check(pred, gt)
    count = int(np.floor(1.0 / step + 1e-9))
    thresholds = np.round(np.arange(count + 1) * step, 10)
    level = -np.ones_like(gt)
    for i in range(1, len(thresholds)):
        omega = _largest_component((pred >= thresholds[i]) & (gt >= thresholds[i]))
        level[(level == -1) & ~omega] = thresholds[i - 1]
    level[level == -1] = 1.0
    d_pred, d_gt = pred - level, gt - level
    phi_pred = 1.0 - d_pred * (d_pred >= 0.15)
    phi_gt = 1.0 - d_gt * (d_gt >= 0.15)
    return float(np.abs(phi_pred - phi_gt)[_region(gt.shape, region)].sum() / 1000.0)


def iou(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of ``pred > threshold`` and ``gt > threshold`` (1.0 if both empty)."""
    pred, gt = _check(pred, gt)
    p, g = pred > threshold, gt > threshold
    union = int((p | g).sum())
    return float((p & g).sum() / union) if union else 1.0


def all_metrics(pred: np.ndarray, gt: np.ndarray, region: np.ndarray | None = None) -> dict[str, float]:
    """SAD, MSE, Grad, Conn over ``region`` and IoU over the whole image."""
    return {
        "sad": sad(pred, gt, region),
        "mse": mse(pred, gt, region),
        "grad": grad(pred, gt, region),
        "conn": conn(pred, gt, region),
        "iou": iou(pred, gt),
    }
