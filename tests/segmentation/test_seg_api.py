"""``/v1/trimap``, ``/healthz``, ``/readyz`` through Flask's test client, with real models."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from PIL import Image

from segmentation_api import create_app

# --- the offline backend on the real photo ------------------------------------------------


@pytest.fixture(scope="module")
def astronaut(u2netp_app, sample_photo_bytes, post, read_trimap):
    """(response, trimap) for the shipped portrait, computed once."""
    response = post(u2netp_app.test_client(), sample_photo_bytes)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response, read_trimap(response)


def test_astronaut_face_is_subject_and_top_corners_are_background(astronaut):
    _, trimap = astronaut
    assert trimap.shape == (512, 512)
    assert trimap[130, 220] == 255  # the face: sure foreground (the contract asks for 128 or 255)
    assert trimap[0, 0] == 0 and trimap[0, 511] == 0
    # the suit and the helmet reach the bottom edge: the bottom corners are at most unknown
    # (U^2-Net-p gives 0.39 on the flag at bottom-left, 0.53 on the helmet's mount at
    # bottom-right)
    assert trimap[511, 0] != 255 and trimap[511, 511] != 255
    assert 0.2 < (trimap == 255).mean() < 0.7
    assert 0.02 < (trimap == 128).mean() < 0.3


def test_trimap_headers(astronaut):
    response, trimap = astronaut
    assert response.mimetype == "image/png"
    assert response.headers["X-Segmentation-Backend"] == "u2netp"
    assert response.headers["X-Subjects"] == "1"
    rows, cols = np.nonzero(trimap)
    box = [int(cols.min()), int(rows.min()),
           int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)]
    assert [int(v) for v in response.headers["X-Subject-Box"].split(",")] == box
    assert float(response.headers["X-Processing-Ms"]) > 0
    timing = response.headers["Server-Timing"]
    assert [part.split(";")[0] for part in timing.split(", ")] == ["decode", "model", "trimap", "encode"]
    assert all(float(part.split("dur=")[1]) >= 0 for part in timing.split(", "))
    assert response.headers["X-Request-Id"]


def test_raw_body_with_query_parameters_and_json_answer(u2netp_client, sample_photo, encode_png):
    small = np.ascontiguousarray(sample_photo[::2, ::2])  # 256 x 256
    response = u2netp_client.post(
        "/v1/trimap?band=2&classes=dog&instances=largest", data=encode_png(small),
        content_type="image/png", headers={"Accept": "application/json", "X-Request-Id": "abc-123"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["backend"] == "u2netp" and body["device"] == "cpu"
    assert (body["width"], body["height"]) == (256, 256)
    assert body["subjects"] == 1 and body["classes_ignored"] is True
    [inst] = body["instances"]
    assert inst["label"] == "salient" and 0.9 < inst["score"] <= 1.0 and len(inst["box"]) == 4
    assert set(body["timing_ms"]) == {"decode", "model", "trimap", "encode", "total"}
    trimap = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["trimap_png_base64"]))))
    assert trimap.shape == (256, 256) and set(np.unique(trimap)) == {0, 128, 255}
    rows, cols = np.nonzero(trimap)
    assert body["box"] == [int(cols.min()), int(rows.min()),
                           int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)]
    assert response.headers["X-Request-Id"] == "abc-123"


def test_flat_image_has_no_subject(u2netp_client, grey_photo, encode_png, post):
    response = post(u2netp_client, encode_png(grey_photo))
    error = assert_api_error(response, 422, "no_subject")
    assert "salient" in error["message"] and error["backend"] == "u2netp"


def test_health_and_readiness(u2netp_client):
    assert u2netp_client.get("/healthz").get_json() == {"status": "ok"}
    ready = u2netp_client.get("/readyz").get_json()
    assert ready == {"status": "ready", "backend": "u2netp", "device": "cpu", "backends": ["u2netp"],
                     "policy": {"mode": "single", "person": "u2netp", "other": "u2netp",
                                "why": "BACKDROP_SEGMENTATION_BACKEND=u2netp"}}


def test_create_app_without_arguments_reads_the_environment(monkeypatch, models_dir):
    monkeypatch.setenv("BACKDROP_SEGMENTATION_BACKEND", "u2netp")
    monkeypatch.setenv("BACKDROP_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("BACKDROP_MAX_UPLOAD_MB", "3")
    monkeypatch.setenv("BACKDROP_LOG_LEVEL", "WARNING")
    app = create_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 3 * 1024 * 1024
    assert app.test_client().get("/readyz").get_json()["backend"] == "u2netp"
    assert not app.debug


def test_not_ready_without_a_backend(make_settings, models_dir):
    from flask import Flask

    from segmentation_api.routes import bp
    from service_common.web import init_app

    app = Flask("bare")
    init_app(app, make_settings(models_dir))
    app.register_blueprint(bp)
    client = app.test_client()
    assert_api_error(client.get("/readyz"), 503, "not_ready")
    assert client.get("/healthz").status_code == 200


# --- errors -------------------------------------------------------------------------------


def png_with_header_size(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width x height`` (valid CRCs) but holds almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_empty_request(u2netp_client):
    assert_api_error(u2netp_client.post("/v1/trimap"), 400, "empty_body")


def test_empty_file(u2netp_client, post):
    assert_api_error(post(u2netp_client, b""), 400, "empty_body")


def test_empty_raw_body(u2netp_client):
    assert_api_error(u2netp_client.post("/v1/trimap", data=b"", content_type="image/png"), 400, "empty_body")


def test_missing_field(u2netp_client):
    response = u2netp_client.post("/v1/trimap", data={"classes": "person"},
                                  content_type="multipart/form-data")
    assert assert_api_error(response, 400, "missing_field")["field"] == "image"


def test_image_under_another_name_is_an_unknown_field(u2netp_client, sample_photo_bytes):
    response = u2netp_client.post("/v1/trimap", data={"file": (io.BytesIO(sample_photo_bytes), "a.png")},
                                  content_type="multipart/form-data")
    error = assert_api_error(response, 400, "unknown_field")
    assert (error["field"], error["did_you_mean"]) == ("file", "image")
    assert "did you mean image?" in error["message"]


def test_image_sent_as_text_field(u2netp_client):
    response = u2netp_client.post("/v1/trimap", data={"image": "hello"}, content_type="multipart/form-data")
    assert assert_api_error(response, 400, "invalid_parameter")["field"] == "image"


def test_text_posing_as_an_image(u2netp_client, post):
    assert_api_error(post(u2netp_client, b"just some text, honestly\n" * 20, filename="photo.png"),
             400, "invalid_image")


def test_truncated_png(u2netp_client, sample_photo_bytes, post):
    half = sample_photo_bytes[: len(sample_photo_bytes) // 2]
    assert_api_error(post(u2netp_client, half), 400, "invalid_image")


def test_truncated_jpeg(u2netp_client, sample_photo, encode_png, post):
    jpeg = encode_png(sample_photo, "JPEG", quality=90)
    assert_api_error(post(u2netp_client, jpeg[: len(jpeg) // 2], filename="a.jpg"), 400, "invalid_image")


def test_huge_declared_dimensions_are_refused_before_decoding(u2netp_client, post):
    bomb = png_with_header_size(100_000, 100_000)  # 10 gigapixels in 70 bytes
    assert len(bomb) < 100
    error = assert_api_error(post(u2netp_client, bomb), 413, "image_too_large")
    assert (error["width"], error["height"]) == (100_000, 100_000)


def test_too_many_pixels(u2netp_client, encode_png, post):
    big = np.zeros((1000, 2100, 3), np.uint8)  # 2.1 MP > BACKDROP_MAX_PIXELS=2 MP in the tests
    assert_api_error(post(u2netp_client, encode_png(big)), 413, "image_too_large")


def test_body_over_the_upload_limit(u2netp_client, post):
    blob = np.random.default_rng(0).integers(0, 256, 1_300_000, dtype=np.uint8).tobytes()
    assert_api_error(post(u2netp_client, blob), 413, "payload_too_large")
    raw = u2netp_client.post("/v1/trimap", data=blob, content_type="image/jpeg")
    assert_api_error(raw, 413, "payload_too_large")


def test_unsupported_format(u2netp_client, encode_png, post):
    ppm = encode_png(np.zeros((8, 8, 3), np.uint8), "PPM")
    assert_api_error(post(u2netp_client, ppm, filename="a.ppm"), 415, "unsupported_format")


@pytest.mark.parametrize(("field", "value"), [
    ("score_threshold", "abc"),
    ("score_threshold", "1.5"),
    ("score_threshold", "-0.1"),
    ("score_threshold", "nan"),
    ("instances", "biggest"),
    ("fg_threshold", "0"),
    ("fg_threshold", "1.2"),
    ("bg_threshold", "0.95"),  # not below fg_threshold (0.9)
    ("bg_threshold", "1"),
    ("band", "0"),
    ("band", "-1"),
    ("band", "inf"),
    ("band", "11"),
    ("backend", "magic"),
    ("backend", "maskrcnn"),  # valid name, but not loaded in this service
    ("classes", " , "),
])
def test_bad_parameter_values(u2netp_client, sample_photo_bytes, field, value, post):
    response = post(u2netp_client, sample_photo_bytes, **{field: value})
    error = assert_api_error(response, 400, "invalid_parameter")
    assert error["field"] == field
    assert error["request_id"]


def test_bad_parameter_in_the_query_string_of_a_raw_body(u2netp_client, sample_photo_bytes):
    response = u2netp_client.post("/v1/trimap?score_threshold=abc", data=sample_photo_bytes,
                                  content_type="image/png")
    assert assert_api_error(response, 400, "invalid_parameter")["field"] == "score_threshold"


def test_unknown_class_name_lists_the_valid_ones(u2netp_client, sample_photo_bytes, post):
    response = post(u2netp_client, sample_photo_bytes, classes="person,unicorn")
    error = assert_api_error(response, 400, "invalid_parameter")
    assert error["field"] == "classes" and error["unknown"] == ["unicorn"]
    assert "traffic light" in error["valid"] and "traffic light" in error["message"]


def test_unacceptable_accept_header(u2netp_client, sample_photo_bytes, post):
    response = post(u2netp_client, sample_photo_bytes, headers={"Accept": "text/plain"})
    assert_api_error(response, 406, "not_acceptable")


def test_wrong_method_and_path(u2netp_client):
    assert_api_error(u2netp_client.get("/v1/trimap"), 405, "method_not_allowed")
    assert_api_error(u2netp_client.post("/v1/nothing"), 404, "not_found")


# --- Mask R-CNN (random weights, last layers set to find persons) ---------------------------


def exif_rotated_jpeg(width: int, height: int) -> bytes:
    """A ``width x height`` JPEG whose EXIF says "rotate 90 degrees clockwise" (orientation 6)."""
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def image_kind(kind: str) -> tuple[bytes, tuple[int, int]]:
    """(file bytes, expected trimap shape H x W) for one kind of input image."""
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    buf = io.BytesIO()
    if kind == "greyscale":
        Image.fromarray(rgb[..., 0]).save(buf, "PNG")
    elif kind == "rgba":
        alpha = np.full((40, 56), 255, np.uint8)
        alpha[:, :10] = 0
        Image.fromarray(np.dstack([rgb, alpha])).save(buf, "PNG")
    elif kind == "palette":
        Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(buf, "PNG")
    elif kind == "16-bit":
        grey16 = (rng.integers(0, 65535, (40, 56))).astype(np.uint16)
        img = Image.fromarray(grey16)
        assert img.mode.startswith("I;16")
        img.save(buf, "PNG")
    elif kind == "exif-rotated-jpeg":
        return exif_rotated_jpeg(56, 40), (56, 40)
    elif kind == "gif":
        Image.fromarray(rgb).save(buf, "GIF")
    return buf.getvalue(), (40, 56)


@pytest.mark.parametrize("kind", ["greyscale", "rgba", "palette", "16-bit", "exif-rotated-jpeg", "gif"])
def test_image_kinds(maskrcnn_client, kind, post, read_trimap):
    data, shape = image_kind(kind)
    response = post(maskrcnn_client, data)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert read_trimap(response).shape == shape
    assert response.headers["X-Segmentation-Backend"] == "maskrcnn"


def test_maskrcnn_all_and_largest_instances(
    maskrcnn_client, sample_photo_bytes, person_score, post, read_trimap
):
    every = post(maskrcnn_client, sample_photo_bytes, headers={"Accept": "application/json"}).get_json()
    assert 1 <= every["subjects"] <= 4 and every["classes_ignored"] is False
    assert {inst["label"] for inst in every["instances"]} == {"person"}
    assert all(inst["score"] == pytest.approx(person_score, abs=1e-3) for inst in every["instances"])
    largest = post(maskrcnn_client, sample_photo_bytes, instances="largest", backend="maskrcnn")
    assert largest.status_code == 200 and largest.headers["X-Subjects"] == "1"
    if every["subjects"] > 1:
        assert (read_trimap(largest) > 0).sum() <= (
            np.asarray(Image.open(io.BytesIO(base64.b64decode(every["trimap_png_base64"])))) > 0
        ).sum()


@pytest.mark.parametrize("params", [{"score_threshold": "0.9"}, {"classes": "dog, Traffic Light"}])
def test_maskrcnn_no_subject(maskrcnn_client, sample_photo_bytes, params, post):
    error = assert_api_error(post(maskrcnn_client, sample_photo_bytes, **params), 422, "no_subject")
    assert error["backend"] == "maskrcnn"
    if "classes" in params:
        assert error["classes"] == ["dog", "traffic light"]
        assert "dog, traffic light" in error["message"]


def test_maskrcnn_rejects_the_backend_it_does_not_have(maskrcnn_client, sample_photo_bytes, post):
    response = post(maskrcnn_client, sample_photo_bytes, backend="u2netp")
    error = assert_api_error(response, 400, "invalid_parameter")
    assert error["field"] == "backend" and error["loaded"] == ["maskrcnn"]


# --- unknown fields, over real HTTP to the running service (issue 25) ------------------------


@pytest.mark.parametrize("path", ["/v1/mask", "/v1/trimap"])
@pytest.mark.parametrize(("how", "name", "suggestion"), [
    ("form", "score_treshold", "score_threshold"),
    ("form", "Classes", "classes"),
    ("query", "instance", "instances"),
    ("form", "bandwidth", "band"),
])
def test_unknown_fields_name_the_closest_known_one(offline_services, sample_photo_bytes, path, how, name,
                                                    suggestion):
    """A misspelt text field, in the form or the query string, is a 400 naming it and the
    field it resembles, before any work."""
    seg, _ = offline_services
    files = {"image": ("a.png", sample_photo_bytes, "image/png")}
    if how == "form":
        response = requests.post(seg.url + path, files=files, data={name: "1"}, timeout=60)
    else:
        response = requests.post(seg.url + path, params={name: "all"}, data=sample_photo_bytes,
                                 headers={"Content-Type": "image/png"}, timeout=60)
    error = assert_api_error(response, 400, "unknown_field")
    assert (error["field"], error["did_you_mean"]) == (name, suggestion)
    assert f"did you mean {suggestion}?" in error["message"]


def test_unknown_names_without_a_close_one_list_what_is_read(offline_services, sample_photo_bytes):
    seg, _ = offline_services
    response = requests.post(seg.url + "/v1/mask", files={"image": ("a.png", sample_photo_bytes)},
                             data={"zzz": "1"}, timeout=60)
    error = assert_api_error(response, 400, "unknown_field")
    assert "did_you_mean" not in error
    assert "score_threshold" in error["message"] and "fg_threshold" in error["message"]
    assert error["known"][-1] == "image"


def test_a_text_field_sent_as_a_file_and_an_empty_image_file(offline_services, sample_photo_bytes):
    seg, _ = offline_services
    response = requests.post(seg.url + "/v1/mask", files={"image": ("a.png", sample_photo_bytes),
                                                          "classes": ("c.txt", b"person")}, timeout=60)
    assert assert_api_error(response, 400, "invalid_parameter")["field"] == "classes"
    empty = requests.post(seg.url + "/v1/mask", files={"image": ("a.png", b"")}, timeout=60)
    assert "empty" in assert_api_error(empty, 400, "empty_body")["message"]
