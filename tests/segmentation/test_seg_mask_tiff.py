"""``format=tiff`` of ``/v1/mask`` and ``/v1/trimap`` over real HTTP (the segmentation service
under gunicorn with the offline models, the shipped portrait): an uncompressed TIFF in one
strip holding the very values of the PNG answer - what the matting service asks a
segmentation service on its machine for. The JSON answer stays a PNG."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from PIL import Image

from contract.formats import tiff_blocks
from contract.vocab import SEGMENT_FIELDS


def _post(url: str, photo: bytes, path: str = "/v1/mask", headers: dict[str, str] | None = None,
          **fields: str) -> requests.Response:
    return requests.post(url + path, files={"image": ("astronaut.png", photo, "image/png")},
                         data=fields, headers=headers or {}, timeout=120)


def _pixels(data: bytes, pil_format: str) -> tuple[np.ndarray, str]:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == pil_format
        return np.asarray(img), img.mode


def test_format_is_a_field_of_both_endpoints():
    assert "format" in SEGMENT_FIELDS


@pytest.mark.parametrize(("path", "mode", "dtype"), [
    ("/v1/mask", "I;16", np.uint16),
    ("/v1/trimap", "L", np.uint8),
])
def test_tiff_answer_holds_the_png_answer_uncompressed(offline_services, sample_photo_bytes, path,
                                                       mode, dtype):
    seg, _ = offline_services
    png = _post(seg.url, sample_photo_bytes, path)
    tiff = _post(seg.url, sample_photo_bytes, path, format="tiff")
    assert png.status_code == 200 and tiff.status_code == 200, (png.text[:300], tiff.text[:300])
    assert png.headers["Content-Type"] == "image/png"
    assert tiff.headers["Content-Type"] == "image/tiff"
    png_values, png_mode = _pixels(png.content, "PNG")
    tiff_values, tiff_mode = _pixels(tiff.content, "TIFF")
    assert png_mode == tiff_mode == mode
    assert tiff_values.dtype == png_values.dtype == dtype
    assert tiff_values.shape == png_values.shape == (512, 512)
    assert np.array_equal(tiff_values, png_values)
    assert len(np.unique(tiff_values)) > (1000 if path == "/v1/mask" else 2)
    with Image.open(io.BytesIO(tiff.content)) as img:
        assert img.info["compression"] == "raw"
    assert tiff_blocks(tiff.content) == 1
    assert len(tiff.content) >= tiff_values.nbytes  # uncompressed
    for header in ("X-Segmentation-Backend", "X-Subject-Box", "X-Subjects", "X-Mask-Kind"):
        assert tiff.headers[header] == png.headers[header]
    steps = [part.split(";")[0] for part in tiff.headers["Server-Timing"].split(", ")]
    assert steps[-1] == "encode"


def test_tiff_when_any_picture_is_accepted_and_by_query_string(offline_services, sample_photo_bytes):
    seg, _ = offline_services
    resp = requests.post(seg.url + "/v1/mask?format=TIFF", data=sample_photo_bytes,
                         headers={"Content-Type": "image/png", "Accept": "*/*"}, timeout=120)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["Content-Type"] == "image/tiff"
    assert _pixels(resp.content, "TIFF")[1] == "I;16"


@pytest.mark.parametrize("value", ["gif", "tif", "jpeg", "png16"])
def test_a_bad_format_is_400_naming_it(offline_services, sample_photo_bytes, value):
    seg, _ = offline_services
    error = assert_api_error(_post(seg.url, sample_photo_bytes, format=value), 400, "invalid_parameter")
    assert error["field"] == "format"
    assert "png, tiff" in error["message"]


def test_json_stays_a_png_and_refuses_tiff(offline_services, sample_photo_bytes):
    seg, _ = offline_services
    as_json = {"Accept": "application/json"}
    body = _post(seg.url, sample_photo_bytes, headers=as_json, format="png").json()
    assert _pixels(base64.b64decode(body["mask_png16_base64"]), "PNG")[1] == "I;16"
    error = assert_api_error(_post(seg.url, sample_photo_bytes, headers=as_json, format="tiff"),
                             400, "invalid_parameter")
    assert error["field"] == "format" and "PNG" in error["message"]


def test_tiff_that_is_not_accepted_is_406(offline_services, sample_photo_bytes):
    seg, _ = offline_services
    resp = _post(seg.url, sample_photo_bytes, headers={"Accept": "image/png"}, format="tiff")
    assert "image/tiff" in assert_api_error(resp, 406, "not_acceptable")["message"]


@pytest.mark.parametrize("query", [{"classes": "unicorn"}, {"format": "gif"}, {"score_threshold": "x"}])
def test_a_refused_parameter_of_a_raw_body_is_its_400_over_http(offline_services, sample_photo_bytes,
                                                                query):
    """The matting service sends the frame as the whole body with the parameters in the query
    string: a refused parameter must come back as its own 400 through the front (the body
    read first), not as a broken connection the front reports as 503."""
    seg, _ = offline_services
    with requests.Session() as session:
        for _ in range(2):  # and again on the same kept-alive connection
            response = session.post(seg.url + "/v1/mask", params=query, data=sample_photo_bytes,
                                    headers={"Content-Type": "image/png"}, timeout=60)
            assert_api_error(response, 400, "invalid_parameter")
