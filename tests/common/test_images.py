"""Decoding uploads: formats, modes, EXIF, limits, and broken files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from service_common.errors import ApiError
from service_common.images import decode_image, decode_mask, encode_image

LIMIT = 10_000_000


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height but which carries almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 10)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _code(data: bytes, limit: int = LIMIT) -> str:
    with pytest.raises(ApiError) as info:
        decode_image(data, limit)
    return info.value.code


def test_rgb_png_round_trip() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    out = decode_image(_save(Image.fromarray(rgb), "PNG"), LIMIT)
    assert out.format == "PNG" and out.alpha is None
    np.testing.assert_array_equal(out.rgb, rgb)
    assert (out.width, out.height) == (5, 7)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("L", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("P", "PNG"),
     ("RGB", "WEBP"), ("RGB", "BMP"), ("RGB", "TIFF")],
)
def test_modes_become_rgb(mode: str, fmt: str) -> None:
    img = Image.new("RGB", (6, 4), (200, 100, 50)).convert(mode) if mode != "I;16" else \
        Image.fromarray(np.full((4, 6), 40000, dtype=np.uint16))
    out = decode_image(_save(img, fmt), LIMIT)
    assert out.rgb.shape == (4, 6, 3) and out.rgb.dtype == np.uint8
    if mode == "I;16":
        assert out.rgb[0, 0, 0] == 40000 >> 8  # scaled to 8 bit, not clipped to 255


def test_rgba_and_palette_transparency_keep_alpha_and_flatten_on_white() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    out = decode_image(_save(Image.fromarray(rgba), "PNG"), LIMIT)
    assert out.alpha is not None and out.alpha[0, 0] == 255 and out.alpha[1, 1] == 0
    assert tuple(out.rgb[0, 0]) == (255, 0, 0) and tuple(out.rgb[1, 1]) == (255, 255, 255)
    pal = Image.new("P", (3, 3), 0)
    pal.putpalette([0, 0, 0, 10, 20, 30])
    pal.putpixel((1, 1), 1)
    out = decode_image(_save(pal, "PNG", transparency=0), LIMIT)
    assert out.alpha is not None and out.alpha[0, 0] == 0 and out.alpha[1, 1] == 255
    assert tuple(out.rgb[1, 1]) == (10, 20, 30)


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    out = decode_image(buf.getvalue(), LIMIT)
    assert out.format == "GIF"
    assert out.rgb[0, 0, 0] > 200 and out.rgb[0, 0, 2] < 50


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (8, 4), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 2, 4))  # white strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = decode_image(_save(img, "JPEG", exif=exif, quality=95), LIMIT)
    assert out.rgb.shape == (8, 4, 3)  # width and height swapped
    assert out.rgb[0, :, 0].mean() > 200  # the left strip is now the top row


def test_errors() -> None:
    assert _code(b"") == "empty_body"
    assert _code(b"this is plain text, not an image") == "invalid_image"
    png = _save(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
    jpg = _save(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)), "JPEG")
    assert _code(png[: len(png) // 2]) == "invalid_image"
    assert _code(jpg[: len(jpg) // 3]) == "invalid_image"
    assert _code(_save(Image.new("RGB", (20, 20)), "PNG"), limit=100) == "image_too_large"
    assert _code(_save(Image.new("RGB", (4, 4)), "PPM")) == "unsupported_format"


def test_decompression_bomb_is_refused_from_the_header() -> None:
    bomb = _png_header_only(100_000, 100_000)
    with pytest.raises(ApiError) as info:
        decode_image(bomb, 40_000_000)
    assert info.value.code == "image_too_large" and info.value.status == 413
    assert info.value.details["width"] == 100_000


def test_decode_mask_and_encode() -> None:
    tri = np.array([[0, 128], [255, 128]], np.uint8)
    np.testing.assert_array_equal(decode_mask(encode_image(tri, "png"), LIMIT), tri)
    rgba = np.zeros((3, 3, 4), np.uint8)
    assert encode_image(rgba, "png")[:4] == b"\x89PNG"
    assert encode_image(rgba, "webp")[8:12] == b"WEBP"
    with pytest.raises(ValueError):
        encode_image(rgba, "jpg")
    assert encode_image(rgba[..., :3], "jpg")[:2] == b"\xff\xd8"
