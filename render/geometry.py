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


#: Extra peak bytes per result pixel while placing the subject (the frame's copies of the
#: picture, the subject's colours and its matte).
PLACE_BYTES_PER_PIXEL = 20


def placed_box(subject: Box, frame: Box, scale: float | None,
               position: tuple[float, float] | None) -> Box:
    """Where the subject goes in ``frame`` (in the frame's coordinates).

    Args:
        subject: the subject's box in the image.
        frame: the result's frame in the image (the whole image, or the crop).
        scale: the subject's size relative to the frame, ``(0, 1]``: it is resized to fit
            ``scale`` of the frame's width and height, aspect kept; ``None``: its size.
        position: ``(horizontal, vertical)`` percentages of the free space left of and above
            it; ``None``: its centre stays where it is.

    Returns:
        the box, at least 1 x 1; it may reach past the frame only with ``position=None``.
    """
    k = 1.0 if scale is None else scale * min(frame.width / subject.width, frame.height / subject.height)
    width, height = max(1, round(subject.width * k)), max(1, round(subject.height * k))
    if position is None:
        centre_x = subject.left - frame.left + subject.width / 2.0
        centre_y = subject.top - frame.top + subject.height / 2.0
        left, top = round(centre_x - width / 2.0), round(centre_y - height / 2.0)
    else:
        left = round((frame.width - width) * position[0] / 100.0)
        top = round((frame.height - height) * position[1] / 100.0)
    return Box(left, top, width, height)


def _resized(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Any dtype and channels (float32 included) to ``width x height``: area down, cubic up."""
    h, w = pixels.shape[:2]
    if (w, h) == (width, height):
        return pixels
    interp = cv2.INTER_AREA if width * height < w * h else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(pixels), (width, height), interpolation=interp)


def place_subject(
    rgb: np.ndarray, fg: np.ndarray, alpha: np.ndarray, subject: Box, frame: Box,
    scale: float | None, position: tuple[float, float] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Box]:
    """Move (and resize) the subject within ``frame``: remove.bg's ``scale`` and ``position``.

    The subject's box of ``fg`` and ``alpha`` (and of ``rgb``, which the Poisson blend reads)
    is resized and pasted at :func:`placed_box`; nothing of the subject stays at its old
    place (the new frame's matte is zero outside the pasted box). With ``scale=None`` and
    ``position=None`` the pixels are the frame's crop, unchanged.

    Args:
        rgb: ``H x W x 3`` uint8, the picture.
        fg: ``H x W x 3`` float32 ``[0, 1]``, the subject's colours.
        alpha: ``H x W`` float32 ``[0, 1]``, its matte.
        subject: the box of its visible pixels, in the image.
        frame: the result's frame in the image.
        scale, position: as for :func:`placed_box`.

    Returns:
        ``(rgb, fg, alpha, box)`` of the frame's size, ``box`` the box of the subject's
        visible pixels in the frame (the ``X-Foreground-*`` headers; zeros when none).
    """
    target = placed_box(subject, frame, scale, position)
    out_rgb = np.ascontiguousarray(crop(rgb, frame)).copy()
    out_fg = np.zeros((frame.height, frame.width, 3), dtype=np.float32)
    out_alpha = np.zeros((frame.height, frame.width), dtype=np.float32)
    visible = target.within(Box(0, 0, frame.width, frame.height))
    if visible.empty:
        return out_rgb, out_fg, out_alpha, visible
    # the part of the resized subject that lands inside the frame
    src = Box(visible.left - target.left, visible.top - target.top, visible.width, visible.height)
    pieces = ((rgb, out_rgb), (fg, out_fg), (alpha, out_alpha))
    for pixels, out in pieces:
        resized = _resized(crop(pixels, subject), target.width, target.height)
        if resized.dtype == np.float32:
            resized = np.clip(resized, 0.0, 1.0)
        out[visible.top:visible.bottom, visible.left:visible.right] = crop(resized, src)
    return out_rgb, out_fg, out_alpha, Box.of(out_alpha > 0.5 / 255.0)
