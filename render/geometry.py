"""Boxes, crops and sizes: the subject's box, the crop around it, the working size.

Boxes are :class:`contract.values.Box` (``left, top, width, height`` in px). Pure numpy and
OpenCV.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from contract.values import Box, CropMargin, SizeLimit


def subject_box(alpha: np.ndarray, threshold: float = 0.0) -> Box | None:
    """Bounding box of the pixels with ``alpha > threshold``; ``None`` when there are none.

    Args:
        alpha: ``H x W`` float ``[0, 1]``.
        threshold: in ``[0, 1)``.
    """
    box = Box.of(alpha > threshold)
    return None if box.empty else box


def crop_box(box: Box, margin: CropMargin, image_size: tuple[int, int]) -> Box:
    """The subject ``box`` grown by ``margin`` and clamped to the image.

    Args:
        box: the subject, ``(left, top, width, height)``.
        margin: per side; a percentage is of the subject's height (top, bottom) or width
            (left, right).
        image_size: ``(width, height)`` of the image.

    Returns:
        ``(left, top, width, height)`` inside the image, at least 1 x 1.
    """
    left, top, width, height = box
    img_w, img_h = image_size
    x0 = max(0, left - margin.left.pixels(width))
    y0 = max(0, top - margin.top.pixels(height))
    x1 = min(img_w, left + width + margin.right.pixels(width))
    y1 = min(img_h, top + height + margin.bottom.pixels(height))
    return Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def crop(pixels: np.ndarray, box: Box) -> np.ndarray:
    """``pixels[top:top+height, left:left+width]`` (any number of channels)."""
    left, top, width, height = box
    return pixels[top:top + height, left:left + width]


def fit_size(width: int, height: int, limit: SizeLimit) -> tuple[int, int]:
    """The largest size within ``limit`` with the aspect ratio kept; never larger than the
    input. Returns ``(width, height)``, each at least 1."""
    scale = 1.0
    if limit.long_side is not None:
        scale = min(scale, limit.long_side / max(width, height))
    if limit.max_pixels is not None:
        scale = min(scale, math.sqrt(limit.max_pixels / (width * height)))
    if scale >= 1.0:
        return (width, height)
    new_w = max(1, math.floor(width * scale))
    new_h = max(1, math.floor(height * scale))
    return (new_w, new_h)


def resize_image(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an image (uint8, any channels) with area averaging (down) or cubic (up)."""
    h, w = pixels.shape[:2]
    if (w, h) == (width, height):
        return pixels
    interp = cv2.INTER_AREA if width * height < w * h else cv2.INTER_CUBIC
    return cv2.resize(pixels, (width, height), interpolation=interp)


def resize_mask_nearest(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a label image (trimap) with nearest neighbour: values stay in the same set."""
    h, w = mask.shape[:2]
    if (w, h) == (width, height):
        return mask
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
