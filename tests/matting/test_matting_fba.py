"""The FBA backend through the real loading path, with weights generated here.

``build_model(None)`` gives a randomly initialised network; its state dict is saved as
``FBA.pth`` in a temporary models folder, which the app then finds and loads like the real
checkpoint. With random weights only what is honest is checked: sizes, headers, and that
the known regions of the trimap come back exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from apierrors import assert_api_error

from matting_api import create_app
from service_common.config import Settings
from service_common.weights import ModelError


@pytest.fixture(scope="module")
def fba_models_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from matting_api.backends.fba.build import build_model

    torch.manual_seed(0)
    model = build_model(None, device="cpu")
    folder = tmp_path_factory.mktemp("fba-models")
    torch.save(model.state_dict(), folder / "FBA.pth")
    return folder


@pytest.fixture(scope="module")
def fba_app(fba_models_dir, dead_url):
    settings = Settings(models_dir=fba_models_dir, matting_backend="auto", device="cpu",
                        torch_threads=1, segmentation_url=dead_url, log_level="WARNING")
    return create_app(settings)


def test_auto_picks_fba_and_keeps_known_regions(fba_app, scene, png, decode):
    client = fba_app.test_client()
    resp = client.post("/v1/matte", data={
        "image": (io.BytesIO(png(scene.rgb)), "i.png"),
        "trimap": (io.BytesIO(png(scene.trimap)), "t.png"),
        "bg_color": "#ff00ff", "format": "png",
    })
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["X-Matting-Backend"] == "fba"
    assert resp.headers["X-Segmentation-Backend"] == "given-trimap"
    out = decode(resp.data)
    assert out.shape == (64, 64, 3)
    fg, bg = scene.trimap == 255, scene.trimap == 0
    assert np.array_equal(out[fg], scene.rgb[fg])
    assert (out[bg] == [255, 0, 255]).all()
    matte = decode(client.post("/v1/matte", data={
        "image": (io.BytesIO(png(scene.rgb)), "i.png"),
        "trimap": (io.BytesIO(png(scene.trimap)), "t.png"), "channels": "alpha",
    }).data)
    assert matte.shape == (64, 64) and (matte[fg] == 255).all() and (matte[bg] == 0).all()


def test_readyz_reports_fba(fba_app):
    error = assert_api_error(fba_app.test_client().get("/readyz"), 503, "not_ready")  # segmentation is down
    assert error["backend"] == "fba" and error["device"] == "cpu"
    assert error["matting"]["name"] == "fba" and error["matting"]["warmed_up"] is True


def test_forced_fba_without_weights_fails_at_start_with_a_clear_message(tmp_path):
    with pytest.raises(ModelError, match="FBA.pth"):
        create_app(Settings(models_dir=tmp_path, matting_backend="fba"))
