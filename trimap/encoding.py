"""The trimap encoding every part of Backdrop speaks: values, normalisation, checks.

A trimap is an ``H x W`` uint8 image: :data:`BACKGROUND` (0) where the subject surely is
not, :data:`FOREGROUND` (255) where it surely is, :data:`UNKNOWN` (128) where the matting
stage decides. Pure numpy.
"""

from __future__ import annotations

import numpy as np

#: Trimap values.
BACKGROUND = 0
UNKNOWN = 128
FOREGROUND = 255
VALUES = (BACKGROUND, UNKNOWN, FOREGROUND)

#: User trimaps: values within this distance of 0 / 255 count as sure background /
#: foreground (survives lossy re-encoding); everything else is unknown.
TOLERANCE = 10


def normalise(trimap: np.ndarray, tolerance: int = TOLERANCE) -> np.ndarray:
    """A trimap with any values (``H x W`` uint8) -> exactly 0 / 128 / 255.

    Values ``<= tolerance`` become background, ``>= 255 - tolerance`` foreground, the rest
    unknown.
    """
    out = np.full(trimap.shape, UNKNOWN, dtype=np.uint8)
    out[trimap <= tolerance] = BACKGROUND
    out[trimap >= FOREGROUND - tolerance] = FOREGROUND
    return out


def invalid_values(trimap: np.ndarray, limit: int = 5) -> list[int]:
    """Up to ``limit`` values of ``trimap`` that are not one of :data:`VALUES` (empty: valid)."""
    values = np.unique(trimap)
    return [int(v) for v in values if int(v) not in VALUES][:limit]


def split(trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(background, unknown, foreground)`` boolean ``H x W`` masks of a 0/128/255 trimap."""
    return trimap == BACKGROUND, trimap == UNKNOWN, trimap == FOREGROUND
