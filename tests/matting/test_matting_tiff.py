"""``format=tiff`` over real HTTP (both services under gunicorn, the shipped portrait): an
uncompressed RGBA TIFF with the very pixels of the PNG answer, named ``result.tif`` - the
answer the video client asks for from a matting service on this machine."""

from __future__ import annotations

import io

import numpy as np
import requests
from PIL import Image

from client.video_matte import decode_rgba
from contract.formats import tiff_blocks


def _post(url: str, photo: bytes, **fields: str) -> requests.Response:
    return requests.post(url + "/v1/matte", files={"image": ("astronaut.png", photo, "image/png")},
                         data=fields, timeout=120)


def test_tiff_answer_is_the_png_answer_uncompressed(offline_services, sample_photo_bytes):
    _, mat = offline_services
    fields = {"bg_mode": "transparent", "foreground": "fast"}
    png = _post(mat.url, sample_photo_bytes, format="png", **fields)
    tiff = _post(mat.url, sample_photo_bytes, format="tiff", **fields)
    assert png.status_code == 200 and tiff.status_code == 200, (png.text[:300], tiff.text[:300])
    assert tiff.headers["Content-Type"] == "image/tiff"
    assert tiff.headers["Content-Disposition"] == 'inline; filename="result.tif"'
    assert png.headers["Content-Disposition"] == 'inline; filename="result.png"'
    with Image.open(io.BytesIO(tiff.content)) as img:
        assert img.format == "TIFF" and img.mode == "RGBA" and img.info["compression"] == "raw"
        tiff_pixels = np.asarray(img)
    png_pixels = np.asarray(Image.open(io.BytesIO(png.content)))
    assert tiff_pixels.shape == png_pixels.shape == (512, 512, 4)
    assert np.array_equal(tiff_pixels, png_pixels)
    alpha = png_pixels[..., 3]
    assert (alpha == 0).any() and (alpha == 255).any() and ((alpha > 0) & (alpha < 255)).any()
    assert tiff_blocks(tiff.content) == 1
    assert len(tiff.content) >= tiff_pixels.nbytes  # uncompressed
    assert "encode;dur=" in tiff.headers["Server-Timing"]
    # the video client reads it as it reads the PNG: same colours (straight), same alpha
    for got, want in zip(decode_rgba(tiff.content, (512, 512)), decode_rgba(png.content, (512, 512)),
                         strict=True):
        assert np.array_equal(got, want)


def test_tiff_of_a_matte_and_of_an_opaque_result(offline_services, sample_photo_bytes):
    _, mat = offline_services
    matte = _post(mat.url, sample_photo_bytes, format="tiff", channels="alpha")
    assert matte.status_code == 200 and matte.headers["Content-Type"] == "image/tiff"
    assert Image.open(io.BytesIO(matte.content)).mode == "L"
    opaque = _post(mat.url, sample_photo_bytes, format="tiff", bg_color="white")
    assert opaque.status_code == 200 and Image.open(io.BytesIO(opaque.content)).mode == "RGB"
