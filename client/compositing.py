"""Pure image logic of the video client: backgrounds and compositing (numpy in, numpy out).

Colour frames are ``H x W x 3`` uint8 in OpenCV's **BGR** order (the order in which the
video client reads, sends and writes them), sRGB-encoded; alpha mattes are ``H x W``
float32 in ``[0, 1]`` (1 = subject). Blending happens in linear light, as the matting
service does it, so a locally composited frame looks like the service's own composite.
"""

from __future__ import annotations

import numpy as np

# The shared render package (numpy + OpenCV; no HTTP, no torch): one implementation of
# cover-resizing and linear-light blending for the service and the client.
from render.backgrounds import cover_resize
from render.composite import composite as composite_linear


def fit_cover(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``img`` to cover ``size`` = ``(width, height)`` and centre-crop the overflow
    (the aspect ratio is kept, nothing is letterboxed): the matting service's own rule.

    Args:
        img: ``H x W x C`` uint8.

    Returns:
        ``height x width x C`` uint8, C-contiguous.
    """
    w, h = size
    if img.shape[1] == w and img.shape[0] == h:
        return img
    return np.ascontiguousarray(cover_resize(img, w, h))


def solid(color_bgr: tuple[int, int, int], size: tuple[int, int]) -> np.ndarray:
    """A ``height x width x 3`` uint8 frame of one colour (given in BGR order)."""
    w, h = size
    frame = np.empty((h, w, 3), dtype=np.uint8)
    frame[:] = np.asarray(color_bgr, dtype=np.uint8)
    return frame


def vertical_gradient(top_bgr: tuple[int, int, int], bottom_bgr: tuple[int, int, int],
                      size: tuple[int, int]) -> np.ndarray:
    """A ``height x width x 3`` uint8 frame fading from ``top_bgr`` to ``bottom_bgr``."""
    w, h = size
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top = np.asarray(top_bgr, dtype=np.float32)
    bottom = np.asarray(bottom_bgr, dtype=np.float32)
    column = top * (1.0 - t) + bottom * t
    return np.ascontiguousarray(np.broadcast_to(column + 0.5, (h, w, 3)).astype(np.uint8))


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``alpha * fg + (1 - alpha) * bg``, blended in linear light by the matting service's
    own compositing (:mod:`render`: a locally composited frame equals the service's composite).

    Args:
        fg: ``H x W x 3`` uint8 foreground colours (straight, not premultiplied), sRGB.
        alpha: ``H x W`` float32 in ``[0, 1]``.
        bg: ``H x W x 3`` uint8 background, sRGB.

    Returns:
        ``H x W x 3`` uint8 sRGB; equal to ``bg`` where ``alpha == 0`` and to ``fg`` where
        ``alpha == 1``.
    """
    if fg.shape != bg.shape or alpha.shape != fg.shape[:2]:
        raise ValueError(f"shape mismatch: fg {fg.shape}, alpha {alpha.shape}, bg {bg.shape}")
    return composite_linear(fg, np.clip(alpha, 0.0, 1.0).astype(np.float32), bg)


def to_rgba8(fg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight ``H x W x 4`` uint8 (BGRA order for BGR ``fg``) from ``H x W x 3`` uint8
    colours and an ``H x W`` float alpha in ``[0, 1]``. Fully transparent pixels get colour
    0, so nothing of the old background hides in the file."""
    a8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = np.dstack([fg, a8])
    out[a8 == 0, :3] = 0
    return out
