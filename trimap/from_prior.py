"""The segmentation's soft mask as the matting stage's prior: where to refine it.

Pure numpy / OpenCV; no HTTP, no torch. The matting service receives the subjects' soft
mask ``p`` (``H x W`` float in ``[0, 1]``, from ``/v1/mask``) and derives one trimap from it,
used by every matting backend: the closed-form refinement solves for alpha in the trimap's
unknown band with a data term pulling towards ``p`` (:mod:`matting_api.backends.cf_solver`),
FBA Matting runs on the same trimap. Outside the band the prior stands, snapped to 0 / 1.

The band (:func:`prior_trimap`):

1. **seed**: the prior's own soft region, ``low < p < high``, plus the edge of its decision
   ``p >= 0.5`` (the pixels on either side of its boundary), so that even a binary mask
   gets a band;
2. **width**: the seed dilated by ``r`` px, ``r = max(min_px, width_factor * w)``, where
   ``w`` (:func:`transition_width`) is the prior's mean transition width: pixels of the
   soft region per pixel of the edge (the edge counts both sides, so ``w`` is about half
   the width of a linear ramp). A model run at a fraction of the photo's resolution
   and upsampled has transitions as many times wider, so the band scales with the image
   (MODNet's 512 px on a 2 MP photo) without being told the model's working size;
3. **trimap**: the band is unknown (128); outside it ``p >= 0.5`` is foreground (255), the
   rest background (0).

Defaults (``low`` 0.02, ``high`` 0.98, ``width_factor`` 0.5, ``min_px`` 2) were tuned with
``bench/refinement.py`` on the tuning half of the dev photos (see docs/refinement.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .encoding import BACKGROUND, FOREGROUND, UNKNOWN


@dataclass(frozen=True)
class PriorBand:
    """How the refinement band is derived from a prior (see the module docstring).

    Attributes:
        low, high: the prior's soft region is ``low < p < high``; ``0 < low < 0.5 < high < 1``.
        width_factor: band half-width per pixel of the prior's transition width, ``>= 0``.
        min_px: smallest band half-width, px, ``> 0``.
    """

    low: float = 0.02
    high: float = 0.98
    width_factor: float = 0.5
    min_px: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.low < 0.5 < self.high < 1.0:
            raise ValueError(f"need 0 < low < 0.5 < high < 1, got low={self.low}, high={self.high}")
        if not (self.width_factor >= 0 and math.isfinite(self.width_factor)):
            raise ValueError(f"width_factor={self.width_factor} must be a finite number >= 0")
        if not (self.min_px > 0 and math.isfinite(self.min_px)):
            raise ValueError(f"min_px={self.min_px} must be a finite number > 0")


def _edge(decision: np.ndarray) -> np.ndarray:
    """The pixels on either side of the boundary of ``decision`` (bool): those with an
    8-neighbour of the other kind (the image border does not count)."""
    region = decision.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    grown = cv2.dilate(region, kernel, borderType=cv2.BORDER_REPLICATE)
    shrunk = cv2.erode(region, kernel, borderType=cv2.BORDER_REPLICATE)
    return grown > shrunk


def transition_width(prior: np.ndarray, options: PriorBand | None = None) -> float:
    """The prior's mean transition width in px: soft pixels (``low < p < high``) per pixel
    of the edge of ``p >= 0.5`` (both sides of it); 0 when there is no edge.

    Args:
        prior: ``H x W`` float in ``[0, 1]``.
        options: ``low`` and ``high``; the defaults when ``None``.
    """
    options = options or PriorBand()
    soft = np.count_nonzero((prior > options.low) & (prior < options.high))
    edge = np.count_nonzero(_edge(prior >= 0.5))
    return soft / edge if edge else 0.0


def band_radius(prior: np.ndarray, options: PriorBand | None = None) -> float:
    """The band half-width ``r = max(min_px, width_factor * transition_width)`` in px."""
    options = options or PriorBand()
    return max(options.min_px, options.width_factor * transition_width(prior, options))


def prior_trimap(prior: np.ndarray, options: PriorBand | None = None) -> np.ndarray:
    """The trimap of the refinement band of ``prior`` (see the module docstring).

    Args:
        prior: ``H x W`` float in ``[0, 1]``.
        options: the band rule; the defaults when ``None``.

    Returns:
        ``H x W`` uint8: 128 in the band, 255 where ``p >= 0.5`` outside it, 0 elsewhere.
    """
    options = options or PriorBand()
    prior = np.asarray(prior, dtype=np.float32)
    decision = prior >= 0.5
    seed = ((prior > options.low) & (prior < options.high)) | _edge(decision)
    trimap = np.where(decision, FOREGROUND, BACKGROUND).astype(np.uint8)
    if seed.any():
        to_seed = cv2.distanceTransform((~seed).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        trimap[to_seed <= band_radius(prior, options)] = UNKNOWN
    return trimap
