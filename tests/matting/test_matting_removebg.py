"""POST /v1.0/removebg with the requests existing remove.bg clients send."""

from __future__ import annotations

import base64
import io
import zipfile

import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from PIL import Image

FACE = (slice(120, 141), slice(210, 231))
CORNERS = [(slice(0, 12), slice(0, 12)), (slice(0, 12), slice(500, 512))]


def test_removebg_client_request(offline_services, sample_photo, sample_photo_bytes):
    """What the python/Node remove.bg SDKs send: multipart image_file, size, bg_color,
    format, an API key header."""
    _, mat = offline_services
    resp = requests.post(
        mat.url + "/v1.0/removebg",
        files={"image_file": ("astronaut.png", sample_photo_bytes)},
        data={"size": "auto", "bg_color": "81d4fa", "format": "png", "type": "auto"},
        headers={"X-Api-Key": "not-checked"},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "image/png"
    out = np.asarray(Image.open(io.BytesIO(resp.content)))
    assert out.shape == (512, 512, 3)
    for corner in CORNERS:
        assert (out[corner] == [0x81, 0xD4, 0xFA]).all()
    assert np.array_equal(out[FACE], sample_photo[FACE])
    h = resp.headers
    assert h["X-Type"] == "person"  # auto: the people model served the portrait
    assert (h["X-Width"], h["X-Height"]) == ("512", "512")
    assert h["X-Credits-Charged"] == "0"
    assert int(h["X-Foreground-Top"]) < 60 and int(h["X-Foreground-Height"]) > 400
    assert {"X-Foreground-Left", "X-Foreground-Width"} <= set(h)


def test_removebg_json_answer_with_base64_input(offline_services, sample_photo_bytes):
    _, mat = offline_services
    resp = requests.post(
        mat.url + "/v1.0/removebg",
        data={"image_file_b64": base64.b64encode(sample_photo_bytes).decode(),
              "size": "preview", "type": "person", "crop": "true"},
        headers={"Accept": "application/json", "X-Api-Key": "x"},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    img = Image.open(io.BytesIO(base64.b64decode(data["result_b64"])))
    assert img.format == "PNG" and img.mode == "RGBA"  # auto + transparency -> PNG
    assert img.width * img.height <= 250_000  # preview: 0.25 MP at most
    assert (data["foreground_left"], data["foreground_top"]) == (0, 0)  # cropped to it
    assert (data["foreground_width"], data["foreground_height"]) == img.size
    assert resp.headers["X-Type"] == "person"


def test_removebg_zip_format(offline_services, sample_photo_bytes):
    _, mat = offline_services
    resp = requests.post(
        mat.url + "/v1.0/removebg",
        files={"image_file": ("a.png", sample_photo_bytes)},
        data={"size": "preview", "format": "zip"}, timeout=120,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        assert sorted(zf.namelist()) == ["alpha.png", "color.jpg"]
        colour = Image.open(io.BytesIO(zf.read("color.jpg")))
        alpha = Image.open(io.BytesIO(zf.read("alpha.png")))
    assert colour.format == "JPEG" and alpha.mode == "L" and colour.size == alpha.size
    assert colour.size == (500, 500)


def _errors(resp) -> list[dict]:
    body = resp.get_json()
    assert set(body) == {"errors"}
    return body["errors"]


@pytest.mark.parametrize(
    ("data", "code", "parameter"),
    [
        ({}, "missing_field", None),
        ({"image_url": "https://example.com/a.jpg"}, "invalid_parameter", "image_url"),
        ({"bg_image_url": "https://example.com/a.jpg"}, "invalid_parameter", "bg_image_url"),
        ({"scale": "5%"}, "invalid_parameter", "scale"),
        ({"position": "50% 50% 50%"}, "invalid_parameter", "position"),
        ({"roi": "10px 10px 20px"}, "invalid_parameter", "roi"),
        ({"roi": "50% 10% 20% 90%"}, "invalid_parameter", "roi"),
        ({"shadow_type": "soft"}, "invalid_parameter", "shadow_type"),
        ({"shadow_opacity": "150"}, "invalid_parameter", "shadow_opacity"),
        ({"add_shadow": "maybe"}, "invalid_parameter", "add_shadow"),
        ({"bgcolor": "red"}, "unknown_field", "bgcolor"),
        ({"type": "car_interior"}, "invalid_parameter", "type"),
        ({"size": "huge"}, "invalid_parameter", "size"),
        ({"format": "zip", "channels": "alpha"}, "invalid_parameter", "format"),
        ({"format": "tiff"}, "invalid_parameter", "format"),  # remove.bg has no tiff
        ({"bg_color": "nope"}, "invalid_parameter", "bg_color"),
    ],
)
def test_removebg_parameter_errors_use_its_envelope(client, scene, png, data, code, parameter):
    fields = dict(data)
    if data:
        fields["image_file"] = (io.BytesIO(png(scene.rgb)), "i.png")
    resp = client.post("/v1.0/removebg", data=fields, content_type="multipart/form-data")
    assert resp.status_code == 400
    (error,) = _errors(resp)
    assert error["code"] == code and error["title"]
    if parameter:
        assert error["source"] == {"parameter": parameter}


def test_removebg_background_conflict_and_defaults_accepted(client, scene, png):
    both = client.post("/v1.0/removebg", data={
        "image_file": (io.BytesIO(png(scene.rgb)), "i.png"), "bg_color": "red",
        "bg_image_file": (io.BytesIO(png(scene.rgb)), "b.png")})
    assert both.status_code == 400 and _errors(both)[0]["code"] == "invalid_parameter"
    # the defaults an SDK sends are accepted; the request then needs segmentation (down here)
    defaults = client.post("/v1.0/removebg", data={
        "image_file": (io.BytesIO(png(scene.rgb)), "i.png"), "scale": "original",
        "position": "original", "roi": "0% 0% 100% 100%", "add_shadow": "false",
        "shadow_type": "none", "shadow_opacity": "50", "semitransparency": "true",
        "type_level": "1"})
    assert defaults.status_code == 503
    assert _errors(defaults)[0]["code"] == "segmentation_unavailable"


def test_removebg_no_subject_is_unknown_foreground(make_app, neighbour, scene, png):
    neighbour.mode, neighbour.status, neighbour.code = "status", 422, "no_subject"
    neighbour.message = "no salient object found"
    client = make_app(segmentation_url=neighbour.url).test_client()
    resp = client.post("/v1.0/removebg", data={"image_file": (io.BytesIO(png(scene.rgb)), "a")})
    assert resp.status_code == 400
    assert _errors(resp) == [{"title": "no salient object found", "code": "unknown_foreground"}]
    matte = client.post("/v1/matte", data={"image": (io.BytesIO(png(scene.rgb)), "a")})
    assert_api_error(matte, 422, "no_subject")


def test_removebg_body_too_large_is_413_in_its_envelope(make_app, scene, png):
    client = make_app(max_upload_bytes=2000).test_client()
    big = png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert len(big) > 2000
    resp = client.post("/v1.0/removebg", data={"image_file": (io.BytesIO(big), "a.png")})
    assert resp.status_code == 413 and _errors(resp)[0]["code"] == "payload_too_large"
    resp = client.post("/v1/matte", data={"image": (io.BytesIO(big), "a.png")})
    assert_api_error(resp, 413, "payload_too_large")
