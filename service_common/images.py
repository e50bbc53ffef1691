"""Decode uploads safely and encode results.

Pure functions on bytes and numpy arrays; no Flask, no torch.

* :func:`decode_image` -> ``H x W x 3`` ``uint8`` RGB, EXIF orientation applied, with the
  pixel limit checked from the header *before* any pixel is decoded (decompression bombs
  are refused without allocating them).
* :func:`decode_mask` -> ``H x W`` ``uint8`` (trimaps and alpha mattes).
* :func:`encode_image` -> PNG / JPEG / WebP bytes from RGB, RGBA or greyscale arrays.

Errors are :class:`~service_common.errors.ApiError` with codes ``empty_body``,
``invalid_image``, ``unsupported_format``, ``image_too_large`` and ``image_too_small``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ApiError

#: Formats we decode (Pillow's names).
SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})

#: Formats we encode: our name -> (Pillow format, MIME type, file extension). Users get png,
#: jpg or webp (contract.vocab.FORMATS); bmp is the uncompressed hop between the services.
OUTPUT_FORMATS: dict[str, tuple[str, str, str]] = {
    "png": ("PNG", "image/png", ".png"),
    "bmp": ("BMP", "image/bmp", ".bmp"),
    "jpg": ("JPEG", "image/jpeg", ".jpg"),
    "webp": ("WEBP", "image/webp", ".webp"),
}

# We enforce our own limit from the header; Pillow's own bomb check would otherwise raise
# a different error (or only warn) depending on the size.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodedImage:
    """An uploaded image after decoding.

    Attributes:
        rgb: ``H x W x 3`` uint8 RGB, EXIF orientation applied. Transparent pixels of an
            image with alpha are composited over white.
        alpha: ``H x W`` uint8 alpha of the upload when it had one, else ``None``.
        format: Pillow's name of the upload's format (``"PNG"``, ``"JPEG"``, ...).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    format: str

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


#: Most scans (SOS segments) a JPEG may have. Baseline JPEGs have 1, progressive ones from
#: cameras and encoders about 10 (libjpeg's default script) to 20; each scan is a decoding
#: pass over the whole image, so thousands of them are a CPU bomb (20,000 scans in 736 KB
#: cost 12 s of decoding).
MAX_JPEG_SCANS = 100


def jpeg_scans(data: bytes) -> int:
    """How many scans a JPEG file holds: its start-of-scan markers (``FF DA``). In the
    entropy-coded data a ``FF`` byte is always followed by ``00`` or a restart marker, so
    every ``FF DA`` is a marker (an embedded EXIF thumbnail adds its own, one or a few)."""
    return data.count(b"\xff\xda")


def _open(data: bytes, max_pixels: int, what: str) -> Image.Image:
    if not data:
        raise ApiError("empty_body", f"the {what} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ApiError("invalid_image", f"the {what} is not an image Pillow can read") from exc
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad upload
        raise ApiError("invalid_image", f"the {what} could not be read: {exc}") from exc
    if img.format not in SUPPORTED_FORMATS:
        raise ApiError(
            "unsupported_format",
            f"the {what} is {img.format}; send PNG, JPEG, WebP, GIF, BMP or TIFF",
        )
    if img.format == "JPEG":
        scans = jpeg_scans(data)
        if scans > MAX_JPEG_SCANS:
            raise ApiError(
                "image_too_complex",
                f"the {what} is a progressive JPEG with {scans} scans, and decoding each costs a "
                f"pass over the whole image; at most {MAX_JPEG_SCANS} are decoded. Save it "
                "again as a baseline JPEG or as PNG",
                scans=scans, max_scans=MAX_JPEG_SCANS,
            )
    width, height = img.size
    if width < 1 or height < 1:
        raise ApiError("image_too_small", f"the {what} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ApiError(
            "image_too_large",
            f"the {what} is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            width=width,
            height=height,
            max_pixels=max_pixels,
        )
    return img


def _load(img: Image.Image, what: str) -> Image.Image:
    try:
        img.seek(0)  # animated GIF/WebP/TIFF: the first frame
        img.load()
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data
        raise ApiError("invalid_image", f"the {what} is truncated or corrupt ({exc})") from exc
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale images to 8-bit 'L' by scaling, not clipping."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16)
        return Image.fromarray((arr >> 8).astype(np.uint8), mode="L")
    if img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    return img


def decode_image(data: bytes, max_pixels: int, what: str = "image") -> DecodedImage:
    """Decode an uploaded image to RGB.

    Args:
        data: the file's bytes.
        max_pixels: refuse images with more pixels than this (from the header, before
            decoding).
        what: how to name the upload in error messages (``"image"``, ``"bg_image"``).

    Returns:
        a :class:`DecodedImage` (RGB ``uint8``, optional alpha).

    Greyscale, palette (with or without transparency), CMYK, 16-bit, RGBA, animated
    (first frame) and EXIF-rotated images all work.
    """
    opened = _open(data, max_pixels, what)
    fmt = opened.format or "PNG"
    img = _load(opened, what)
    img = _to_8bit(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        alpha = rgba[..., 3].copy()
        a = alpha[..., None].astype(np.float32) / 255.0
        rgb = (rgba[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)
        return DecodedImage(rgb=rgb, alpha=alpha, format=fmt)
    rgb = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    return DecodedImage(rgb=rgb, alpha=None, format=fmt)


def decode_mask(data: bytes, max_pixels: int, what: str = "trimap") -> np.ndarray:
    """Decode a single-channel image (trimap, alpha matte) to ``H x W`` uint8.

    A colour image is converted to luma; an image with alpha uses its luma, not the alpha.
    """
    img = _load(_open(data, max_pixels, what), what)
    img = _to_8bit(img)
    if img.mode != "L":
        img = img.convert("L")
    return np.ascontiguousarray(np.asarray(img))


def decode_luma_alpha(
    data: bytes, max_pixels: int, what: str = "hints"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an image to its luma and alpha, both ``H x W`` uint8 (alpha ``None`` when the
    image has none); the luma is taken before any compositing, so a half-transparent black
    pixel is still black (the touch-up ``hints``: :func:`trimap.hints.hints_from_pixels`)."""
    img = _to_8bit(_load(_open(data, max_pixels, what), what))
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        la = np.asarray(img.convert("RGBA").convert("LA"))
        return np.ascontiguousarray(la[..., 0]), np.ascontiguousarray(la[..., 1])
    return np.ascontiguousarray(np.asarray(img.convert("L"))), None


def encode_image(pixels: np.ndarray, fmt: str = "png", quality: int = 92, *,
                 compress_level: int = 3) -> bytes:
    """Encode ``pixels`` to ``fmt``.

    Args:
        pixels: ``H x W`` (grey), ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA), uint8.
        fmt: ``"png"``, ``"jpg"``, ``"webp"`` (what users get) or ``"bmp"`` (uncompressed, for
            the hop between the services on one machine). JPEG has no alpha: RGBA is refused.
        quality: JPEG/WebP quality, 1..100.
        compress_level: PNG zlib level, 0..9 (1: fast, for the hop between the services).

    Returns:
        the encoded file's bytes.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}")
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 4 and fmt == "jpg":
        raise ValueError("JPEG cannot hold an alpha channel")
    img = Image.fromarray(np.ascontiguousarray(pixels))
    buf = io.BytesIO()
    pil_fmt = OUTPUT_FORMATS[fmt][0]
    if fmt == "png":
        img.save(buf, format=pil_fmt, compress_level=compress_level)
    elif fmt == "webp":
        img.save(buf, format=pil_fmt, quality=quality, method=4)
    elif fmt == "bmp":
        img.save(buf, format=pil_fmt)
    else:
        img.save(buf, format=pil_fmt, quality=quality, subsampling=0 if quality >= 90 else 2)
    return buf.getvalue()


def mime_type(fmt: str) -> str:
    """The MIME type of one of :data:`OUTPUT_FORMATS`."""
    return OUTPUT_FORMATS[fmt][1]


#: Full scale of a 16-bit soft mask PNG (value 65535 = 1.0).
MASK16_SCALE = 65535


def encode_mask16(mask: np.ndarray) -> bytes:
    """A soft mask as a single-channel 16-bit greyscale PNG.

    Args:
        mask: ``H x W`` float in ``[0, 1]`` (clipped; NaN counts as 0).

    Returns:
        PNG bytes, mode ``I;16``: ``round(mask * 65535)`` (fast, light compression: masks are
        mostly flat).
    """
    if mask.ndim != 2:
        raise ValueError(f"expected an H x W mask, got shape {mask.shape}")
    values = np.nan_to_num(np.asarray(mask, dtype=np.float32), nan=0.0)
    quantised = (np.clip(values, 0.0, 1.0) * MASK16_SCALE + 0.5).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(quantised).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_mask16(data: bytes, width: int, height: int) -> np.ndarray:
    """A single-channel PNG mask (16-bit ``I;16``, or 8-bit ``L``) of ``width x height`` as
    ``H x W`` float32 in ``[0, 1]``.

    Raises:
        ValueError: not a PNG, another size, more than one channel, or undecodable; the
            message says which.
    """
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"not a PNG ({len(data)} bytes)")
    try:
        img = Image.open(io.BytesIO(data))
        if img.size != (width, height):
            raise ValueError(f"size {img.size[0]}x{img.size[1]}, expected {width}x{height}")
        img.load()
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad mask
        raise ValueError(f"cannot decode the PNG ({exc})") from exc
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return (np.asarray(img, dtype=np.float32) / MASK16_SCALE).clip(0.0, 1.0)
    if img.mode == "L":
        return np.asarray(img, dtype=np.float32) / 255.0
    raise ValueError(f"mode {img.mode}, expected a single channel (16-bit I;16 or 8-bit L)")
