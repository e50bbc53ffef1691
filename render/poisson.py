"""Poisson ("seamless") blending of the subject into the new background: ``blend=poisson``.

Pure numpy + OpenCV, no HTTP, no torch. ``blend=alpha`` (the default) is plain compositing,
:func:`render.composite.composite`; this module adds the two Poisson modes of
``POST /v1/matte``:

* ``poisson``: :func:`cv2.seamlessClone` with ``NORMAL_CLONE``: inside the clone region the
  result keeps the photo's gradients, and on the region's boundary it equals the new
  background. The difference is spread smoothly over the subject: the subject takes on the
  new background's colour and brightness *relative to the old one*.
* ``poisson_mixed``: ``MIXED_CLONE``: at each pixel the stronger of the photo's and the new
  background's gradient wins, so textures of the background (stars, leaves) show through
  flat parts of the subject.

Applied to the whole subject, both tint it whenever the new background differs from the old
one in colour or brightness (over a dark sky a face goes nearly black). So the service keeps
the correction to the subject's **edge band** (:func:`edge_weight`): the soft edge takes it
fully, the opaque inside fades it out over a few pixels and keeps its own colours. See
``docs/poisson_blending.md`` for the before and after.

How the result is made (shapes: ``rgb`` ``H x W x 3`` uint8, ``fg`` ``H x W x 3`` float32
``[0, 1]``, ``alpha`` ``H x W`` float32 ``[0, 1]``, ``background`` ``H x W x 3`` uint8):

1. Clone region (:func:`clone_mask`): ``alpha > MASK_THRESHOLD`` (every pixel that is
   visible in an 8-bit result) dilated by :data:`MASK_DILATION_PX` (6 px), so the whole
   soft edge (hair) lies inside the region and its boundary, where the solution is pinned
   to the new background, runs through old background a few pixels away from the subject.
   6 px, not less: OpenCV erodes the mask by 3 px before it uses the photo's gradients, and
   a region that stops at the subject loses the subject's edge (the subject then melts into
   the background on one side).
2. The clone (:func:`seamless_clone`), with the *photo* as the source and the new background
   as the destination, in place. OpenCV clears the mask's 1-px outer ring and centres the
   clone on the bounding box of what is left, which can move a subject that touches the
   image border by a pixel and pins its edge there to the background. So the images are padded
   by :data:`PAD_PX` px (reflection; the mask by replication, so only a region that
   touches the border continues into the padding), the ring is cleared here and the clone
   is centred on that box's own centre, then the result is cropped back: the subject stays
   exactly in place. Where the frame cuts the subject, the frame edge is not the subject's
   edge and should impose no colour: the destination in the padding under the mask is the
   photo shifted by :func:`boundary_shift` (the median background-minus-photo difference
   around the subject), exact when that difference is uniform. ``poisson_mixed`` also
   takes the destination's gradients, which that padding would give a step at the image
   edge; it is the free-edge ``NORMAL_CLONE`` plus the difference between ``MIXED_CLONE``
   and ``NORMAL_CLONE`` with a plainly reflected padding (the solve is linear; 3 clones
   instead of 1, only for a region that touches the border).
3. Matte finish (:func:`poisson_composite`): the clone's correction ``delta = clone - rgb``,
   weighted by the edge band ``w``, is added to the decontaminated foreground ``F`` and
   composited with the matte in linear light like ``blend=alpha``:
   ``alpha * (F + w delta) + (1 - alpha) * B``. Pixels with
   ``alpha == 0`` are the background exactly (the raw clone leaves a band of recoloured old
   background in the dilated margin: 13 to 29 levels off on average, up to 218, around the
   sample portrait; ``bench/blending_speed.py --figure``), and hair keeps the matte.

**Pixel cap.** The clone is the costly part: about 150 bytes and 2 microseconds per pixel
for a subject cut by the frame (``poisson_mixed`` on 20 MP took 48 s and 4.7 GB). Above
:data:`MAX_CLONE_PIXELS` (1920 x 1080 fits) the clone is solved on a copy scaled down to that
many pixels, and its correction ``clone - rgb`` is scaled back up (bilinear) and applied at
full size by the matte finish. The correction is smooth inside the subject (a membrane
between boundary values), so what the scaling loses is detail of the new background's
texture that ``poisson_mixed`` lets through; the matte, the edge band and the subject's own
detail stay at full size. The answer stays 200 at every size the pixel limit allows.

An empty clone region (nothing visible) falls back to alpha compositing, which then gives the
background (to within rounding), as ``blend=alpha`` does; no error, like ``blend=alpha``.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from .composite import composite

log = logging.getLogger(__name__)

#: Alpha above this is in the clone region: every pixel that rounds to a visible 8-bit alpha.
MASK_THRESHOLD = 0.5 / 255.0
#: OpenCV erodes the clone mask by this many px before it uses the photo's gradients (and
#: takes forward differences): a region that ends at the subject loses its edge.
OPENCV_EROSION_PX = 3
#: The clone region extends this far (px, elliptical) beyond the visible subject: OpenCV's
#: erosion plus a 3-px margin in which the photo's gradients (the subject's edge) are kept.
MASK_DILATION_PX = OPENCV_EROSION_PX + 3
#: Reflection padding (px) on every side while cloning (keeps the region off the border).
PAD_PX = 16

#: Alpha at or above which a pixel is the subject's opaque part (the edge band's inside).
OPAQUE_ALPHA = 0.99
#: Depth of the blend inside the opaque part: this share of the image's shorter side (3 px
#: at 512 px, 6.5 px at 1080p; docs/poisson_blending.md compares 1, 3 and 6 px) ...
EDGE_BAND_FRACTION = 0.006
#: ... and at least this many px.
EDGE_BAND_MIN_PX = 2.0

#: Most pixels the clone is solved on (see the module docstring): 1920 x 1080 at full size,
#: about 0.3 GB and 5 s at most on two cores.
MAX_CLONE_PIXELS = 2_100_000
#: Peak bytes per solved pixel of :func:`poisson_composite` (a subject cut by the frame,
#: ``poisson_mixed``: 141 to 151 measured at 1 and 4 MP), for memory budgets.
CLONE_BYTES_PER_PIXEL = 160

#: ``blend`` value -> OpenCV cloning flag.
CLONE_FLAGS = {"poisson": cv2.NORMAL_CLONE, "poisson_mixed": cv2.MIXED_CLONE}


def clone_mask(
    alpha: np.ndarray, threshold: float = MASK_THRESHOLD, dilation_px: int = MASK_DILATION_PX
) -> np.ndarray:
    """The clone region of a matte.

    Args:
        alpha: ``H x W`` float ``[0, 1]``.
        threshold: pixels with ``alpha > threshold`` are the subject.
        dilation_px: grow that region by this many px (elliptical); 0 = no growth.

    Returns:
        ``H x W`` uint8, 255 inside the region, 0 outside.
    """
    mask = np.where(alpha > threshold, 255, 0).astype(np.uint8)
    if dilation_px > 0 and mask.any():
        size = 2 * dilation_px + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        mask = cv2.dilate(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask


def boundary_shift(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median of ``dst - src`` on the pixels just outside ``mask`` (inside the image).

    Those are the pixels the Poisson solution is pinned to, so this is the typical colour
    shift the clone applies to the subject.

    Args:
        src, dst: ``H x W x 3`` uint8.
        mask: ``H x W`` uint8, nonzero inside the region.

    Returns:
        ``(3,)`` float32, each in ``[-255, 255]``; zeros when the region has no outside
        neighbour in the image (empty, or it covers the whole image).
    """
    inside = mask > 0
    grown = cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8),
                       borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    ring = grown & ~inside
    if not ring.any():
        return np.zeros(3, dtype=np.float32)
    diff = dst[ring].astype(np.int16) - src[ring].astype(np.int16)
    return np.median(diff, axis=0).astype(np.float32)


def seamless_clone(
    src: np.ndarray, dst: np.ndarray, mask: np.ndarray, *, mixed: bool = False,
    pad: int = PAD_PX,
) -> np.ndarray:
    """:func:`cv2.seamlessClone` of ``src`` into ``dst`` at the same place (no shift).

    Args:
        src: ``H x W x 3`` uint8, the photo (its gradients are kept).
        dst: ``H x W x 3`` uint8, the new background (the boundary values).
        mask: ``H x W`` uint8, nonzero = clone region; may touch the image border.
        mixed: ``MIXED_CLONE`` (the stronger gradient wins) instead of ``NORMAL_CLONE``.
        pad: reflection padding in px on every side (see the module docstring), >= 1.

    Returns:
        ``H x W x 3`` uint8: ``dst`` outside the region, the solution inside. An empty
        ``mask`` gives a copy of ``dst``. The inputs are not modified.
    """
    height, width = mask.shape
    if src.shape != (height, width, 3) or dst.shape != (height, width, 3):
        raise ValueError(f"shape mismatch: src {src.shape}, dst {dst.shape}, mask {mask.shape}")
    if pad < 1:
        raise ValueError(f"pad must be >= 1, not {pad}")
    region = np.where(mask > 0, 255, 0).astype(np.uint8)
    if not region.any():
        return dst.copy()

    def padded(image: np.ndarray) -> np.ndarray:
        return cv2.copyMakeBorder(np.ascontiguousarray(image), pad, pad, pad, pad,
                                  cv2.BORDER_REFLECT_101)

    src_p, dst_p = padded(src), padded(dst)
    # Only where the region touches the border does it continue (straight) into the padding;
    # a reflected mask would join a subject near the border to its own mirror image.
    mask_p = cv2.copyMakeBorder(region, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    free_edge = mask_p > 0
    free_edge[pad:pad + height, pad:pad + width] = False
    # OpenCV ignores the outermost ring of the mask; clear it here so that the box whose
    # centre we pass is the box it clones: the clone then lands exactly where it came from.
    mask_p[0, :] = mask_p[-1, :] = 0
    mask_p[:, 0] = mask_p[:, -1] = 0
    x, y, w, h = cv2.boundingRect(mask_p)
    centre = (x + w // 2, y + h // 2)

    def clone(destination: np.ndarray, flags: int) -> np.ndarray:
        # a copy: OpenCV writes into the mask it is given (clears its ring, erodes it)
        out = cv2.seamlessClone(src_p, destination, mask_p.copy(), centre, flags=flags)
        return out[pad:pad + height, pad:pad + width]

    if not free_edge.any():  # the region stays off the border: the padding plays no part
        return np.ascontiguousarray(clone(dst_p, cv2.MIXED_CLONE if mixed else cv2.NORMAL_CLONE))
    dst_free = dst_p.copy()
    shift = boundary_shift(src, dst, region)
    dst_free[free_edge] = np.clip(src_p[free_edge] + shift + 0.5, 0, 255).astype(np.uint8)
    normal_free = clone(dst_free, cv2.NORMAL_CLONE)
    if not mixed:
        return np.ascontiguousarray(normal_free)
    # MIXED_CLONE also takes the destination's gradients, so its padding must continue the
    # background without a step, and then the frame edge pins the subject to the background.
    # The solve is linear: take the free-edge NORMAL clone plus what MIXED changes relative
    # to NORMAL under the same (reflected) padding, where the pinning cancels out (exact up
    # to OpenCV's rounding and clipping of each clone to 0..255).
    normal_reflected = clone(dst_p, cv2.NORMAL_CLONE).astype(np.int16)
    mixed_reflected = clone(dst_p, cv2.MIXED_CLONE).astype(np.int16)
    combined = normal_free.astype(np.int16) + mixed_reflected - normal_reflected
    return np.clip(combined, 0, 255).astype(np.uint8)


def poisson_composite(
    rgb: np.ndarray,
    fg: np.ndarray,
    alpha: np.ndarray,
    background: np.ndarray,
    *,
    mixed: bool = False,
    matte_finish: bool = True,
    edge_only: bool = True,
    max_pixels: int = MAX_CLONE_PIXELS,
) -> np.ndarray:
    """The subject Poisson-blended into ``background``.

    Args:
        rgb: ``H x W x 3`` uint8, the photo.
        fg: ``H x W x 3`` float32 ``[0, 1]``, the predicted foreground colour ``F``.
        alpha: ``H x W`` float32 ``[0, 1]``.
        background: ``H x W x 3`` uint8, the new (opaque) background.
        mixed: ``MIXED_CLONE`` instead of ``NORMAL_CLONE``.
        matte_finish: composite ``F + w (clone - rgb)`` with the matte (the service's
            behaviour); ``False`` returns the raw clone (for comparisons).
        edge_only: ``w`` = :func:`edge_weight` (the service's behaviour: the correction
            blends the edge band, the subject's interior keeps its own colours); ``False``:
            ``w = 1``, the whole subject takes the correction (classic seamless cloning).
        max_pixels: above this many pixels the clone is solved scaled down (module
            docstring, "Pixel cap").

    Returns:
        ``H x W x 3`` uint8. With ``matte_finish``: equal to ``background`` where
        ``alpha == 0``; alpha compositing of ``F`` when nothing is visible.
    """
    height, width = alpha.shape
    if background.shape != (height, width, 3):
        raise ValueError(
            f"Poisson blending needs an opaque H x W x 3 background of the image's size, "
            f"got {background.shape} for {alpha.shape}"
        )
    if rgb.shape != (height, width, 3) or fg.shape != (height, width, 3):
        raise ValueError(f"shape mismatch: rgb {rgb.shape}, fg {fg.shape}, alpha {alpha.shape}")
    mask = clone_mask(alpha)
    if not mask.any():
        log.debug("nothing visible to blend: alpha compositing")
        return composite(fg, alpha, background)
    if height * width > max_pixels:
        delta = _scaled_correction(rgb, alpha, background, mixed=mixed, max_pixels=max_pixels)
        if not matte_finish:
            return np.clip(rgb.astype(np.float32) + delta * 255.0 + 0.5, 0, 255).astype(np.uint8)
    else:
        cloned = seamless_clone(rgb, background, mask, mixed=mixed)
        if not matte_finish:
            return cloned
        delta = (cloned.astype(np.float32) - rgb.astype(np.float32)) / 255.0
    if edge_only:
        delta *= edge_weight(alpha)[..., None]
    shifted = np.clip(fg + delta, 0.0, 1.0)
    return composite(shifted, alpha, background)


def _scaled_correction(
    rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray, *, mixed: bool, max_pixels: int
) -> np.ndarray:
    """The clone's correction ``(clone - rgb) / 255`` solved on copies scaled down to at most
    ``max_pixels`` pixels, scaled back up: ``H x W x 3`` float32 in ``[-1, 1]``."""
    height, width = alpha.shape
    scale = (max_pixels / float(height * width)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_bg = cv2.resize(background, size, interpolation=cv2.INTER_AREA)
    small_alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    cloned = seamless_clone(small_rgb, small_bg, clone_mask(small_alpha), mixed=mixed)
    small_delta = (cloned.astype(np.float32) - small_rgb.astype(np.float32)) / 255.0
    log.debug("Poisson clone solved at %dx%d for %dx%d", size[0], size[1], width, height)
    return cv2.resize(small_delta, (width, height), interpolation=cv2.INTER_LINEAR)


def edge_weight(alpha: np.ndarray, width_px: float | None = None) -> np.ndarray:
    """How much of the Poisson correction each pixel takes: 1 on the soft edge and outside
    the subject, falling linearly to 0 at ``width_px`` inside its opaque part.

    Args:
        alpha: ``H x W`` float ``[0, 1]``.
        width_px: depth of the blend inside the opaque part; ``None`` =
            :func:`edge_band_px` of the image. The image border is not an edge (a body cut by
            the frame keeps its colours there).

    Returns:
        ``H x W`` float32 in ``[0, 1]``.
    """
    width = edge_band_px(*alpha.shape) if width_px is None else width_px
    opaque = (alpha >= OPAQUE_ALPHA).astype(np.uint8)
    depth = cv2.distanceTransform(opaque, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.clip(1.0 - depth / max(width, 1e-6), 0.0, 1.0).astype(np.float32)


def edge_band_px(height: int, width: int) -> float:
    """The blend's depth inside the subject: :data:`EDGE_BAND_FRACTION` of the shorter side,
    at least :data:`EDGE_BAND_MIN_PX`."""
    return max(EDGE_BAND_MIN_PX, EDGE_BAND_FRACTION * min(height, width))
