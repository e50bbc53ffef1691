"""Poisson blending over HTTP: the ``blend`` option and ``POST /v1/matte`` in-process (Flask
test client, given trimap, the real closed-form backend). The pure functions are in
``tests/render/test_render_poisson.py``."""

from __future__ import annotations

import io

import numpy as np
import pytest
from apierrors import assert_api_error

from contract.parse import InvalidValue
from contract.vocab import SEGMENTATION_BACKENDS
from matting_api.options import BLEND_MODES, parse_matte_options

# ---------------------------------------------------------------- options


def test_blend_and_backend_options():
    opts = parse_matte_options({"blend": " Poisson ", "bg_color": "white",
                                "backend": "u2netp"}, has_bg_image=False)
    assert opts.blend == "poisson" and opts.bg_mode == "color"
    assert opts.segmentation.backend == "u2netp"
    assert opts.segmentation.as_form() == {"backend": "u2netp"}
    auto = parse_matte_options({"backend": "AUTO"}, has_bg_image=False)
    assert auto.blend == "alpha" and auto.segmentation.backend is None
    assert auto.segmentation.as_form() == {}
    assert BLEND_MODES == ("alpha", "poisson", "poisson_mixed")


@pytest.mark.parametrize(("params", "has_bg", "field", "words"), [
    ({"blend": "unknown", "bg_color": "red"}, False, "blend", "not one of"),
    ({"blend": "poisson"}, False, "blend", "transparent"),
    ({"blend": "poisson", "bg_mode": "transparent"}, True, "blend", "transparent"),
    ({"blend": "poisson_mixed", "bg_color": "red", "channels": "alpha"}, False, "blend",
     "matte only"),
    ({"blend": "poisson", "bg_color": "ff000080"}, False, "blend", "opaque"),
    ({"backend": "sam"}, False, "backend", "not one of"),
])
def test_option_errors_name_the_field(params, has_bg, field, words):
    with pytest.raises(InvalidValue) as info:
        parse_matte_options(params, has_bg_image=has_bg)
    assert info.value.field == field
    assert words in info.value.message


# ---------------------------------------------------------------- over HTTP (Flask test client)


@pytest.fixture
def post(client, scene, png):
    """``post(image=scene.rgb, trimap=scene.trimap, bg_image=None, **fields) -> response``."""

    def _post(image=None, trimap=None, bg_image=None, **fields):
        data = {
            "image": (io.BytesIO(png(scene.rgb if image is None else image)), "i.png"),
            "trimap": (io.BytesIO(png(scene.trimap if trimap is None else trimap)), "t.png"),
        }
        if bg_image is not None:
            data["bg_image"] = (io.BytesIO(png(bg_image)), "bg.png")
        data.update(fields)
        return client.post("/v1/matte", data=data, content_type="multipart/form-data")

    return _post


def test_poisson_over_http_blends_the_edge_and_keeps_the_subject(post, scene, decode):
    plain = post(bg_color="c81e1e", format="png")
    blended = post(bg_color="c81e1e", format="png", blend="poisson")
    assert plain.status_code == blended.status_code == 200, blended.get_json()
    a, p = decode(plain.data), decode(blended.data)
    assert p.shape == a.shape == (64, 64, 3)
    background = scene.trimap == 0
    assert (p[background] == (0xC8, 0x1E, 0x1E)).all()
    assert blended.headers["X-Segmentation-Backend"] == "given-trimap"
    assert "compositing;dur=" in blended.headers["Server-Timing"]
    # the white disc keeps its colour inside; its soft edge moves toward the red background
    assert tuple(a[32, 32]) == tuple(p[32, 32]) == (255, 255, 255)
    edge = (scene.alpha > 0.3) & (scene.alpha < 0.7)
    shift = p[edge].astype(int) - a[edge].astype(int)
    assert shift[:, 1].mean() < -5 and shift[:, 2].mean() < -5  # loses green and blue


@pytest.mark.parametrize("fields", [
    {"blend": "poisson_mixed", "bg_mode": "blur"},
    {"blend": "poisson", "bg_mode": "grayscale", "format": "webp"},
    {"blend": "poisson", "bg_color": "skyblue", "crop": "true", "crop_margin": "2px"},
])
def test_poisson_with_other_backgrounds(post, decode, fields):
    resp = post(**fields)
    assert resp.status_code == 200, resp.get_json()
    out = decode(resp.data)
    assert out.shape[:2] == (int(resp.headers["X-Height"]), int(resp.headers["X-Width"]))
    if fields.get("crop"):
        assert out.shape[0] < 64 and out.shape[1] < 64


def test_poisson_mixed_with_a_background_image_and_a_border_subject(post, scene, decode):
    """The disc cut by the left border: still 200, the background exact where alpha is 0."""
    image, trimap = scene.rgb[:, 20:].copy(), scene.trimap[:, 20:].copy()
    yy, xx = np.mgrid[:64, :44]
    bg = np.dstack([xx * 5, yy * 3, np.full_like(xx, 90)]).astype(np.uint8)
    resp = post(image=image, trimap=trimap, bg_image=bg, blend="poisson_mixed", format="png")
    assert resp.status_code == 200, resp.get_json()
    out = decode(resp.data)
    assert out.shape == (64, 44, 3)
    assert (out[trimap == 0] == bg[trimap == 0]).all()


@pytest.mark.parametrize(("fields", "words"), [
    ({"blend": "unknown", "bg_color": "red"}, "unknown"),
    ({"blend": "poisson"}, "transparent"),
    ({"blend": "poisson", "bg_mode": "transparent", "bg_color": "red"}, "transparent"),
    ({"blend": "poisson", "bg_color": "red", "channels": "alpha"}, "channels=alpha"),
    ({"backend": "nope"}, "nope"),
])
def test_http_errors(post, fields, words):
    assert words in assert_api_error(post(**fields), 400, "invalid_parameter")["message"]


def test_openapi_documents_blend_and_backend(client):
    doc = client.get("/openapi.json").get_json()
    form = doc["paths"]["/v1/matte"]["post"]["requestBody"]["content"]["multipart/form-data"]
    props = form["schema"]["properties"]
    assert props["blend"]["enum"] == list(BLEND_MODES) and props["blend"]["default"] == "alpha"
    assert props["backend"]["enum"] == list(SEGMENTATION_BACKENDS)
    query = {p["name"] for p in doc["paths"]["/v1/matte"]["post"]["parameters"]}
    assert {"blend", "backend"} <= query
