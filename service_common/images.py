"""Decode uploads safely and encode results.

Pure functions on bytes and numpy arrays; no Flask, no torch.

* :func:`probe` -> :class:`ImageHeader`: size, mode, frames and decoding work read from the
  file's header and structure, with every limit of the decode budget checked, before any
  pixel is decoded (the matting pipeline sizes its memory admission from it).
* :func:`decode_image` -> ``H x W x 3`` ``uint8`` RGB, EXIF orientation applied, after
  :func:`probe` (decompression bombs and CPU bombs are refused without decoding them).
* :func:`decode_mask` -> ``H x W`` ``uint8`` (trimaps and alpha mattes).
* :func:`encode_image` -> PNG / JPEG / WebP / TIFF bytes from RGB, RGBA or greyscale arrays.
* :func:`encode_mask16` / :func:`decode_mask16`: the 16-bit soft mask of ``/v1/mask``, as PNG
  or (between the services on one machine) uncompressed TIFF; decoding checks the answer.

The decode budget, checked from the structure of the file alone (a few reads of its
header, never the pixel data):

* pixels: at most ``max_pixels`` (``BACKDROP_MAX_PIXELS``; 413 ``image_too_large``);
* JPEG (and MPO): at most :data:`MAX_JPEG_SCANS` scans, each a pass over the whole picture;
* TIFF: at most :data:`MAX_TIFF_BLOCKS` strips or tiles in the first picture (each is one
  step of the decoder with its own bookkeeping: a 1 x 4,000,000 picture with one row per
  strip cost 15 s and 1.4 GB before this limit);
* PNG: at most :data:`MAX_PNG_CHUNKS` chunks; GIF: at most :data:`MAX_GIF_BLOCKS` blocks;
  WebP: at most :data:`MAX_PNG_CHUNKS` chunks;
* animations (GIF, APNG, animated WebP, multi-picture TIFF is not walked): at most
  :data:`MAX_FRAMES` frames (only the first is decoded, but the count bounds the parsing).

Beyond a limit the answer is 422 ``image_too_complex`` naming the limit and how to save the
file instead.

Errors are :class:`~service_common.errors.ApiError` with codes ``empty_body``,
``invalid_image``, ``unsupported_format``, ``image_too_large``, ``image_too_small`` and
``image_too_complex``.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from contract.formats import OUTPUT_FORMATS as FORMAT_TABLE
from contract.formats import tiff_blocks
from contract.vocab import SEGMENT_FORMATS

from .errors import ApiError

log = logging.getLogger(__name__)

#: Formats we decode (Pillow's names).
SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})

#: Formats we encode: our name -> (Pillow format, MIME type, file extension), from the table
#: of :mod:`contract.formats` (users get its result formats; bmp is the uncompressed hop
#: between the services).
OUTPUT_FORMATS: dict[str, tuple[str, str, str]] = {
    f.name: (f.pillow, f.mime, f.extension) for f in FORMAT_TABLE.values() if f.pillow is not None
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
#: Most strips or tiles in a TIFF's first picture. Writers use strips of about 8 KB (a 40 MP
#: RGB picture: about 15,000) or tiles of 256 x 256 (about 600); each costs the decoder a
#: step and its bookkeeping, so millions of one-row strips are a CPU and memory bomb.
MAX_TIFF_BLOCKS = 65_536
#: Most chunks in a PNG or WebP file (encoders write one per 8 to 64 KB of data: a 50 MB
#: file holds a few thousand); each costs the parser a step.
MAX_PNG_CHUNKS = 65_536
#: Most blocks (extensions, frames and their data sub-blocks of at most 255 bytes) in a GIF:
#: a 50 MB GIF written normally holds about 200,000.
MAX_GIF_BLOCKS = 1_000_000
#: Most frames in an animation (GIF, APNG, WebP): only the first is decoded, but the parser
#: walks them; 5,000 frames are more than three minutes at 25 frames per second.
MAX_FRAMES = 5_000

#: Peak bytes per pixel of :func:`decode_image` (the decoder's picture, the conversion to RGB
#: and the array; with alpha, the compositing over white in float32), measured with
#: ``bench/memory_budget.py --decode``; used to budget memory before decoding.
DECODE_BYTES_PER_PIXEL = 12
DECODE_ALPHA_BYTES_PER_PIXEL = 32


@dataclass(frozen=True)
class ImageHeader:
    """What an upload's header and structure say, before any pixel is decoded.

    Attributes:
        width, height: the picture's size in px as stored (before EXIF rotation, which keeps
            the pixel count).
        format: the format's name (``"PNG"``, ``"JPEG"``, ``"TIFF"``, ...).
        mode: how the pixels are stored (``"RGB"``, ``"L"``, ``"RGBA"``, ``"F"``, ...).
        frames: frames of an animation, 1 for a still picture.
        blocks: steps of the decoder the structure asks for (JPEG scans, TIFF strips or
            tiles, PNG or WebP chunks, GIF blocks).
    """

    width: int
    height: int
    format: str
    mode: str
    frames: int = 1
    blocks: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decode_bytes(self) -> int:
        """Estimated peak memory of decoding it to RGB, bytes."""
        alpha = self.mode in ("RGBA", "LA", "PA", "P", "RGBa", "La")
        return self.pixels * (DECODE_ALPHA_BYTES_PER_PIXEL if alpha else DECODE_BYTES_PER_PIXEL)


def jpeg_scans(data: bytes) -> int:
    """How many scans a JPEG file holds: its start-of-scan markers (``FF DA``). In the
    entropy-coded data a ``FF`` byte is always followed by ``00`` or a restart marker, so
    every ``FF DA`` is a marker (an embedded EXIF thumbnail adds its own, one or a few)."""
    return data.count(b"\xff\xda")


def _sniff(data: bytes) -> str | None:
    """The format a file's first bytes announce (only those whose structure is walked)."""
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"\xff\xd8":
        return "JPEG"
    return None


def png_structure(data: bytes, limit: int = MAX_PNG_CHUNKS) -> tuple[int, int]:
    """``(chunks, frames)`` of a PNG: its chunks up to ``IEND`` (counting stops one past
    ``limit``) and its animation frames (``fcTL`` chunks; 1 for a still PNG)."""
    pos, chunks, frames = 8, 0, 0
    end = len(data)
    while pos + 8 <= end and chunks <= limit:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        chunks += 1
        if kind == b"fcTL":
            frames += 1
        elif kind == b"IEND":
            break
        pos += 12 + length
    return chunks, max(frames, 1)


def webp_structure(data: bytes, limit: int = MAX_PNG_CHUNKS) -> tuple[int, int]:
    """``(chunks, frames)`` of a WebP: the RIFF chunks (counting stops one past ``limit``)
    and its animation frames (``ANMF`` chunks; 1 for a still WebP)."""
    pos, chunks, frames = 12, 0, 0
    end = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    while pos + 8 <= end and chunks <= limit:
        kind = data[pos:pos + 4]
        length = int.from_bytes(data[pos + 4:pos + 8], "little")
        chunks += 1
        if kind == b"ANMF":
            frames += 1
        pos += 8 + length + (length & 1)
    return chunks, max(frames, 1)


def gif_structure(data: bytes, limit: int = MAX_GIF_BLOCKS) -> tuple[int, int]:
    """``(blocks, frames)`` of a GIF: its extension, image and data sub-blocks (counting
    stops one past ``limit``) and its frames (image descriptors)."""
    end = len(data)
    pos = 13
    if end >= 13 and data[10] & 0x80:  # global colour table
        pos += 3 << ((data[10] & 7) + 1)
    blocks = frames = 0
    while pos < end and blocks <= limit:
        kind = data[pos]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            pos += 2
        elif kind == 0x2C:  # image descriptor, local colour table, LZW code size, sub-blocks
            frames += 1
            if pos + 10 > end:
                break
            flags = data[pos + 9]
            pos += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0) + 1
        else:
            break  # not GIF structure: the decoder decides
        blocks += 1
        while pos < end and blocks <= limit:
            size = data[pos]
            pos += 1 + size
            blocks += 1
            if size == 0:
                break
    return blocks, max(frames, 1)


def _too_complex(what: str, found: str, limit: int, advice: str, **details: int) -> ApiError:
    """422 ``image_too_complex``: "the image is ``found``; at most ``limit`` ..."."""
    return ApiError("image_too_complex", f"the {what} is {found}; at most {limit:,} are decoded. {advice}",
                    limit=limit, **details)


def _check_structure(data: bytes, sniffed: str | None, what: str) -> tuple[int, int]:
    """The decode budget's structure limits; returns ``(frames, blocks)``.

    Raises:
        ApiError: 422 ``image_too_complex`` naming the limit that was passed.
    """
    if sniffed == "JPEG":
        scans = jpeg_scans(data)
        if scans > MAX_JPEG_SCANS:
            raise ApiError(
                "image_too_complex",
                f"the {what} is a progressive JPEG with {scans} scans, and decoding each costs a "
                f"pass over the whole image; at most {MAX_JPEG_SCANS} are decoded. Save it "
                "again as a baseline JPEG or as PNG",
                scans=scans, max_scans=MAX_JPEG_SCANS, limit=MAX_JPEG_SCANS,
            )
        return 1, scans
    if sniffed == "TIFF":
        blocks = tiff_blocks(data)
        if blocks > MAX_TIFF_BLOCKS:
            raise _too_complex(what, f"a TIFF stored in {blocks:,} strips or tiles", MAX_TIFF_BLOCKS,
                               "Save it again with larger strips (the default of most programs) or "
                               "as PNG", blocks=blocks, max_blocks=MAX_TIFF_BLOCKS)
        return 1, blocks
    if sniffed in ("PNG", "WEBP"):
        chunks, frames = (png_structure if sniffed == "PNG" else webp_structure)(data)
        name = "a PNG" if sniffed == "PNG" else "a WebP"
        if chunks > MAX_PNG_CHUNKS:
            raise _too_complex(what, f"{name} made of {chunks:,} chunks or more", MAX_PNG_CHUNKS,
                               "Save it again (any program writes far fewer)",
                               blocks=chunks, max_blocks=MAX_PNG_CHUNKS)
    elif sniffed == "GIF":
        chunks, frames = gif_structure(data)
        if chunks > MAX_GIF_BLOCKS:
            raise _too_complex(what, f"a GIF made of {chunks:,} blocks or more", MAX_GIF_BLOCKS,
                               "Save it again as PNG", blocks=chunks, max_blocks=MAX_GIF_BLOCKS)
    else:
        return 1, 1
    if frames > MAX_FRAMES:
        raise _too_complex(what, f"an animation of {frames:,} frames", MAX_FRAMES,
                           "Send one frame as a PNG or JPEG picture",
                           frames=frames, max_frames=MAX_FRAMES)
    return frames, chunks


#: What to do about an upload whose data ends early or is damaged (the decoder's own message,
#: which names its internals, goes to the log).
_RESEND = "send the whole file again, or save it again as PNG or JPEG"


def _open(data: bytes, max_pixels: int, what: str) -> tuple[Image.Image, ImageHeader]:
    if not data:
        raise ApiError("empty_body", f"the {what} is empty; send the picture's bytes")
    frames, blocks = _check_structure(data, _sniff(data), what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ApiError("invalid_image", f"the {what} is not a PNG, JPEG, WebP, TIFF, BMP or GIF "
                       "image; send the picture in one of these formats") from exc
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad upload
        # the decoder's own words are for the log: they name its internals, not what to do
        log.info("the %s could not be opened: %s: %s", what, type(exc).__name__, exc)
        raise ApiError("invalid_image", f"the {what} could not be read: it ends early or its data "
                       f"is damaged; {_RESEND}") from exc
    if img.format not in SUPPORTED_FORMATS:
        raise ApiError(
            "unsupported_format",
            f"the {what} is {img.format}; send PNG, JPEG, WebP, GIF, BMP or TIFF",
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
    return img, ImageHeader(width, height, img.format or "PNG", img.mode, frames, blocks)


def probe(data: bytes, max_pixels: int, what: str = "image") -> ImageHeader:
    """Check an upload against the whole decode budget from its header and structure alone.

    Args:
        data: the file's bytes.
        max_pixels: the pixel limit (``BACKDROP_MAX_PIXELS``).
        what: how to name the upload in error messages (``"image"``, ``"trimap"``).

    Returns:
        its :class:`ImageHeader` (no pixel is decoded).

    Raises:
        ApiError: ``empty_body``, ``invalid_image``, ``unsupported_format``,
            ``image_too_small``, ``image_too_large`` or ``image_too_complex``.
    """
    img, header = _open(data, max_pixels, what)
    img.close()
    return header


def _load(img: Image.Image, what: str) -> Image.Image:
    try:
        img.seek(0)  # animated GIF/WebP/TIFF: the first frame
        img.load()
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data
        log.info("the %s could not be decoded: %s: %s", what, type(exc).__name__, exc)
        raise ApiError("invalid_image", f"the {what} is truncated or corrupt; {_RESEND}") from exc
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale images to 8-bit 'L' by scaling, not clipping.

    Integers: ``0..255`` stay, larger ranges are read as 16-bit (``/ 257``). Floats (``F``,
    32-bit TIFFs): ``[0, 1]`` is scaled to ``0..255`` (the usual range of float pictures),
    ``[0, 255]`` kept, larger as 16-bit; NaN and negative values are 0.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16)
        return Image.fromarray((arr >> 8).astype(np.uint8), mode="L")
    if img.mode in ("I", "F"):
        arr = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(arr.max(initial=0.0))
        unit = img.mode == "F" and top <= 1.0
        arr *= 255.0 if unit else (255.0 / 65535.0 if top > 255 else 1.0)
        arr += 0.5
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")
    return img


#: Rows converted at once from L*a*b* (bounds the float32 temporaries).
_LAB_ROWS_PIXELS = 1 << 20
#: XYZ (D65) -> linear sRGB.
_XYZ_TO_RGB = np.array([[3.2404542, -1.5371385, -0.4985314],
                        [-0.9692660, 1.8760108, 0.0415560],
                        [0.0556434, -0.2040259, 1.0572252]], dtype=np.float32)
_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* pixels as stored by the decoder (``H x W x 3`` uint8: ``L* * 255 / 100``,
    ``a* + 128``, ``b* + 128``) to sRGB, ``H x W x 3`` uint8 (D65 white; out-of-gamut
    colours clipped). Converted in bands of rows so the float32 temporaries stay small."""
    height, width = lab.shape[:2]
    out = np.empty((height, width, 3), dtype=np.uint8)
    step = max(1, _LAB_ROWS_PIXELS // max(width, 1))
    for top in range(0, height, step):
        band = lab[top:top + step].astype(np.float32)
        fy = (band[..., 0] * (100.0 / 255.0) + 16.0) / 116.0
        f = np.stack([fy + (band[..., 1] - 128.0) / 500.0, fy, fy - (band[..., 2] - 128.0) / 200.0], -1)
        xyz = np.where(f > 6.0 / 29.0, f ** 3, 3.0 * (6.0 / 29.0) ** 2 * (f - 4.0 / 29.0)) * _D65
        linear = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, 1.0)
        srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
        out[top:top + step] = (srgb * 255.0 + 0.5).astype(np.uint8)
    return out


def _convert(img: Image.Image, mode: str, what: str) -> np.ndarray:
    """``img`` as a contiguous array of ``mode`` (``"RGB"``, ``"RGBA"``, ``"L"``, ``"LA"``).

    L*a*b* pictures (TIFF) become sRGB, or their lightness for ``"L"``. Any other colour
    model that cannot be converted is a 415 ``unsupported_format`` saying what to send.
    """
    if img.mode == "LAB":
        lab = np.asarray(img)
        if mode == "L":
            return np.ascontiguousarray(lab[..., 0])
        rgb = lab_to_rgb(lab)
        if mode == "RGB":
            return rgb
        img = Image.fromarray(rgb)
    try:
        return np.ascontiguousarray(np.asarray(img if img.mode == mode else img.convert(mode)))
    except (ValueError, OSError) as exc:
        raise ApiError("unsupported_format", f"the {what} stores its colours as {img.mode}, which "
                       "cannot be converted; save it as RGB or greyscale PNG, JPEG or TIFF",
                       mode=img.mode) from exc


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info)


def decode_image(data: bytes, max_pixels: int, what: str = "image") -> DecodedImage:
    """Decode an uploaded image to RGB.

    Args:
        data: the file's bytes.
        max_pixels: refuse images with more pixels than this (from the header, before
            decoding; the rest of the decode budget too, see the module docstring).
        what: how to name the upload in error messages (``"image"``, ``"bg_image"``).

    Returns:
        a :class:`DecodedImage` (RGB ``uint8``, optional alpha).

    Greyscale, palette (with or without transparency), CMYK, L*a*b*, 16-bit, 32-bit float
    (``[0, 1]`` scaled), RGBA, animated (first frame) and EXIF-rotated images all work.
    """
    opened, _ = _open(data, max_pixels, what)
    fmt = opened.format or "PNG"
    img = _load(opened, what)
    img = _to_8bit(img)
    if _has_alpha(img):
        rgba = _convert(img, "RGBA", what)
        alpha = rgba[..., 3].copy()
        a = alpha[..., None].astype(np.float32) / 255.0
        rgb = (rgba[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)
        return DecodedImage(rgb=rgb, alpha=alpha, format=fmt)
    return DecodedImage(rgb=_convert(img, "RGB", what), alpha=None, format=fmt)


def decode_mask(data: bytes, max_pixels: int, what: str = "trimap") -> np.ndarray:
    """Decode a single-channel image (trimap, alpha matte) to ``H x W`` uint8.

    A colour image is converted to luma (an L*a*b* one to its lightness); an image with
    alpha uses its luma, not the alpha.
    """
    img = _to_8bit(_load(_open(data, max_pixels, what)[0], what))
    return _convert(img, "L", what)


def decode_luma_alpha(
    data: bytes, max_pixels: int, what: str = "hints"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an image to its luma and alpha, both ``H x W`` uint8 (alpha ``None`` when the
    image has none); the luma is taken before any compositing, so a half-transparent black
    pixel is still black (the touch-up ``hints``: :func:`trimap.hints.hints_from_pixels`)."""
    img = _to_8bit(_load(_open(data, max_pixels, what)[0], what))
    if _has_alpha(img):
        la = _convert(_convert_image(img, "RGBA", what), "LA", what)
        return np.ascontiguousarray(la[..., 0]), np.ascontiguousarray(la[..., 1])
    return _convert(img, "L", what), None


def _convert_image(img: Image.Image, mode: str, what: str) -> Image.Image:
    """``img`` converted to ``mode`` as a picture (see :func:`_convert`)."""
    return img if img.mode == mode else Image.fromarray(_convert(img, mode, what), mode=mode)


def encode_image(pixels: np.ndarray, fmt: str = "png", quality: int = 92, *,
                 compress_level: int = 3) -> bytes:
    """Encode ``pixels`` to ``fmt``.

    Args:
        pixels: ``H x W`` (grey), ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA), uint8.
        fmt: ``"png"``, ``"jpg"``, ``"webp"``, ``"tiff"`` (what users get; TIFF uncompressed in
            one strip: 0.5 to 2.7 ms for a 640 x 480 RGBA frame where PNG level 3 takes 15 to
            26 ms) or ``"bmp"`` (uncompressed, for the hop between the services on one
            machine). JPEG has no alpha: RGBA is refused.
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
    elif fmt == "tiff":
        img.save(buf, format=pil_fmt, compression="raw")  # uncompressed: speed, not size
    elif fmt == "bmp":
        img.save(buf, format=pil_fmt)
    else:
        img.save(buf, format=pil_fmt, quality=quality, subsampling=0 if quality >= 90 else 2)
    return buf.getvalue()


def mime_type(fmt: str) -> str:
    """The MIME type of one of :data:`OUTPUT_FORMATS`."""
    return OUTPUT_FORMATS[fmt][1]


#: Full scale of a 16-bit soft mask (value 65535 = 1.0).
MASK16_SCALE = 65535
#: The formats of a 16-bit soft mask (``/v1/mask``'s ``format``): PNG (compressed, level 1)
#: or TIFF (uncompressed, one strip: for the hop between the services on one machine).
MASK16_FORMATS = SEGMENT_FORMATS
#: The first bytes of a PNG and of a TIFF (little- and big-endian).
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
#: Pillow's modes of a 16-bit single-channel picture.
_MODES_16 = ("I;16", "I;16B", "I;16L")


def encode_mask16(mask: np.ndarray, fmt: str = "png") -> bytes:
    """A soft mask as a single-channel 16-bit greyscale PNG or TIFF.

    Args:
        mask: ``H x W`` float in ``[0, 1]`` (clipped; NaN counts as 0).
        fmt: ``"png"`` (fast, light compression: masks are mostly flat; a 640 x 480 mask
            from MODNet: 6 to 7.5 ms, 44 to 85 kB) or ``"tiff"`` (uncompressed, one strip:
            0.6 ms, 2 bytes a pixel: the hop to a matting service on this machine,
            :mod:`contract.transport`).

    Returns:
        the file's bytes, mode ``I;16``: ``round(mask * 65535)``.
    """
    if fmt not in MASK16_FORMATS:
        raise ValueError(f"unknown mask format {fmt!r}: expected one of {MASK16_FORMATS}")
    if mask.ndim != 2:
        raise ValueError(f"expected an H x W mask, got shape {mask.shape}")
    # fmax/fmin take NaN for 0; in place: np.nan_to_num alone took 2 ms of a 640 x 480 mask
    values = np.fmax(np.asarray(mask, dtype=np.float32), np.float32(0.0))
    np.fmin(values, np.float32(1.0), out=values)
    values *= np.float32(MASK16_SCALE)
    values += np.float32(0.5)
    quantised = values.astype(np.uint16)
    buf = io.BytesIO()
    if fmt == "tiff":  # Pillow's own writer: one strip (rows per strip = height)
        Image.fromarray(quantised).save(buf, format="TIFF", compression="raw")
    else:
        Image.fromarray(quantised).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_mask16(data: bytes, width: int, height: int) -> np.ndarray:
    """A single-channel mask of ``width x height`` as ``H x W`` float32 in ``[0, 1]``: a PNG
    (16-bit ``I;16``, or 8-bit ``L``) or a 16-bit TIFF (``I;16``, as :func:`encode_mask16`
    writes it).

    The bytes come from another service, so a TIFF is checked before its pixels are read: at
    most one strip or tile a row (counted from its header, :func:`contract.formats.tiff_blocks`,
    before Pillow reads the offset arrays: millions of strips are a CPU and memory bomb), then
    its size and mode.

    Raises:
        ValueError: not a PNG or TIFF, another size, more than one channel (or an 8-bit or
            32-bit TIFF), too many strips, or undecodable; the message says which.
    """
    if data.startswith(PNG_MAGIC):
        kind = "PNG"
    elif data[:4] in TIFF_MAGIC:
        kind = "TIFF"
        blocks = tiff_blocks(data)
        if blocks > max(1, height):
            raise ValueError(f"a TIFF of {blocks:,} strips or tiles, more than its {height} rows")
    else:
        raise ValueError(f"not a PNG or TIFF ({len(data)} bytes)")
    try:
        img = Image.open(io.BytesIO(data), formats=[kind])
        if img.size != (width, height):
            raise ValueError(f"size {img.size[0]}x{img.size[1]}, expected {width}x{height}")
        if kind == "TIFF" and img.mode not in _MODES_16:
            raise ValueError(f"mode {img.mode} TIFF, expected a 16-bit single channel (I;16)")
        img.load()
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad mask
        log.info("a mask %s could not be decoded: %s: %s", kind, type(exc).__name__, exc)
        raise ValueError(f"cannot decode the {kind}: it ends early or its data is damaged") from exc
    if img.mode in _MODES_16:
        return np.divide(np.asarray(img), np.float32(MASK16_SCALE), dtype=np.float32)
    if img.mode == "I":
        return (np.asarray(img, dtype=np.float32) / MASK16_SCALE).clip(0.0, 1.0)
    if img.mode == "L":
        return np.divide(np.asarray(img), np.float32(255.0), dtype=np.float32)
    raise ValueError(f"mode {img.mode}, expected a single channel (16-bit I;16 or 8-bit L)")
