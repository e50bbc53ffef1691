"""Decoding uploads: formats, modes (float and L*a*b* TIFFs too), EXIF, limits, the decode
budget (TIFF strips, PNG chunks, GIF blocks, animation frames), and broken files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from service_common import images
from service_common.errors import ApiError
from service_common.images import (
    MAX_PNG_CHUNKS,
    MAX_TIFF_BLOCKS,
    decode_image,
    decode_luma_alpha,
    decode_mask,
    encode_image,
    gif_structure,
    probe,
    tiff_blocks,
)

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


# ------------------------------------------------------------------ the decode budget


def one_column_tiff(rows: int) -> bytes:
    """A valid uncompressed 8-bit greyscale TIFF of 1 x ``rows`` px with one row per strip
    (little-endian, written field by field): ``rows`` strips, pixel ``i`` = ``i % 256``."""
    n_entries = 9
    ifd_size = 2 + 12 * n_entries + 4
    offsets_at = 8 + ifd_size
    counts_at = offsets_at + 4 * rows
    pixels_at = counts_at + 4 * rows

    def entry(tag: int, kind: int, count: int, value: int) -> bytes:
        if kind == 3 and count == 1:
            return struct.pack("<HHIHH", tag, kind, count, value, 0)
        return struct.pack("<HHII", tag, kind, count, value)

    ifd = struct.pack("<H", n_entries) + b"".join([
        entry(256, 4, 1, 1), entry(257, 4, 1, rows), entry(258, 3, 1, 8), entry(259, 3, 1, 1),
        entry(262, 3, 1, 1), entry(273, 4, rows, offsets_at), entry(277, 3, 1, 1),
        entry(278, 4, 1, 1), entry(279, 4, rows, counts_at),
    ]) + struct.pack("<I", 0)
    offsets = (pixels_at + np.arange(rows, dtype="<u4")).astype("<u4").tobytes()
    counts = np.ones(rows, dtype="<u4").tobytes()
    pixels = (np.arange(rows) % 256).astype(np.uint8).tobytes()
    return b"II*\x00" + struct.pack("<I", 8) + ifd + offsets + counts + pixels


def _error(call, *args) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(*args)
    return info.value


def test_the_hand_made_tiff_is_a_real_one() -> None:
    data = one_column_tiff(300)
    assert tiff_blocks(data) == 300
    column = decode_mask(data, LIMIT)
    assert column.shape == (300, 1)
    np.testing.assert_array_equal(column[:, 0], np.arange(300) % 256)
    header = probe(data, LIMIT)
    assert (header.width, header.height, header.format, header.blocks) == (1, 300, "TIFF", 300)


@pytest.mark.parametrize("decoder", [decode_image, decode_mask, decode_luma_alpha, probe])
def test_a_tiff_of_millions_of_strips_is_refused_from_its_directory(decoder) -> None:
    """The issue's 1 x 4,000,000 picture, one row per strip: refused by counting the strips
    its first directory declares, before the decoder sees it."""
    error = _error(decoder, one_column_tiff(4_000_000), 40_000_000)
    assert error.code == "image_too_complex" and error.status == 422
    assert error.details["blocks"] == 4_000_000 and error.details["max_blocks"] == MAX_TIFF_BLOCKS
    assert "4,000,000 strips" in error.message and f"{MAX_TIFF_BLOCKS:,}" in error.message


def test_tiff_strips_implied_by_the_size_count_too() -> None:
    """A directory that declares one strip offset but one row per strip of a tall picture
    counts as the strips its size implies."""
    data = bytearray(one_column_tiff(300))
    assert tiff_blocks(bytes(data)) == 300
    tall = one_column_tiff(MAX_TIFF_BLOCKS + 10)
    assert tiff_blocks(tall) == MAX_TIFF_BLOCKS + 10
    assert _error(decode_image, tall, LIMIT).code == "image_too_complex"


def test_tiled_tiffs_and_normal_tiffs_pass() -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    plain = _save(Image.fromarray(rgb), "TIFF")
    assert 1 <= tiff_blocks(plain) <= MAX_TIFF_BLOCKS
    np.testing.assert_array_equal(decode_image(plain, LIMIT).rgb, rgb)
    big_endian = _save(Image.fromarray(rgb), "TIFF", tiffinfo={278: 7}, compression="tiff_lzw")
    assert tiff_blocks(big_endian) == -(-300 // 7)
    np.testing.assert_array_equal(decode_image(big_endian, LIMIT).rgb, rgb)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_a_png_of_too_many_chunks_is_refused() -> None:
    """The same small picture with its pixel data split into one-byte IDAT chunks."""
    raw = b"".join(b"\x00" + bytes(8) for _ in range(8))
    idat = zlib.compress(raw)
    head = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
    split = b"".join(_png_chunk(b"IDAT", idat[i:i + 1]) for i in range(len(idat)))
    fine = head + split + _png_chunk(b"IEND", b"")
    assert decode_mask(fine, LIMIT).shape == (8, 8)  # split IDATs are valid PNG
    padding = _png_chunk(b"tEXt", b"k\x00v") * (MAX_PNG_CHUNKS + 1)
    bomb = head + padding + split + _png_chunk(b"IEND", b"")
    error = _error(decode_image, bomb, LIMIT)
    assert error.code == "image_too_complex" and error.details["max_blocks"] == MAX_PNG_CHUNKS


def _animation(fmt: str, frames: int) -> bytes:
    pictures = [Image.new("RGB", (4, 4), (40 * i % 256, 0, 255 - 40 * i % 256)) for i in range(frames)]
    extra = {"lossless": True} if fmt == "WEBP" else {}
    return _save(pictures[0], fmt, save_all=True, append_images=pictures[1:], duration=40, **extra)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animation_frames_are_counted_and_bounded(fmt: str, monkeypatch) -> None:
    data = _animation(fmt, 6)
    assert probe(data, LIMIT).frames == 6
    out = decode_image(data, LIMIT)
    assert out.rgb.shape == (4, 4, 3) and out.rgb[0, 0, 0] < 30  # the first frame
    monkeypatch.setattr(images, "MAX_FRAMES", 5)
    error = _error(decode_image, data, LIMIT)
    assert error.code == "image_too_complex" and error.details["frames"] == 6
    assert error.details["max_frames"] == 5 and "6 frames" in error.message


def test_a_gif_of_too_many_blocks_is_refused(monkeypatch) -> None:
    data = _animation("GIF", 3)
    blocks, frames = gif_structure(data)
    assert frames == 3 and blocks > 3
    monkeypatch.setattr(images, "MAX_GIF_BLOCKS", blocks - 1)
    assert _error(decode_image, data, LIMIT).code == "image_too_complex"


def test_float_tiffs_in_zero_one_are_scaled_not_black() -> None:
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    data = _save(Image.fromarray(ramp, mode="F"), "TIFF")
    grey = decode_mask(data, LIMIT)
    assert grey[0, 0] == 0 and grey[-1, -1] == 255 and abs(int(grey[4, 0]) - 130) <= 2
    rgb = decode_image(data, LIMIT).rgb
    assert rgb[-1, -1].tolist() == [255, 255, 255]
    wide = _save(Image.fromarray(ramp * 255.0, mode="F"), "TIFF")  # 0..255 floats stay
    assert decode_mask(wide, LIMIT)[-1, -1] == 255 and decode_mask(wide, LIMIT)[4, 0] in (129, 130, 131)
    nan = ramp.copy()
    nan[0, 0] = np.nan
    assert decode_mask(_save(Image.fromarray(nan, mode="F"), "TIFF"), LIMIT)[0, 0] == 0


def _lab_tiff(pixels: list[tuple[int, int, int]], width: int) -> bytes:
    height = len(pixels) // width
    return _save(Image.frombytes("LAB", (width, height), bytes(v for p in pixels for v in p)), "TIFF")


def test_lab_tiffs_are_converted() -> None:
    """L*a*b* TIFFs: RGB pictures through CIE L*a*b* -> sRGB, masks and hints by lightness."""
    data = _lab_tiff([(255, 128, 128), (0, 128, 128), (128, 128, 128), (136, 208, 195)], 2)
    rgb = decode_image(data, LIMIT).rgb
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[0, 1].tolist() == [0, 0, 0]
    assert np.ptp(rgb[1, 0]) <= 1 and 115 <= rgb[1, 0, 0] <= 125  # L* 50: mid grey
    red = rgb[1, 1].astype(int)  # L* 53, a* 80, b* 67: sRGB's red
    assert red[0] > 230 and red[1] < 40 and red[2] < 40
    np.testing.assert_array_equal(decode_mask(data, LIMIT), [[255, 0], [128, 136]])
    luma, alpha = decode_luma_alpha(data, LIMIT)
    assert alpha is None and luma.tolist() == [[255, 0], [128, 136]]


def test_colour_models_that_cannot_be_converted_are_a_415(monkeypatch) -> None:
    data = _save(Image.new("CMYK", (2, 2), (0, 255, 0, 0)), "JPEG")
    assert decode_image(data, LIMIT).rgb.shape == (2, 2, 3)

    def refuse(self, mode=None, *_args, **_kwargs):
        raise ValueError(f"conversion from {self.mode} to {mode} not supported")

    monkeypatch.setattr(Image.Image, "convert", refuse)
    for decoder in (decode_image, decode_mask, decode_luma_alpha):
        error = _error(decoder, data, LIMIT)
        assert error.code == "unsupported_format" and error.status == 415, error.message
        assert "CMYK" in error.message and error.details["mode"] == "CMYK"


#: Library and decoder words no message to an API user may carry.
INTERNALS = ("pillow", "pil ", "opencv", "cv2", "numpy", "libjpeg", "libpng", "libtiff", "libwebp",
             "decoder", "truncated file read", "bytes not processed", "errno", "object at 0x")


def _damaged_files() -> dict[str, bytes]:
    """Uploads that every decoder refuses, each in a way its own message would describe in
    its internals' words ("Truncated File Read", "could not create decoder object", ...)."""
    rgb = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    files = {fmt: _save(Image.fromarray(rgb), fmt) for fmt in ("PNG", "JPEG", "TIFF", "WEBP", "GIF", "BMP")}
    cut = {f"{fmt} cut in half": data[: len(data) // 2] for fmt, data in files.items()}
    return {**cut, "JPEG header only": files["JPEG"][:30], "BMP header only": files["BMP"][:20],
            "WEBP header only": files["WEBP"][:20],
            "JPEG magic and noise": b"\xff\xd8\xff\xe0" + b"\x01" * 100}


def test_messages_name_formats_not_libraries() -> None:
    error = _error(decode_image, b"this is plain text, not an image", LIMIT)
    assert error.message == ("the image is not a PNG, JPEG, WebP, TIFF, BMP or GIF image; send the "
                             "picture in one of these formats")


@pytest.mark.parametrize("name", sorted(_damaged_files()))
def test_a_damaged_file_says_what_to_do_not_what_the_decoder_said(name) -> None:
    for decoder, what in ((decode_image, "bg_image"), (decode_mask, "trimap"), (decode_luma_alpha, "hints")):
        error = _error(decoder, _damaged_files()[name], LIMIT, what)
        assert error.code == "invalid_image", (name, error.message)
        assert error.message.startswith(f"the {what} "), error.message
        assert "save it again as PNG or JPEG" in error.message or "send the picture" in error.message
        assert not any(word in error.message.lower() for word in INTERNALS), error.message


def test_probe_reads_the_header_only() -> None:
    header = probe(_png_header_only(3000, 2000), LIMIT)  # the pixel data is missing
    assert (header.width, header.height, header.pixels, header.mode) == (3000, 2000, 6_000_000, "RGB")
    assert header.decode_bytes == 6_000_000 * images.DECODE_BYTES_PER_PIXEL
    rgba = probe(_save(Image.new("RGBA", (10, 10)), "PNG"), LIMIT)
    assert rgba.decode_bytes == 100 * images.DECODE_ALPHA_BYTES_PER_PIXEL
