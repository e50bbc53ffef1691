"""The service under a real gunicorn: ``segmentation_api:create_app()`` reading the environment.

``BACKDROP_SEGMENTATION_BACKEND=auto`` with a models folder holding a Mask R-CNN state dict
under its real file name: the worker must pick Mask R-CNN and load it with the real code.
"""

from __future__ import annotations

import io

import requests
from apierrors import assert_api_error


def test_ready_with_maskrcnn(maskrcnn_service):
    assert requests.get(maskrcnn_service.url + "/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(maskrcnn_service.url + "/readyz", timeout=10).json()
    policy = ready.pop("policy")
    assert ready == {"status": "ready", "backend": "maskrcnn", "device": "cpu", "backends": ["maskrcnn"]}
    assert policy["mode"] == "single" and policy["person"] == policy["other"] == "maskrcnn"
    assert policy["why"].startswith("auto: Mask R-CNN weights found at ")


def test_trimap_over_http(maskrcnn_service, sample_photo_bytes, read_trimap):
    response = requests.post(
        maskrcnn_service.url + "/v1/trimap",
        files={"image": ("astronaut.png", sample_photo_bytes, "image/png")},
        headers={"X-Request-Id": "gunicorn-1"}, timeout=60,
    )
    assert response.status_code == 200, response.text
    trimap = read_trimap(response)
    assert trimap.shape == (512, 512) and (trimap == 255).any() and (trimap == 128).any()
    assert response.headers["X-Segmentation-Backend"] == "maskrcnn"
    assert 1 <= int(response.headers["X-Subjects"]) <= 4
    assert response.headers["X-Request-Id"] == "gunicorn-1"
    assert "model;dur=" in response.headers["Server-Timing"]


def test_raw_body_and_json_over_http(maskrcnn_service, sample_photo, encode_png):
    response = requests.post(
        maskrcnn_service.url + "/v1/trimap", params={"instances": "largest"},
        data=encode_png(sample_photo[::2, ::2].copy()),
        headers={"Content-Type": "image/png", "Accept": "application/json"}, timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["subjects"] == 1 and body["instances"][0]["label"] == "person"
    assert (body["width"], body["height"]) == (256, 256)


def test_no_subject_over_http(maskrcnn_service, sample_photo_bytes):
    response = requests.post(
        maskrcnn_service.url + "/v1/trimap", data={"score_threshold": "0.9"},
        files={"image": ("a.png", sample_photo_bytes, "image/png")}, timeout=60,
    )
    assert_api_error(response, 422, "no_subject")


def test_errors_over_http(maskrcnn_service):
    url = maskrcnn_service.url + "/v1/trimap"
    assert_api_error(requests.post(url, files={"image": ("a.png", b"not an image", "image/png")}, timeout=30),
             400, "invalid_image")
    assert_api_error(requests.post(url, data={"classes": "unicorn"},
                           files={"image": ("a.png", b"x", "image/png")}, timeout=30),
             400, "invalid_parameter")
    assert_api_error(requests.post(url, timeout=30), 400, "empty_body")


def test_body_over_the_limit_over_http(maskrcnn_service):
    blob = io.BytesIO(b"\0" * 1_300_000)  # BACKDROP_MAX_UPLOAD_MB is ~1.14 MB here
    response = requests.post(maskrcnn_service.url + "/v1/trimap",
                             files={"image": ("a.png", blob, "image/png")}, timeout=30)
    assert_api_error(response, 413, "payload_too_large")
