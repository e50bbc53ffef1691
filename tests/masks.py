"""Synthetic masks shared by the tests of the trimap rules and the pipeline's guide."""

from __future__ import annotations

import numpy as np


def disc(size: int = 80, radius: float = 24.0, soft: float = 0.0) -> np.ndarray:
    """A centred disc of ``radius`` px in a ``size x size`` float32 mask in ``[0, 1]``; with
    ``soft`` > 0 its edge is a linear ramp ``soft`` px wide, else it is binary."""
    yy, xx = np.mgrid[:size, :size]
    dist = np.hypot(yy - size / 2, xx - size / 2)
    if soft == 0:
        return (dist <= radius).astype(np.float32)
    return np.clip((radius - dist) / soft + 0.5, 0, 1).astype(np.float32)
