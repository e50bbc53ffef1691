"""The mask's way back on one machine: the matting service asks a segmentation service on this
machine for an uncompressed 16-bit TIFF (PNG elsewhere, or when the hop is told png), reads
the very mask of the PNG answer from it, and trusts no TIFF it did not check: one that is
not 16-bit single-channel, not the image's size, truncated or of more strips than rows is a
502 ``segmentation_bad_response``. The masks come from the real segmentation service
(``offline_services``); the bad answers from a misbehaving neighbour."""

from __future__ import annotations

import io
import struct
import time

import numpy as np
import pytest
from apierrors import assert_api_error
from PIL import Image

from matting_api.segmentation_client import SegmentationClient
from service_common.images import encode_mask16


def _tiff(arr: np.ndarray, **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="TIFF", **save)
    return buf.getvalue()


def _with_strips(data: bytes, strips: int) -> bytes:
    """``data`` (a little-endian one-strip TIFF) whose StripOffsets entry declares ``strips``."""
    ifd = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, ifd)[0]
    out = bytearray(data)
    for i in range(count):
        at = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, at)[0] == 273:  # StripOffsets
            struct.pack_into("<I", out, at + 4, strips)
            return bytes(out)
    raise AssertionError("no StripOffsets")


@pytest.fixture(scope="module")
def photo(sample_photo) -> np.ndarray:
    return np.ascontiguousarray(sample_photo[::2, ::2])  # 256 x 256


def test_tiff_on_this_machine_png_when_told(offline_services, photo, make_neighbour):
    seg, _ = offline_services
    relay = make_neighbour()
    relay.target, relay.mode = seg.url, "relay"
    relay.start()
    local = SegmentationClient(relay.url, 3.0, 60.0)
    told_png = SegmentationClient(relay.url, 3.0, 60.0, transport="png")
    try:
        assert (local.transport, local.mask_format) == ("bmp", "tiff")
        assert (told_png.transport, told_png.mask_format) == ("png", "png")
        from_tiff = local.mask(photo, {"model_size": "256"})
        from_png = told_png.mask(photo, {"model_size": "256"})
    finally:
        local.close()
        told_png.close()
    first, second = relay.received
    assert first.headers["Accept"] == "image/tiff" and "format=tiff" in first.path.split("?")[1]
    assert second.headers["Accept"] == "image/png" and "format=" not in second.path
    assert from_tiff.mask.dtype == from_png.mask.dtype == np.float32
    assert from_tiff.mask.shape == (256, 256)
    assert np.array_equal(from_tiff.mask, from_png.mask)
    assert len(np.unique(from_tiff.mask)) > 1000  # 16 bits
    assert from_tiff.backend == from_png.backend in ("modnet", "u2netp")


def test_a_remote_service_is_asked_for_png():
    client = SegmentationClient("http://segmentation:3000", 3.0, 60.0)
    assert (client.transport, client.mask_format) == ("png", "png")
    client.close()


def test_the_size_limit_of_an_answer_holds_a_tiff(neighbour):
    """The answer's limit (3 bytes a pixel + 1 MB) holds a 16-bit TIFF (2 bytes a pixel)."""
    big = np.zeros((700, 900), np.float32)
    big[200:500, 300:600] = 1.0
    neighbour.mode, neighbour.content_type = "body", "image/tiff"
    neighbour.content = encode_mask16(big, "tiff")
    assert len(neighbour.content) > 2 * big.size
    client = SegmentationClient(neighbour.url, 1.0, 5.0)
    try:
        result = client.mask(np.zeros((700, 900, 3), np.uint8))
    finally:
        client.close()
    assert np.array_equal(result.mask, big)


GOOD = np.zeros((64, 64), np.uint16)
GOOD[16:48, 16:48] = 65535


@pytest.mark.parametrize(("content", "why"), [
    (_tiff((GOOD >> 8).astype(np.uint8)), "mode L TIFF"),  # 8-bit
    (_tiff(GOOD[:32, :32]), "size 32x32"),
    (_tiff(np.zeros((64, 64, 3), np.uint8)), "mode RGB TIFF"),
    (_tiff(GOOD.astype(np.int32)), "mode I TIFF"),
    (_tiff(GOOD)[:2000], "cannot decode the TIFF"),
    (_with_strips(_tiff(GOOD), 1_000_000), "1,000,000 strips or tiles, more than its 64 rows"),
    (b"II*\x00" + b"\x00" * 60, "cannot decode the TIFF"),
    (_tiff(np.zeros((64, 64), np.uint16)), "no pixel of the subject"),
])
def test_bad_tiff_answers_are_502(make_app, neighbour, scene, png, content, why):
    neighbour.mode, neighbour.content, neighbour.content_type = "body", content, "image/tiff"
    client = make_app(segmentation_url=neighbour.url, segmentation_timeout=1.0).test_client()
    started = time.monotonic()
    resp = client.post("/v1/matte", data={"image": (io.BytesIO(png(scene.rgb)), "i.png"),
                                          "bg_color": "white"})
    assert time.monotonic() - started < 5.0
    assert why in assert_api_error(resp, 502, "segmentation_bad_response")["message"]


def test_a_good_tiff_answer_is_used(make_app, neighbour, scene, png):
    mask = np.round(scene.alpha * 65535).astype(np.uint16)
    neighbour.mode, neighbour.content, neighbour.content_type = "body", _tiff(mask), "image/tiff"
    client = make_app(segmentation_url=neighbour.url, segmentation_timeout=1.0).test_client()
    resp = client.post("/v1/matte", data={"image": (io.BytesIO(png(scene.rgb)), "i.png"),
                                          "channels": "alpha", "format": "png"})
    assert resp.status_code == 200, resp.get_json()
    alpha = np.asarray(Image.open(io.BytesIO(resp.data)))
    assert alpha.shape == (64, 64)
    assert alpha[32, 32] == 255 and alpha[0, 0] == 0
