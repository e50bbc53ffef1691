"""End to end over real HTTP: both services under gunicorn (U^2-Net-p segmentation,
closed-form matting) on the shipped portrait (samples/astronaut.png, 512 x 512).

Where to look: the face is around x=220, y=130 (sure foreground); the top corners are the
grey studio wall, far from the person (sure background)."""

from __future__ import annotations

import io

import numpy as np
import requests
from apierrors import assert_api_error
from PIL import Image

FACE = (slice(120, 141), slice(210, 231))  # rows, cols around (x=220, y=130)
CORNERS = [(slice(0, 12), slice(0, 12)), (slice(0, 12), slice(500, 512))]


def _post(url, photo, files=None, **fields):
    all_files = {"image": ("astronaut.png", photo, "image/png"), **(files or {})}
    return requests.post(url + "/v1/matte", files=all_files, data=fields, timeout=120)


def test_readyz_names_both_sides(offline_services):
    seg, mat = offline_services
    body = requests.get(mat.url + "/readyz", timeout=10).json()
    assert body["status"] == "ready"
    assert body["backend"] == "closed_form" and body["device"] == "cpu"
    assert body["matting"]["warmed_up"] is True
    assert body["segmentation"]["status"] == "ready"
    assert body["segmentation"]["backend"] == "modnet"  # people: the auto policy's choice
    assert body["segmentation"]["policy"] == {
        "mode": "by-class", "person": "modnet", "other": "u2netp",
        "why": "auto: Mask R-CNN weights missing: MODNet (portrait matting) for people, "
               "U^2-Net-p (salient object) for other classes"}
    assert requests.get(mat.url + "/healthz", timeout=10).json() == {"status": "ok"}


def test_colour_background(offline_services, sample_photo, sample_photo_bytes):
    _, mat = offline_services
    resp = _post(mat.url, sample_photo_bytes, bg_color="#00b140", format="png")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "image/png"
    out = np.asarray(Image.open(io.BytesIO(resp.content)))
    assert out.shape == (512, 512, 3)
    for corner in CORNERS:
        assert (out[corner] == [0x00, 0xB1, 0x40]).all()
    assert np.array_equal(out[FACE], sample_photo[FACE])
    changed = (out != sample_photo).any(axis=2).mean()
    assert 0.2 < changed < 0.8  # the background went, the person stayed
    h = resp.headers
    assert h["X-Segmentation-Backend"] == "modnet" and h["X-Matting-Backend"] == "closed_form"
    assert h["X-Segmentation-Reason"].startswith("subject=auto: modnet's matte looks like a person")
    assert (h["X-Width"], h["X-Height"]) == ("512", "512")
    timing = h["Server-Timing"]
    assert all(f"{s};dur=" in timing for s in ("decode", "segmentation", "matting",
                                               "compositing", "encode"))
    top, height = int(h["X-Foreground-Top"]), int(h["X-Foreground-Height"])
    assert top < 60 and top + height > 500  # head near the top, body down to the bottom


def test_image_background_covers_the_frame(offline_services, sample_photo, sample_photo_bytes):
    _, mat = offline_services
    bg = np.zeros((300, 600, 3), np.uint8)  # 2:1, four bands: red, green, blue, yellow
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]):
        bg[:, 150 * i:150 * (i + 1)] = colour
    buf = io.BytesIO()
    Image.fromarray(bg).save(buf, format="PNG")
    resp = _post(mat.url, sample_photo_bytes, files={"bg_image": ("bg.png", buf.getvalue())},
                 format="png")
    assert resp.status_code == 200, resp.text
    out = np.asarray(Image.open(io.BytesIO(resp.content)))
    # cropped to the centre square (green | blue), scaled; a squashed one would show red
    assert (out[CORNERS[0]] == [0, 255, 0]).all()
    assert (out[CORNERS[1]] == [0, 0, 255]).all()
    assert np.array_equal(out[FACE], sample_photo[FACE])


def test_transparent_jpeg_and_size_cap(offline_services, sample_photo, sample_photo_bytes):
    _, mat = offline_services
    resp = _post(mat.url, sample_photo_bytes, size="256")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "image/png"  # auto: transparency -> PNG
    img = Image.open(io.BytesIO(resp.content))
    assert img.mode == "RGBA" and img.size == (256, 256)
    rgba = np.asarray(img)
    assert (rgba[:6, :6, 3] == 0).all() and (rgba[60:70, 105:115, 3] == 255).all()
    jpg = _post(mat.url, sample_photo_bytes, bg_mode="blur", format="jpg", size="256")
    assert jpg.status_code == 200 and jpg.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpg.content)).size == (256, 256)


def test_no_subject_is_passed_through(offline_services, sample_photo_bytes):
    """score_threshold=1 (passed through to the segmentation service): no score exceeds it."""
    seg, mat = offline_services
    files = {"image": ("a.png", sample_photo_bytes, "image/png")}
    direct = requests.post(seg.url + "/v1/trimap", files=files, timeout=60,
                           data={"score_threshold": "1"})
    expected = assert_api_error(direct, 422, "no_subject")
    resp = _post(mat.url, sample_photo_bytes, score_threshold="1")
    assert assert_api_error(resp, 422, "no_subject")["message"] == expected["message"]
    bad = _post(mat.url, sample_photo_bytes, classes="unicorn")  # the neighbour's 400
    assert "unicorn" in assert_api_error(bad, 400, "invalid_parameter")["message"]


def test_exif_rotated_jpeg_keeps_segmentation_and_matting_aligned(offline_services,
                                                                  sample_photo):
    """A phone JPEG stored sideways with EXIF orientation 6: both services see it upright."""
    _, mat = offline_services
    upright = sample_photo[::2, ::2]  # 256 x 256
    upright = upright[:, 32:224]  # 192 wide, 256 high: a portrait frame
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1)))  # 256 x 192
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", quality=95, exif=exif)
    resp = _post(mat.url, buf.getvalue(), bg_color="black", format="png")
    assert resp.status_code == 200, resp.text
    out = np.asarray(Image.open(io.BytesIO(resp.content)))
    assert out.shape == (256, 192, 3)  # upright, as displayed
    assert (resp.headers["X-Width"], resp.headers["X-Height"]) == ("192", "256")
    face = out[60:70, 73:83].astype(int)  # the face (x=220, y=130 at full size), upright
    assert np.abs(face - upright[60:70, 73:83].astype(int)).mean() < 6  # JPEG-close
    assert (out[:6, :6] == 0).all()  # the wall is gone
