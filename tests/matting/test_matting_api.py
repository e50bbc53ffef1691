"""/v1/matte, /healthz, /readyz and /openapi.json in-process (Flask test client), with a given
trimap so the real closed-form backend runs without the segmentation service."""

from __future__ import annotations

import io

import numpy as np
import pytest
from apierrors import assert_api_error
from PIL import Image

from matting_api.openapi import MATTE_ERRORS, REMOVEBG_ERRORS
from service_common.errors import ERROR_CODES


@pytest.fixture
def post(client, scene, png):
    """``post(trimap=scene.trimap, image=scene.rgb, **fields) -> response``."""

    def _post(trimap=None, image=None, bg_image=None, **fields):
        data = {"image": (io.BytesIO(png(scene.rgb if image is None else image)), "i.png")}
        tri = scene.trimap if trimap is None else trimap
        if tri is not False:
            data["trimap"] = (io.BytesIO(png(tri)), "t.png")
        if bg_image is not None:
            data["bg_image"] = (io.BytesIO(png(bg_image)), "bg.png")
        data.update(fields)
        return client.post("/v1/matte", data=data, content_type="multipart/form-data")

    return _post


def _fg_bg(scene):
    return scene.trimap == 255, scene.trimap == 0


def test_colour_background_png_keeps_subject_and_background_exact(post, scene, decode):
    resp = post(bg_color="#81d4fa", format="png")
    assert resp.status_code == 200, resp.get_json()
    assert resp.mimetype == "image/png"
    out = decode(resp.data)
    assert out.shape == (64, 64, 3)
    fg, bg = _fg_bg(scene)
    assert np.array_equal(out[fg], scene.rgb[fg])
    assert (out[bg] == [0x81, 0xD4, 0xFA]).all()
    h = resp.headers
    assert (h["X-Width"], h["X-Height"]) == ("64", "64")
    assert h["X-Segmentation-Backend"] == "given-trimap"
    assert h["X-Matting-Backend"] == "closed_form"
    for step in ("decode", "segmentation", "matting", "compositing", "encode"):
        assert f"{step};dur=" in h["Server-Timing"]
    left, top = int(h["X-Foreground-Left"]), int(h["X-Foreground-Top"])
    width, height = int(h["X-Foreground-Width"]), int(h["X-Foreground-Height"])
    # the disc (radius 20 incl. its soft edge) centred at (32, 32)
    assert 10 <= left <= 14 and 10 <= top <= 14 and 36 <= width <= 42 and 36 <= height <= 42
    assert h["X-Request-Id"]


@pytest.mark.parametrize(
    ("fields", "mime", "mode"),
    [
        ({}, "image/png", "RGBA"),  # transparent, auto -> PNG
        ({"bg_color": "white"}, "image/jpeg", "RGB"),  # opaque, auto -> JPEG
        ({"bg_color": "white", "format": "webp"}, "image/webp", "RGB"),
        ({"format": "webp"}, "image/webp", "RGBA"),
        ({"format": "jpg"}, "image/jpeg", "RGB"),  # transparent flattened over white
        ({"channels": "alpha"}, "image/png", "L"),
        ({"channels": "alpha", "format": "webp"}, "image/webp", "RGB"),
        ({"format": "tiff"}, "image/tiff", "RGBA"),
        ({"bg_color": "white", "format": "tiff"}, "image/tiff", "RGB"),
        ({"channels": "alpha", "format": "tiff"}, "image/tiff", "L"),
        ({"bg_color": "81d4fa80"}, "image/png", "RGBA"),  # translucent colour
    ],
)
def test_output_formats_and_channels(post, fields, mime, mode):
    resp = post(**fields)
    assert resp.status_code == 200, resp.get_json()
    assert resp.mimetype == mime
    img = Image.open(io.BytesIO(resp.data))
    assert img.size == (64, 64) and img.mode == mode


def test_transparent_result_and_matte_values(post, scene, decode):
    rgba = decode(post(format="png").data)
    fg, bg = _fg_bg(scene)
    assert (rgba[bg] == 0).all()
    assert (rgba[fg][:, 3] == 255).all() and np.array_equal(rgba[fg][:, :3], scene.rgb[fg])
    matte = decode(post(channels="alpha").data)
    assert (matte[fg] == 255).all() and (matte[bg] == 0).all()
    band = scene.trimap == 128
    assert np.abs(matte[band] / 255.0 - scene.alpha[band]).mean() < 0.02
    flat = decode(post(format="jpg").data).astype(int)
    assert np.abs(flat[0, 0] - 255).max() <= 2  # flattened over white (JPEG-exact within 2)


def test_image_blur_and_grayscale_backgrounds(post, scene, decode):
    bg = np.zeros((32, 128, 3), np.uint8)  # 4:1 bands: red, green, blue, yellow
    for i, c in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]):
        bg[:, 32 * i:32 * (i + 1)] = c
    out = decode(post(bg_image=bg, format="png").data)
    fg, _ = _fg_bg(scene)
    assert np.array_equal(out[fg], scene.rgb[fg])
    # cover: the centre square (green | blue halves) scaled x2, not the squashed 4 bands
    assert (out[0, :8] == [0, 255, 0]).all() and (out[0, -8:] == [0, 0, 255]).all()
    blurred = decode(post(bg_mode="blur", blur_radius="3", format="png").data)
    assert np.array_equal(blurred[fg], scene.rgb[fg])
    assert blurred[:4].astype(int).std() < scene.rgb[:4].astype(int).std() + 1
    grey = decode(post(bg_mode="grayscale", format="png").data).astype(int)
    corner = grey[:6, :6]
    assert (corner[..., 0] == corner[..., 1]).all() and (corner[..., 1] == corner[..., 2]).all()


def test_crop_with_margin_and_size_cap(post, decode):
    resp = post(crop="true", format="png")
    w, h = int(resp.headers["X-Width"]), int(resp.headers["X-Height"])
    assert 36 <= w <= 42 and 36 <= h <= 42 and decode(resp.data).shape == (h, w, 4)
    assert resp.headers["X-Foreground-Left"] == "0" and resp.headers["X-Foreground-Top"] == "0"
    assert (resp.headers["X-Foreground-Width"], resp.headers["X-Foreground-Height"]) == (
        str(w), str(h))
    margin = post(crop="true", crop_margin="5px", format="png")
    assert int(margin.headers["X-Width"]) == w + 10
    assert margin.headers["X-Foreground-Left"] == "5"
    small = post(size="32", bg_color="black", format="png")
    assert decode(small.data).shape == (32, 32, 3)
    assert (small.headers["X-Width"], small.headers["X-Height"]) == ("32", "32")


def test_trimap_errors(post, scene):
    assert_api_error(post(trimap=np.zeros((10, 10), np.uint8)), 400, "invalid_trimap")
    no_fg = post(trimap=np.where(scene.trimap == 255, 128, scene.trimap).astype(np.uint8))
    assert "foreground" in assert_api_error(no_fg, 400, "invalid_trimap")["message"]


def test_request_errors(client, post, make_app, png, scene):
    assert assert_api_error(post(bg_mode="sepia"), 400, "invalid_parameter")["field"] == "bg_mode"
    resp = client.post("/v1/matte", data={"bg_color": "red"}, content_type="multipart/form-data")
    assert_api_error(resp, 400, "missing_field")
    resp = client.post("/v1/matte", data={"image": (io.BytesIO(b"not an image"), "x.png")})
    assert_api_error(resp, 400, "invalid_image")
    tiny_limit = make_app(max_pixels=1000).test_client()
    resp = tiny_limit.post("/v1/matte", data={"image": (io.BytesIO(png(scene.rgb)), "i.png")})
    assert_api_error(resp, 413, "image_too_large")
    assert_api_error(client.get("/v1/matte"), 405, "method_not_allowed")


def test_healthz_and_readyz_without_segmentation(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    error = assert_api_error(client.get("/readyz"), 503, "not_ready")
    assert "segmentation" in error["message"]
    assert error["backend"] == "closed_form" and error["matting"]["warmed_up"] is True
    assert error["segmentation"]["status"] == "unreachable"


def test_openapi_document_is_valid_and_complete(client, make_app):
    doc = client.get("/openapi.json").get_json()
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)
    app = make_app()
    # every route but static files (the page's assets under /page/) is documented
    routes = {r.rule for r in app.url_map.iter_rules() if not r.endpoint.endswith("static")}
    assert routes == set(doc["paths"])
    text = str(doc)
    for code in set(MATTE_ERRORS) | set(REMOVEBG_ERRORS) | {"not_ready"}:
        assert code in ERROR_CODES and f"`{code}`" in text
    assert set(doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
               ["code"]["enum"]) == set(ERROR_CODES)
    matte = doc["paths"]["/v1/matte"]["post"]
    assert {"X-Width", "X-Foreground-Top", "Server-Timing", "X-Matting-Backend"} <= set(
        matte["responses"]["200"]["headers"])
    assert {"200", "400", "413", "415", "422", "500", "502", "503", "504"} <= set(
        matte["responses"])
    fields = matte["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"image", "bg_image", "trimap", "hints", "bg_mode", "bg_color", "blur_radius", "channels",
            "format", "size", "crop", "crop_margin", "classes", "score_threshold",
            "instances", "backend", "blend", "model_size", "prior", "foreground",
            "scale", "position", "roi", "shadow", "shadow_opacity", "subject"} == set(fields)
    removebg = doc["paths"]["/v1.0/removebg"]["post"]["responses"]
    assert "unknown_foreground" in removebg["400"]["description"]


def test_app_start_puts_blas_on_one_thread(make_app):
    """A multi-threaded OpenBLAS spin-waits between the small products the matting does and
    burns the core the segmentation model needs (service_common.cpu)."""
    import threadpoolctl

    threadpoolctl.threadpool_limits(limits=2, user_api="blas")
    make_app()
    blas = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    assert blas and all(lib["num_threads"] == 1 for lib in blas)
