"""Real image files for the robustness tests, generated in memory, and the services' limits.

Every photo is :func:`bench.load.disk_image`: a saturated disk on a dark noisy background,
which the offline segmentation model (U^2-Net-p) finds as the salient object.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from bench.load import disk_image

#: Limits of the services under test (small, so that exceeding them is cheap).
MAX_UPLOAD_MB = 1
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_PIXELS = 2_000_000
#: The flaky neighbour's matting service waits this long for the segmentation service, s.
SEG_TIMEOUT = 2.5
SEG_CONNECT_TIMEOUT = 0.5

__all__ = [
    "MAX_PIXELS", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_MB", "SEG_CONNECT_TIMEOUT", "SEG_TIMEOUT",
    "animated_gif", "cmyk_jpeg", "compressed_bomb_png", "disk_image", "encode", "exif_rotated_jpeg",
    "grey_png", "jpeg_header_only", "palette_png_with_transparency", "photo_png", "png16", "png_header_only",
    "rgba_png", "trimap_png", "truncated",
]


def encode(img: Image.Image | np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    """A Pillow image or a uint8 array encoded as ``fmt``."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def photo_png(width: int, height: int, seed: int = 0) -> bytes:
    return encode(disk_image(width, height, seed))


def truncated(data: bytes) -> bytes:
    """The first half of a file."""
    return data[: len(data) // 2]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width x height`` RGB pixels (valid CRCs), with 16 bytes of
    pixel data: a decompression bomb by its header (100000 x 100000 = 30 GB decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _chunk(b"IEND", b""))


def compressed_bomb_png(side: int) -> bytes:
    """A *complete*, valid ``side x side`` greyscale PNG of zeros: ``side**2`` bytes of pixels
    squeezed into ~``side**2 / 1000`` bytes (10000 px: 100 MB in ~100 kB)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_header_only(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is rewritten to declare ``width x height``
    (at most 65535 each): a decompression bomb by its header."""
    data = bytearray(encode(np.zeros((8, 8, 3), np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def cmyk_jpeg(width: int, height: int) -> bytes:
    return encode(Image.fromarray(disk_image(width, height)).convert("CMYK"), "JPEG", quality=95)


def png16(width: int, height: int) -> bytes:
    """16-bit greyscale PNG (mode ``I;16``)."""
    grey = disk_image(width, height).max(axis=2).astype(np.uint16) * 257
    img = Image.fromarray(grey)
    assert img.mode.startswith("I;16")
    return encode(img)


def palette_png_with_transparency(width: int, height: int) -> bytes:
    """Palette PNG whose entry 0 (the background's darkest colour) is transparent."""
    img = Image.fromarray(disk_image(width, height)).convert("P", palette=Image.Palette.ADAPTIVE,
                                                            colors=32)
    return encode(img, transparency=0)


def grey_png(width: int, height: int) -> bytes:
    return encode(Image.fromarray(disk_image(width, height)).convert("L"))


def rgba_png(width: int, height: int) -> bytes:
    rgb = disk_image(width, height)
    alpha = np.full((height, width), 255, np.uint8)
    alpha[:, : width // 10] = 0  # a transparent strip on the left
    return encode(np.dstack([rgb, alpha]))


def animated_gif(width: int, height: int) -> bytes:
    """Two frames: the disk in the left half (first frame), then in the right half."""
    frames = []
    for offset in (0, width // 2):
        canvas = np.zeros((height, width, 3), np.uint8)
        canvas[:, offset:offset + width // 2] = disk_image(width // 2, height, seed=3)
        frames.append(Image.fromarray(canvas))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buf.getvalue()


def exif_rotated_jpeg(width: int, height: int) -> bytes:
    """A ``width x height`` JPEG whose EXIF orientation (6) says: rotate 90 degrees clockwise;
    it displays as ``height x width``."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(disk_image(width, height), "JPEG", quality=95, exif=exif.tobytes())


def trimap_png(width: int, height: int, *, foreground: bool = True) -> bytes:
    """A 0/128/255 trimap of a centred disk (sure foreground only when ``foreground``)."""
    yy, xx = np.mgrid[:height, :width]
    dist = np.hypot(xx - (width - 1) / 2, yy - (height - 1) / 2)
    radius = min(width, height) / 3
    trimap = np.zeros((height, width), np.uint8)
    trimap[dist <= radius + 3] = 128
    if foreground:
        trimap[dist <= radius - 3] = 255
    return encode(trimap)
