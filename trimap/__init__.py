"""Trimaps: their encoding and the two rules that make them. Pure numpy / OpenCV.

* :mod:`trimap.encoding`: the values (0 background, 128 unknown, 255 foreground),
  normalising a user's trimap, checking one;
* :mod:`trimap.from_masks`: the segmentation rule, soft instance masks -> a trimap whose
  unknown band scales with the subject (``/v1/trimap``, and the matting service for
  segmentation-grade masks);
* :mod:`trimap.from_prior`: the refinement band of a matte-grade prior (MODNet's alpha): its
  own soft edge, widened; the matting stage refines the prior there.

Both services and the clients may import this package (no Flask, no torch).
"""

from .encoding import BACKGROUND, FOREGROUND, TOLERANCE, UNKNOWN, VALUES, invalid_values, normalise, split
from .from_masks import Trimap, TrimapOptions, build_trimap, combine_masks
from .from_prior import PriorBand, band_radius, prior_trimap, transition_width

__all__ = [
    "BACKGROUND", "FOREGROUND", "TOLERANCE", "UNKNOWN", "VALUES", "PriorBand", "Trimap",
    "TrimapOptions", "band_radius", "build_trimap", "combine_masks", "invalid_values",
    "normalise", "prior_trimap", "split", "transition_width",
]
