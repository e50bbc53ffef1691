"""The render step: the subject, its matte and a new background -> the result's pixels.

Pure numpy and OpenCV, shared by the matting service and the clients (no Flask, no torch).
One direction of calls: :mod:`~render.colour` <- :mod:`~render.composite` <-
:mod:`~render.geometry` / :mod:`~render.backgrounds` <- :mod:`~render.poisson` <- here.

* :mod:`render.colour`: sRGB <-> linear light, uint8 conversions;
* :mod:`render.composite`: alpha compositing, the transparent cut-out, the matte;
* :mod:`render.backgrounds`: colour, image (cover-resized), blur, greyscale;
* :mod:`render.geometry`: subject box, crop around it, sizes and resizing;
* :mod:`render.poisson`: seamless cloning in the subject's edge band;
* :mod:`render.shadow`: a soft drop shadow cast from the matte.

:func:`render` is the one entry point; ``blend`` picks the strategy.
"""

from __future__ import annotations

import numpy as np

from contract.values import RGBA, Box

from . import backgrounds, colour, composite, geometry, poisson, shadow
from .shadow import Shadow

__all__ = ["backgrounds", "colour", "composite", "geometry", "poisson", "render", "shadow"]


def render(
    rgb: np.ndarray,
    fg: np.ndarray,
    alpha: np.ndarray,
    *,
    bg_mode: str,
    blend: str = "alpha",
    channels: str = "rgba",
    bg_color: RGBA | None = None,
    bg_image: np.ndarray | None = None,
    blur_radius: float | None = None,
    box: Box | None = None,
    drop_shadow: Shadow | None = None,
) -> np.ndarray:
    """The result picture from the image, ``F`` and the matte.

    Args:
        rgb: ``H x W x 3`` uint8, the (working-size) input.
        fg: ``H x W x 3`` float32 ``[0, 1]``, the subject's colours.
        alpha: ``H x W`` float32 ``[0, 1]``.
        bg_mode: ``image``, ``color``, ``transparent``, ``blur`` or ``grayscale``.
        blend: ``alpha`` (compositing with the matte), ``poisson`` or ``poisson_mixed``
            (seamless cloning in the edge band, :mod:`render.poisson`). The Poisson modes
            need a new opaque background (``bg_mode`` ``image``, ``color`` with an opaque
            ``bg_color``, ``blur`` or ``grayscale``) and ``channels="rgba"``.
        channels: ``rgba`` (the picture) or ``alpha`` (the matte only).
        bg_color: ``(r, g, b, a)`` for ``color`` (alpha < 255 gives an RGBA result).
        bg_image: ``h x w x 3`` uint8 for ``image``; cover-resized to the output frame.
        blur_radius: Gaussian sigma (px) for ``blur``; default 2 % of the long side.
        box: crop to this box (in ``rgb`` coordinates); ``None`` = whole frame.
        drop_shadow: a soft shadow cast from the matte under the subject
            (:mod:`render.shadow`): it darkens an opaque background, and goes into the alpha
            of a transparent result or of the matte (``channels="alpha"``).

    Returns:
        ``h x w`` uint8 (matte), ``h x w x 3`` or ``h x w x 4`` uint8, ``(h, w)`` the box's size.

    Raises:
        ValueError: an unknown ``blend``, or a Poisson mode without an opaque background.
    """
    if blend != "alpha" and blend not in poisson.CLONE_FLAGS:
        raise ValueError(f"unknown blend {blend!r}")
    if blend != "alpha" and (channels != "rgba" or bg_mode == "transparent"):
        raise ValueError(f"blend={blend} needs a new background and channels=rgba")
    height, width = alpha.shape
    frame = Box(*box) if box is not None else Box(0, 0, width, height)
    a = geometry.crop(alpha, frame)
    shade = None if drop_shadow is None else shadow.shadow_alpha(a, drop_shadow)
    if channels == "alpha":
        return composite.matte(a if shade is None else shadow.matte_with_shadow(a, shade))
    f = geometry.crop(fg, frame)
    if bg_mode == "transparent":
        if shade is None:
            return composite.transparent(f, a)
        return composite.composite(f, a, shadow.shadow_layer(shade))
    background = backgrounds.make_background(rgb, alpha, frame, bg_mode=bg_mode, bg_color=bg_color,
                                             bg_image=bg_image, blur_radius=blur_radius)
    if shade is not None:
        background = shadow.darken(background, shade)
    if blend == "alpha":
        return composite.composite(f, a, background)
    return poisson.poisson_composite(
        np.ascontiguousarray(geometry.crop(rgb, frame)), np.ascontiguousarray(f),
        np.ascontiguousarray(a), background, mixed=blend == "poisson_mixed")
