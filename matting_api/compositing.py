"""Compositing, backgrounds, boxes and resizing: pure numpy (and OpenCV) on arrays.

No torch, no HTTP. Conventions used throughout:

* ``rgb`` images: ``H x W x 3`` ``uint8``, sRGB-encoded.
* ``rgba`` images: ``H x W x 4`` ``uint8``, straight (not premultiplied) alpha.
* ``fg``: the matting model's predicted foreground colour ``F``, ``H x W x 3`` ``float32`` in
  ``[0, 1]`` (sRGB-encoded). Using ``F`` instead of the input image removes the old
  background's colour from semi-transparent edges ("colour decontamination").
* ``alpha``: ``H x W`` ``float32`` in ``[0, 1]``.
* boxes: ``(left, top, width, height)`` in px, ints.

Blending happens in linear light (sRGB -> linear -> blend -> sRGB) in float. Pixels with
``alpha == 0`` are copied from the background and pixels with ``alpha == 1`` from the
foreground byte for byte, so those regions are exact whatever the rounding.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .options import CropMargin, SizeLimit

Box = tuple[int, int, int, int]

WHITE: tuple[int, int, int, int] = (255, 255, 255, 255)


# ---------------------------------------------------------------- sRGB <-> linear


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in ``[0, 1]`` -> linear light in ``[0, 1]`` (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in ``[0, 1]`` -> sRGB-encoded values in ``[0, 1]`` (float32)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(
        x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055
    ).astype(np.float32)


#: uint8 sRGB -> float32 linear, 256 entries.
_U8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)
#: linear quantised to 16 bits -> uint8 sRGB (fine enough near black, where sRGB is steep).
_LINEAR16_TO_U8 = np.round(
    linear_to_srgb(np.arange(65536, dtype=np.float32) / 65535.0) * 255.0
).astype(np.uint8)


def u8_to_linear(pixels: np.ndarray) -> np.ndarray:
    """``uint8`` sRGB (any shape) -> ``float32`` linear light in ``[0, 1]``, same shape."""
    return _U8_TO_LINEAR[pixels]


def linear_to_u8(linear: np.ndarray) -> np.ndarray:
    """``float`` linear light (any shape, clipped to ``[0, 1]``) -> ``uint8`` sRGB."""
    idx = (np.clip(linear, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    return _LINEAR16_TO_U8[idx]


def to_u8(x: np.ndarray) -> np.ndarray:
    """``float`` in ``[0, 1]`` (any shape) -> ``uint8`` by rounding, clipped."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------- compositing


def composite(fg: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``alpha * F + (1 - alpha) * B`` in linear light.

    Args:
        fg: ``H x W x 3`` float32 ``[0, 1]``: the predicted foreground colour ``F``.
        alpha: ``H x W`` float32 ``[0, 1]``.
        background: ``H x W x 3`` uint8 RGB, or ``H x W x 4`` uint8 RGBA (a background that
            is itself partly transparent: the result is the "over" operator, RGBA).

    Returns:
        ``H x W x 3`` uint8 (RGB background) or ``H x W x 4`` uint8 (RGBA background). Where
        ``alpha == 0`` it equals ``background`` exactly; where ``alpha == 1`` its colour is
        ``round(F * 255)`` exactly (and its alpha 255).
    """
    h, w = alpha.shape
    if fg.shape != (h, w, 3) or background.shape[:2] != (h, w):
        raise ValueError(f"shape mismatch: fg {fg.shape}, alpha {alpha.shape}, bg {background.shape}")
    channels = background.shape[2]
    out = background.copy()
    full = alpha >= 1.0
    mix = (alpha > 0.0) & ~full
    out[full, :3] = to_u8(fg[full])
    if channels == 4:
        out[full, 3] = 255
    if not mix.any():
        return out
    a = alpha[mix][:, None].astype(np.float32)
    f_lin = srgb_to_linear(np.clip(fg[mix], 0.0, 1.0))
    b_lin = u8_to_linear(background[mix][:, :3])
    if channels == 3:
        out[mix] = linear_to_u8(a * f_lin + (1.0 - a) * b_lin)
        return out
    b_a = background[mix][:, 3:4].astype(np.float32) / 255.0
    out_a = a + (1.0 - a) * b_a  # > 0 since a > 0
    colour = (a * f_lin + (1.0 - a) * b_a * b_lin) / out_a
    out[mix, :3] = linear_to_u8(colour)
    out[mix, 3] = to_u8(out_a[:, 0])
    return out


def transparent(fg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The cut-out subject: RGBA with ``F`` as colour and the matte as alpha.

    Args:
        fg: ``H x W x 3`` float32 ``[0, 1]``.
        alpha: ``H x W`` float32 ``[0, 1]``.

    Returns:
        ``H x W x 4`` uint8. Fully transparent pixels have colour 0, so nothing of the old
        background survives in the file (not even where it cannot be seen).
    """
    a8 = to_u8(alpha)
    out = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    visible = a8 > 0
    out[visible, :3] = to_u8(fg[visible])
    out[..., 3] = a8
    return out


def matte(alpha: np.ndarray) -> np.ndarray:
    """The greyscale matte: ``H x W`` float32 ``[0, 1]`` -> ``H x W`` uint8 ``0..255``."""
    return to_u8(alpha)


def flatten(rgba: np.ndarray, color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """An RGBA image over an opaque colour (for JPEG): ``H x W x 4`` -> ``H x W x 3`` uint8."""
    h, w = rgba.shape[:2]
    under = np.empty((h, w, 3), dtype=np.uint8)
    under[:] = np.asarray(color[:3], dtype=np.uint8)
    return composite(rgba[..., :3].astype(np.float32) / 255.0,
                     rgba[..., 3].astype(np.float32) / 255.0, under)


def has_transparency(pixels: np.ndarray) -> bool:
    """Whether an RGBA image has any pixel that is not fully opaque."""
    return pixels.ndim == 3 and pixels.shape[2] == 4 and bool((pixels[..., 3] < 255).any())


# ---------------------------------------------------------------- backgrounds


def solid_background(color: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """A plain background: ``H x W x 3`` uint8, or ``H x W x 4`` when ``color`` has alpha < 255."""
    channels = 3 if color[3] == 255 else 4
    out = np.empty((height, width, channels), dtype=np.uint8)
    out[:] = np.asarray(color[:channels], dtype=np.uint8)
    return out


def cover_resize(bg: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``bg`` to cover a ``width x height`` frame, aspect kept, centred; overflow cropped.

    Args:
        bg: ``h x w x C`` uint8 (C = 3 or 4).
        width, height: the frame, px.

    Returns:
        ``height x width x C`` uint8. A background of the frame's exact size is returned
        unchanged (a copy); nothing is ever stretched.
    """
    bh, bw = bg.shape[:2]
    if (bw, bh) == (width, height):
        return bg.copy()
    scale = max(width / bw, height / bh)
    crop_w = min(bw, max(1, round(width / scale)))
    crop_h = min(bh, max(1, round(height / scale)))
    x0 = (bw - crop_w) // 2
    y0 = (bh - crop_h) // 2
    region = np.ascontiguousarray(bg[y0:y0 + crop_h, x0:x0 + crop_w])
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    return cv2.resize(region, (width, height), interpolation=interp)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float32 ``H x W`` or ``H x W x C`` array (std dev ``sigma`` px).

    Large sigmas are done at a lower resolution (area-downscaled by ``sigma / 3``, blurred,
    upscaled back), which is indistinguishable for a blur and far cheaper.
    """
    h, w = image.shape[:2]
    factor = max(1, int(sigma // 3))
    if factor == 1 or min(h, w) // factor < 4:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma,
                                borderType=cv2.BORDER_REFLECT)
    small = cv2.resize(image, (max(1, w // factor), max(1, h // factor)),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / factor, sigmaY=sigma / factor,
                             borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def blur_background(rgb: np.ndarray, alpha: np.ndarray, sigma: float) -> np.ndarray:
    """The original picture, blurred, with the subject masked out.

    Normalised convolution in linear light: ``blur(I * (1 - alpha)) / blur(1 - alpha)``, so
    the subject's colours do not bleed into the blurred background around it. Deep inside
    the subject (where no background is near) it falls back to the plain blur; those pixels
    are hidden by the subject anyway.

    Args:
        rgb: ``H x W x 3`` uint8.
        alpha: ``H x W`` float32 ``[0, 1]``.
        sigma: Gaussian std dev in px, > 0.

    Returns:
        ``H x W x 3`` uint8.
    """
    lin = u8_to_linear(rgb)
    weight = (1.0 - alpha).astype(np.float32)
    num = gaussian_blur(lin * weight[..., None], sigma)
    den = gaussian_blur(weight, sigma)
    plain = gaussian_blur(lin, sigma)
    if num.ndim == 2:  # OpenCV drops a trailing axis of 1; never for 3 channels, but be safe
        num = num[..., None]
    trust = np.clip(den / 0.05, 0.0, 1.0)[..., None]
    masked = num / np.maximum(den, 1e-6)[..., None]
    return linear_to_u8(trust * masked + (1.0 - trust) * plain)


def grayscale_background(rgb: np.ndarray) -> np.ndarray:
    """The original picture desaturated (ITU-R BT.601 luma): ``H x W x 3`` uint8."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return np.repeat(grey[..., None], 3, axis=2)


def default_blur_radius(width: int, height: int) -> float:
    """2 % of the long side, at least 1 px."""
    return max(1.0, 0.02 * max(width, height))


# ---------------------------------------------------------------- boxes and cropping


def subject_box(alpha: np.ndarray, threshold: float = 0.0) -> Box | None:
    """Bounding box of the pixels with ``alpha > threshold``; ``None`` when there are none.

    Args:
        alpha: ``H x W`` float ``[0, 1]``.
        threshold: in ``[0, 1)``.
    """
    mask = alpha > threshold
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    top, bottom = int(rows[0]), int(rows[-1])
    left, right = int(cols[0]), int(cols[-1])
    return (left, top, right - left + 1, bottom - top + 1)


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
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def crop(pixels: np.ndarray, box: Box) -> np.ndarray:
    """``pixels[top:top+height, left:left+width]`` (any number of channels)."""
    left, top, width, height = box
    return pixels[top:top + height, left:left + width]


# ---------------------------------------------------------------- sizes


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


# ---------------------------------------------------------------- the whole render step


def render(
    rgb: np.ndarray,
    fg: np.ndarray,
    alpha: np.ndarray,
    *,
    bg_mode: str,
    channels: str = "rgba",
    bg_color: tuple[int, int, int, int] | None = None,
    bg_image: np.ndarray | None = None,
    blur_radius: float | None = None,
    box: Box | None = None,
) -> np.ndarray:
    """The result picture from the image, ``F`` and the matte.

    Args:
        rgb: ``H x W x 3`` uint8, the (working-size) input.
        fg: ``H x W x 3`` float32 ``[0, 1]``.
        alpha: ``H x W`` float32 ``[0, 1]``.
        bg_mode: ``image``, ``color``, ``transparent``, ``blur`` or ``grayscale``.
        channels: ``rgba`` (the picture) or ``alpha`` (the matte only).
        bg_color: ``(r, g, b, a)`` for ``color`` (alpha < 255 gives an RGBA result).
        bg_image: ``h x w x 3`` uint8 for ``image``; cover-resized to the output frame.
        blur_radius: Gaussian sigma (px) for ``blur``; default :func:`default_blur_radius`.
        box: crop to this box (in ``rgb`` coordinates); ``None`` = whole frame.

    Returns:
        ``h x w`` uint8 (matte), ``h x w x 3`` or ``h x w x 4`` uint8, ``(h, w)`` the box's size.
    """
    height, width = alpha.shape
    frame = box or (0, 0, width, height)
    a = crop(alpha, frame)
    if channels == "alpha":
        return matte(a)
    f = crop(fg, frame)
    if bg_mode == "transparent":
        return transparent(f, a)
    background = make_background(
        rgb, alpha, frame, bg_mode=bg_mode, bg_color=bg_color, bg_image=bg_image,
        blur_radius=blur_radius,
    )
    return composite(f, a, background)


def make_background(
    rgb: np.ndarray,
    alpha: np.ndarray,
    frame: Box,
    *,
    bg_mode: str,
    bg_color: tuple[int, int, int, int] | None = None,
    bg_image: np.ndarray | None = None,
    blur_radius: float | None = None,
) -> np.ndarray:
    """The new background of ``frame`` for any ``bg_mode`` but ``transparent``.

    Args:
        rgb: ``H x W x 3`` uint8, the (working-size) input.
        alpha: ``H x W`` float32 ``[0, 1]`` (masks the subject out of ``blur``).
        frame: ``(left, top, width, height)`` in ``rgb`` coordinates.
        bg_mode: ``image``, ``color``, ``blur`` or ``grayscale``.
        bg_color, bg_image, blur_radius: as for :func:`render`.

    Returns:
        ``h x w x 3`` uint8 (``h x w x 4`` for a ``bg_color`` with alpha < 255), C-contiguous,
        ``(h, w)`` the frame's size.
    """
    height, width = alpha.shape
    fw, fh = frame[2], frame[3]
    if bg_mode == "color":
        background = solid_background(bg_color or WHITE, fw, fh)
    elif bg_mode == "image":
        if bg_image is None:
            raise ValueError("bg_mode=image needs bg_image")
        background = cover_resize(bg_image, fw, fh)
    elif bg_mode == "blur":
        sigma = blur_radius or default_blur_radius(width, height)
        background = crop(blur_background(rgb, alpha, sigma), frame)
    elif bg_mode == "grayscale":
        background = crop(grayscale_background(rgb), frame)
    else:
        raise ValueError(f"unknown bg_mode {bg_mode!r}")
    return np.ascontiguousarray(background)
