"""Touch-up hints: a user's "keep" and "remove" strokes as constraints of the matting stage.

Pure numpy / OpenCV. The ``hints`` upload of ``POST /v1/matte`` is an image of the photo's
size, read as a hint map in the trimap's encoding (:func:`hints_from_pixels`):

* luma >= 245 (white): **keep**, the subject surely is here (:data:`~trimap.encoding.FOREGROUND`);
* luma <= 10 (black): **remove**, the subject surely is not (:data:`~trimap.encoding.BACKGROUND`);
* anything else, and every pixel with alpha < 128 when the image has an alpha channel: no
  hint (:data:`~trimap.encoding.UNKNOWN`). A page draws white and black strokes on a
  transparent canvas and sends it as a PNG.

:func:`apply_hints` adds them to the trimap (and prior) the service would use anyway, the
one it builds from the segmentation's soft mask or the one the request carried:

1. under a stroke the answer is known: foreground under "keep", background under "remove";
2. where a stroke says the opposite of the guide, the edge must be found again: the pixels
   within ``radius`` of a "remove" stroke that the guide did not call background, and those
   within ``radius`` of a "keep" stroke that it did not call foreground, become unknown, so
   that the matting stage places the edge between the stroke and the rest by colour;
3. the prior, when there is one, follows: 0 under "remove", 1 under "keep", and 0.5 in the
   re-opened zone, where the prior's data term then has only its floor weight (the solver's
   weight is lowest where the prior is least sure), so it no longer holds the old answer.

A stroke that agrees with the guide changes only the pixels under it. The radius
(:func:`hint_radius`) is 2 % of the photo's shorter side, at least 6 px; it was chosen by eye
on the sample portrait, not tuned on data.
"""

from __future__ import annotations

import cv2
import numpy as np

from .encoding import BACKGROUND, FOREGROUND, UNKNOWN

#: Luma at or above which a hint pixel says "keep", at or below which "remove".
KEEP_AT = 245
REMOVE_AT = 10
#: Hint pixels more transparent than this (alpha below it) say nothing.
OPAQUE_AT = 128
#: The re-opened zone around a stroke: this fraction of the shorter side, at least MIN px.
RADIUS_FRACTION = 0.02
MIN_RADIUS_PX = 6.0
#: The prior's value in the re-opened zone: "no opinion" (its data term's floor weight).
NO_OPINION = 0.5


def hints_from_pixels(luma: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """The hint map of a decoded ``hints`` image.

    Args:
        luma: ``H x W`` uint8, the image's luma.
        alpha: ``H x W`` uint8, its alpha channel, or ``None`` when it has none.

    Returns:
        ``H x W`` uint8: 255 keep, 0 remove, 128 no hint.
    """
    hints = np.full(luma.shape, UNKNOWN, dtype=np.uint8)
    hints[luma >= KEEP_AT] = FOREGROUND
    hints[luma <= REMOVE_AT] = BACKGROUND
    if alpha is not None:
        hints[alpha < OPAQUE_AT] = UNKNOWN
    return hints


def hint_radius(height: int, width: int) -> float:
    """The re-opened zone's radius in px for an ``height x width`` photo."""
    return max(MIN_RADIUS_PX, RADIUS_FRACTION * min(height, width))


def hint_counts(hints: np.ndarray) -> tuple[int, int]:
    """``(keep, remove)``: how many pixels each kind of stroke covers."""
    return int(np.count_nonzero(hints == FOREGROUND)), int(np.count_nonzero(hints == BACKGROUND))


def _near(stroke: np.ndarray, radius: float) -> np.ndarray:
    """Pixels within ``radius`` px (Euclidean) of a ``True`` pixel of ``stroke``."""
    if not stroke.any():
        return stroke
    distance = cv2.distanceTransform((~stroke).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= radius


def apply_hints(
    trimap: np.ndarray,
    prior: np.ndarray | None,
    hints: np.ndarray,
    radius: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The trimap and prior with the strokes of ``hints`` added (see the module docstring).

    Args:
        trimap: ``H x W`` uint8, 0 / 128 / 255: the guide's trimap.
        prior: ``H x W`` float32 in ``[0, 1]``, the guide's prior, or ``None`` (none).
        hints: ``H x W`` uint8 hint map (:func:`hints_from_pixels`): 255 keep, 0 remove,
            anything else no hint.
        radius: the re-opened zone's radius in px; default :func:`hint_radius`.

    Returns:
        ``(trimap, prior)``: new arrays (the inputs are not changed); ``prior`` stays
        ``None`` when it was.
    """
    if hints.shape != trimap.shape:
        raise ValueError(f"hints are {hints.shape}, the trimap {trimap.shape}")
    keep, remove = hints == FOREGROUND, hints == BACKGROUND
    radius = hint_radius(*trimap.shape) if radius is None else radius
    reopen = (_near(remove, radius) & (trimap != BACKGROUND)) | (_near(keep, radius) & (trimap != FOREGROUND))
    reopen &= ~(keep | remove)
    out = trimap.copy()
    out[reopen] = UNKNOWN
    out[keep] = FOREGROUND
    out[remove] = BACKGROUND
    if prior is None:
        return out, None
    new_prior = np.array(prior, dtype=np.float32, copy=True)
    new_prior[reopen] = NO_OPINION
    new_prior[keep] = 1.0
    new_prior[remove] = 0.0
    return out, new_prior
