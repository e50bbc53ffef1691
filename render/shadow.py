"""A soft drop shadow cast from the matte, under the subject, over the new background.

Pure numpy and OpenCV; conventions as in :mod:`render.composite`. The shadow is the matte
itself, moved a little down and to the right, blurred and made see-through: what a product
photo on a marketplace wants (the subject stands on the page instead of floating over it).
Its size follows the subject's (the long side of the box of its visible pixels), so a small
and a large picture of the same scene get the same shadow.

Over an opaque background the shadow darkens it (black "over" the background, in linear
light); over a transparent one (a cut-out, a colour with alpha) it becomes part of the
result's alpha, as remove.bg's shadows do: a black layer whose alpha is the shadow's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from contract.values import Box

from .backgrounds import gaussian_blur
from .colour import linear_to_u8, to_u8, u8_to_linear

#: Alpha above which a pixel counts as the subject's when measuring its size.
VISIBLE = 0.5 / 255.0
#: Extra peak bytes per result pixel while casting a shadow (shifted, blurred and weighted
#: float32 copies of the matte, the darkened background).
SHADOW_BYTES_PER_PIXEL = 24


@dataclass(frozen=True)
class Shadow:
    """One soft drop shadow.

    Attributes:
        opacity: ``[0, 1]``, the shadow's alpha under a fully opaque part of the subject.
        offset: ``(right, down)``, how far the shadow is moved, as fractions of the subject's
            size (the long side of its box).
        softness: the Gaussian blur's sigma, as a fraction of the subject's size.
    """

    opacity: float = 0.5
    offset: tuple[float, float] = (0.02, 0.035)
    softness: float = 0.03

    def __post_init__(self) -> None:
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity {self.opacity} is outside [0, 1]")
        if self.softness < 0.0:
            raise ValueError(f"softness {self.softness} is negative")


def subject_size(alpha: np.ndarray) -> int:
    """The long side of the box of the visible pixels of ``alpha``, px (0 when none)."""
    box = Box.of(alpha > VISIBLE)
    return max(box.width, box.height)


def shadow_alpha(alpha: np.ndarray, shadow: Shadow) -> np.ndarray:
    """The shadow's alpha, ``H x W`` float32 in ``[0, shadow.opacity]``: ``alpha`` moved by
    the offset (what moves past the frame is lost, nothing comes in), blurred, times the
    opacity. All zeros for an empty matte or a zero opacity."""
    alpha = np.asarray(alpha, dtype=np.float32)
    height, width = alpha.shape
    size = subject_size(alpha)
    if size == 0 or shadow.opacity == 0.0:
        return np.zeros((height, width), dtype=np.float32)
    dx, dy = shadow.offset[0] * size, shadow.offset[1] * size
    moved = cv2.warpAffine(alpha, np.float32([[1, 0, dx], [0, 1, dy]]), (width, height),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    sigma = shadow.softness * size
    soft = gaussian_blur(moved, sigma) if sigma >= 0.3 else moved
    return np.clip(soft, 0.0, 1.0) * np.float32(shadow.opacity)


def darken(background: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """A black layer of alpha ``shade`` over ``background``, in linear light.

    Args:
        background: ``H x W x 3`` uint8 RGB, or ``H x W x 4`` uint8 RGBA (straight alpha).
        shade: ``H x W`` float32 ``[0, 1]``, the shadow's alpha.

    Returns:
        the same shape and type. Where ``shade`` is 0 it equals ``background`` exactly. Over
        RGBA the result is the "over" operator: alpha ``s + (1 - s) * a_b``, and the colour
        the background's, darkened by what of it still shows.
    """
    if background.shape[:2] != shade.shape:
        raise ValueError(f"shape mismatch: background {background.shape}, shade {shade.shape}")
    out = background.copy()
    where = shade > 0.0
    if not where.any():
        return out
    s = shade[where][:, None].astype(np.float32)
    colour = u8_to_linear(background[where][:, :3])
    if background.shape[2] == 3:
        out[where] = linear_to_u8(colour * (1.0 - s))
        return out
    b_a = background[where][:, 3:4].astype(np.float32) / 255.0
    out_a = s + (1.0 - s) * b_a  # > 0 since s > 0
    out[where, :3] = linear_to_u8(colour * (1.0 - s) * b_a / out_a)
    out[where, 3] = to_u8(out_a[:, 0])
    return out


def shadow_layer(shade: np.ndarray) -> np.ndarray:
    """The shadow alone on a transparent background: ``H x W x 4`` uint8, black with alpha
    ``shade`` (the background under a cut-out subject)."""
    out = np.zeros((*shade.shape, 4), dtype=np.uint8)
    out[..., 3] = to_u8(shade)
    return out


def matte_with_shadow(alpha: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """The result's alpha with the shadow in it: ``a + (1 - a) * s``, float32 ``[0, 1]``."""
    return (alpha + (1.0 - alpha) * shade).astype(np.float32)
