"""What an attack run against the services found (issue 15), answered in words: a decode
budget for progressive JPEGs, WebP's size limit, too many form fields, no internal address
in any answer. In-process (Flask test client) with the real closed-form backend."""

from __future__ import annotations

import io

import numpy as np
from apierrors import assert_api_error
from PIL import Image

from service_common.images import MAX_JPEG_SCANS, jpeg_scans


def _progressive_jpeg(extra_scans: int = 0) -> bytes:
    """A real progressive JPEG (Pillow's, about 10 scans) with its last scan repeated
    ``extra_scans`` more times, as the CPU bomb of the attack run was built."""
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    last = data.rindex(b"\xff\xda")
    scan = data[last:-2]  # the last scan, up to EOI
    return data[:-2] + scan * extra_scans + b"\xff\xd9"


def _post(client, image: bytes, **fields):
    data = {"image": (io.BytesIO(image), "photo"), **fields}
    return client.post("/v1/matte", data=data, content_type="multipart/form-data")


def test_an_ordinary_progressive_jpeg_is_within_the_budget():
    scans = jpeg_scans(_progressive_jpeg())
    assert 2 <= scans <= 20 < MAX_JPEG_SCANS


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding(client, monkeypatch):
    bomb = _progressive_jpeg(extra_scans=5000)

    def never(*args, **kwargs):
        raise AssertionError("the bomb's pixels were decoded")

    monkeypatch.setattr("service_common.images._load", never)
    resp = _post(client, bomb)
    error = assert_api_error(resp, 422, "image_too_complex")
    assert error["scans"] > 5000 and error["max_scans"] == MAX_JPEG_SCANS
    assert "baseline JPEG or as PNG" in error["message"]


def test_webp_beyond_its_size_limit_is_a_400_not_a_500(client, png):
    wide = np.zeros((4, 16400, 3), np.uint8)
    wide[:, 8000:8400] = 255
    trimap = np.zeros((4, 16400), np.uint8)
    trimap[:, 8100:8300] = 255
    trimap[:, 8000:8100] = 128
    data = {"image": (io.BytesIO(png(wide)), "w.png"), "trimap": (io.BytesIO(png(trimap)), "t.png"),
            "format": "webp", "bg_color": "red"}
    resp = client.post("/v1/matte", data=data, content_type="multipart/form-data")
    error = assert_api_error(resp, 400, "invalid_parameter")
    assert error["field"] == "format" and "16383" in error["message"]


def test_a_thousand_form_fields_get_their_own_message(client, png, scene):
    fields = {f"f{i}": "v" for i in range(1001)}
    resp = _post(client, png(scene.rgb), **fields)
    error = assert_api_error(resp, 400, "too_many_fields")
    assert "more than 1000 fields" in error["message"]
    assert "BACKDROP_MAX_UPLOAD_MB" not in error["message"]


def test_no_answer_tells_the_segmentation_service_address(client, png, scene, dead_url):
    address = dead_url.removeprefix("http://")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and address not in ready.get_data(as_text=True)
    matte = _post(client, png(scene.rgb))
    error = assert_api_error(matte, 503, "segmentation_unavailable")
    assert address not in matte.get_data(as_text=True)
    assert "cannot be reached" in error["message"]
