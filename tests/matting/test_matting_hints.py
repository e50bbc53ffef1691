"""Touch-up hints (``hints`` on ``POST /v1/matte``): the pure rule of :mod:`trimap.hints`,
then over HTTP in-process with a given trimap (the real closed-form backend), then end to end
on the sample portrait through both services."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from PIL import Image

from trimap.encoding import BACKGROUND, FOREGROUND, UNKNOWN
from trimap.hints import NO_OPINION, apply_hints, hint_radius, hints_from_pixels


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ the rule


def test_hint_pixels_white_keep_black_remove_transparent_nothing():
    luma = np.array([[255, 250, 128, 10, 0, 0]], np.uint8)
    alpha = np.array([[255, 255, 255, 255, 255, 60]], np.uint8)
    assert hints_from_pixels(luma).tolist() == [[255, 255, 128, 0, 0, 0]]
    assert hints_from_pixels(luma, alpha).tolist() == [[255, 255, 128, 0, 0, 128]]


def test_radius_scales_with_the_photo_and_has_a_floor():
    assert hint_radius(100, 200) == 6.0
    assert hint_radius(1000, 2000) == pytest.approx(20.0)


def test_a_remove_stroke_inside_the_subject_is_background_and_reopens_its_surroundings():
    trimap = np.full((60, 60), BACKGROUND, np.uint8)
    trimap[10:50, 10:50] = FOREGROUND
    prior = (trimap / 255.0).astype(np.float32)
    hints = np.full_like(trimap, UNKNOWN)
    hints[28:32, 28:32] = BACKGROUND
    out, new_prior = apply_hints(trimap, prior, hints, radius=5)
    assert (out[28:32, 28:32] == BACKGROUND).all() and (new_prior[28:32, 28:32] == 0).all()
    # within 5 px of the stroke the edge is searched again (Euclidean: not the box's corners)
    assert (out[23:28, 29] == UNKNOWN).all() and (out[29, 32:37] == UNKNOWN).all()
    assert out[22, 29] == FOREGROUND and out[24, 24] == FOREGROUND
    assert (new_prior[24:28, 30] == NO_OPINION).all()
    assert out[15, 15] == FOREGROUND and out[5, 5] == BACKGROUND  # far away: unchanged
    assert trimap[30, 30] == FOREGROUND and prior[30, 30] == 1.0  # inputs untouched


def test_a_stroke_that_agrees_with_the_guide_changes_only_what_it_covers():
    trimap = np.full((40, 40), BACKGROUND, np.uint8)
    trimap[10:30, 10:30] = FOREGROUND
    trimap[10:30, 9] = UNKNOWN
    hints = np.full_like(trimap, UNKNOWN)
    hints[0:5, 0:5] = BACKGROUND  # already background
    hints[15:20, 15:20] = FOREGROUND  # already foreground
    out, prior = apply_hints(trimap, None, hints, radius=4)
    assert prior is None
    assert np.array_equal(out, trimap)


def test_keep_strokes_over_an_empty_guide_make_a_subject_with_an_open_edge():
    trimap = np.zeros((50, 50), np.uint8)
    hints = np.full_like(trimap, UNKNOWN)
    hints[20:30, 20:30] = FOREGROUND
    out, prior = apply_hints(trimap, np.zeros((50, 50), np.float32), hints, radius=3)
    assert (out[20:30, 20:30] == FOREGROUND).all()
    assert out[25, 18] == UNKNOWN and prior[25, 18] == NO_OPINION
    assert out[25, 10] == BACKGROUND


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="hints"):
        apply_hints(np.zeros((4, 4), np.uint8), None, np.zeros((4, 5), np.uint8))


# ------------------------------------------------------------------ HTTP, in-process


def _post(client, scene, hints: bytes | None, **fields):
    data = {"image": (io.BytesIO(_png(scene.rgb)), "i.png"),
            "trimap": (io.BytesIO(_png(scene.trimap)), "t.png"), **fields}
    if hints is not None:
        data["hints"] = (io.BytesIO(hints), "hints.png")
    return client.post("/v1/matte", data=data, content_type="multipart/form-data")


def test_remove_stroke_on_the_disc_over_http_becomes_background(client, scene, decode):
    # strokes drawn as a page draws them: black on a transparent RGBA canvas
    canvas = np.zeros((64, 64, 4), np.uint8)
    canvas[28:37, 28:37] = (0, 0, 0, 255)  # the disc's centre: white, sure foreground
    resp = _post(client, scene, _png(canvas), bg_color="#ff0000", format="png")
    assert resp.status_code == 200, resp.get_json()
    out = decode(resp.data)
    assert (out[28:37, 28:37] == [255, 0, 0]).all()
    assert (out[19:21, 30:34] == [255, 255, 255]).all()  # the rest of the disc stays
    assert resp.headers["X-Hints"] == "keep=0, remove=81"
    without = _post(client, scene, None, bg_color="#ff0000", format="png")
    assert "X-Hints" not in without.headers
    assert (decode(without.data)[28:37, 28:37] == [255, 255, 255]).all()


def test_keep_stroke_on_the_background_over_http_becomes_subject(client, scene, decode):
    hints = np.full((64, 64), 128, np.uint8)  # greyscale hints work too
    hints[2:8, 2:8] = 255
    resp = _post(client, scene, _png(hints), channels="alpha", format="png")
    assert resp.status_code == 200, resp.get_json()
    alpha = decode(resp.data)
    assert (alpha[2:8, 2:8] == 255).all()
    assert (alpha[50:60, 50:60] == 0).all()


def test_hints_of_another_size_are_refused_in_words(client, scene):
    resp = _post(client, scene, _png(np.zeros((32, 64), np.uint8)))
    assert_api_error(resp, 400, "invalid_hints")
    assert "32" in resp.get_json()["error"]["message"]
    assert "photo's size" in resp.get_json()["error"]["message"]


def test_hints_that_are_not_an_image_are_refused(client, scene):
    resp = _post(client, scene, b"not an image")
    assert_api_error(resp, 400, "invalid_image")
    assert "hints" in resp.get_json()["error"]["message"]


def test_hints_are_scaled_with_the_size_cap(client, scene, decode):
    canvas = np.zeros((64, 64, 4), np.uint8)
    canvas[24:40, 24:40] = (0, 0, 0, 255)
    resp = _post(client, scene, _png(canvas), size="32", channels="alpha", format="png")
    assert resp.status_code == 200, resp.get_json()
    alpha = decode(resp.data)
    assert alpha.shape == (32, 32)
    assert (alpha[12:20, 12:20] == 0).all()
    assert resp.headers["X-Hints"] == "keep=0, remove=64"


def test_openapi_documents_the_hints_field(client):
    spec = client.get("/openapi.json").get_json()
    schema = spec["paths"]["/v1/matte"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "keep" in schema["properties"]["hints"]["description"]
    assert "400" in spec["paths"]["/v1/matte"]["post"]["responses"]


# ------------------------------------------------------------------ end to end


def test_portrait_remove_stroke_on_the_helmet_end_to_end(offline_services, sample_photo_bytes):
    """The automatic matte keeps the helmet (bottom right); a "remove" stroke over it makes
    that region background, the face stays."""
    _, mat = offline_services
    photo = {"image": ("astronaut.png", sample_photo_bytes, "image/png")}
    auto = requests.post(mat.url + "/v1/matte", files=photo,
                         data={"channels": "alpha", "format": "png"}, timeout=120)
    assert auto.status_code == 200, auto.text
    auto_alpha = np.asarray(Image.open(io.BytesIO(auto.content)))
    region = (slice(400, 440), slice(400, 440))
    assert auto_alpha[region].mean() > 200  # the helmet is part of the subject
    canvas = np.zeros((512, 512, 4), np.uint8)
    canvas[395:445, 395:445] = (0, 0, 0, 255)
    files = {**photo, "hints": ("hints.png", _png(canvas), "image/png")}
    resp = requests.post(mat.url + "/v1/matte", files=files,
                         data={"channels": "alpha", "format": "png"}, timeout=120)
    assert resp.status_code == 200, resp.text
    alpha = np.asarray(Image.open(io.BytesIO(resp.content)))
    assert (alpha[region] == 0).all()
    assert (alpha[120:141, 210:231] == 255).all()  # the face
    assert resp.headers["X-Hints"] == "keep=0, remove=2500"
