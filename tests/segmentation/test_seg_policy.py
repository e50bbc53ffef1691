"""The ``auto`` policy (MODNet for people, U^2-Net-p for other classes) and ``POST /v1/mask``,
through the real app with the real offline models."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from apierrors import assert_api_error
from PIL import Image

from segmentation_api import create_app
from segmentation_api.backends.modnet import MODNET
from segmentation_api.backends.u2netp import U2NETP

WHY = ("auto: Mask R-CNN weights missing: MODNet (portrait matting) for people, "
       "U^2-Net-p (salient object) for other classes")


@pytest.fixture(scope="module")
def auto_client(models_dir, make_settings):
    return create_app(make_settings(models_dir, segmentation_backend="auto")).test_client()


@pytest.fixture
def only(models_dir, tmp_path, make_settings):
    """``only(*weights)``: an auto app whose models folder holds just those files."""

    def _only(*weights):
        folder = tmp_path / "models"
        folder.mkdir()
        for w in weights:
            w.path(folder).symlink_to(w.path(models_dir))
        return create_app(make_settings(folder, segmentation_backend="auto")).test_client()

    return _only


def _mask_of(response) -> np.ndarray:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "image/png"
    img = Image.open(io.BytesIO(response.data))
    assert img.mode == "I;16"
    return np.asarray(img, dtype=np.float64) / 65535.0


def test_readyz_shows_the_policy(auto_client):
    ready = auto_client.get("/readyz").get_json()
    assert ready == {"status": "ready", "backend": "modnet", "device": "cpu",
                     "backends": ["modnet", "u2netp", "selfie"],
                     "policy": {"mode": "by-class", "person": "modnet", "other": "u2netp",
                                "why": WHY}}


@pytest.mark.parametrize(("query", "backend", "reason"), [
    ("", "modnet", "subject=auto: modnet's matte looks like a person (score 0.99, 53% of the photo, "
     "5% soft): modnet alone"),
    ("?classes=Person", "modnet", "classes=person: people, so modnet; " + WHY),
    ("?classes=dog", "u2netp", "classes=dog: not people only, so u2netp; " + WHY),
    ("?classes=person,teddy%20bear", "u2netp",
     "classes=person,teddy bear: not people only, so u2netp; " + WHY),
    ("?backend=u2netp", "u2netp", "requested backend=u2netp"),
])
def test_auto_picks_by_what_is_asked(auto_client, sample_photo_bytes, query, backend, reason):
    response = auto_client.post("/v1/mask" + query, data=sample_photo_bytes, content_type="image/png")
    _mask_of(response)
    assert response.headers["X-Segmentation-Backend"] == backend
    assert response.headers["X-Segmentation-Reason"] == reason
    assert response.headers["X-Mask-Kind"] == ("matte" if backend == "modnet" else "segmentation")


def test_mask_is_the_soft_matte_of_the_input_size(auto_client, sample_photo_bytes, post, read_trimap):
    response = auto_client.post("/v1/mask", data=sample_photo_bytes, content_type="image/png")
    mask = _mask_of(response)
    assert mask.shape == (512, 512)
    assert mask[:200, :80].max() < 0.05 and mask[100:150, 190:250].min() > 0.95  # flag, face
    soft = (mask > 0.02) & (mask < 0.98)
    assert 0.005 < soft.mean() < 0.1  # a soft edge (hair), not a binary mask
    assert len(np.unique(mask[soft])) > 1000  # 16 bits, not 8
    left, top, width, height = (int(v) for v in response.headers["X-Subject-Box"].split(","))
    ys, xs = np.nonzero(mask >= 0.5)
    assert (left, top, left + width - 1, top + height - 1) == (xs.min(), ys.min(), xs.max(), ys.max())
    timings = [part.split(";")[0] for part in response.headers["Server-Timing"].split(", ")]
    assert timings == ["decode", "model", "model-modnet", "encode"]  # subject=auto: MODNet alone
    # the trimap of the same request comes from the same model
    trimap = read_trimap(post(auto_client, sample_photo_bytes))
    assert (trimap[mask >= 0.9] != 0).all() and (trimap[mask < 0.01] != 255).all()


def test_mask_as_json(auto_client, sample_photo_bytes):
    response = auto_client.post("/v1/mask", data=sample_photo_bytes, content_type="image/png",
                                headers={"Accept": "application/json"})
    body = response.get_json()
    assert body["backend"] == "modnet" and body["reason"].startswith("subject=auto: modnet's matte")
    assert body["subjects"] == 1 and body["instances"][0]["label"] == "person"
    png = base64.b64decode(body["mask_png16_base64"])
    assert Image.open(io.BytesIO(png)).mode == "I;16"
    assert set(body["timing_ms"]) == {"decode", "model", "model-modnet", "encode", "total"}


def test_modnet_refuses_other_classes_when_named(auto_client, sample_photo_bytes):
    response = auto_client.post("/v1/mask?backend=modnet&classes=dog", data=sample_photo_bytes,
                                content_type="image/png")
    error = assert_api_error(response, 400, "invalid_parameter")
    assert error["field"] == "classes" and error["valid"] == ["person"]
    assert response.headers["X-Segmentation-Backend"] == "modnet"


def test_no_person_is_422_from_modnet(auto_client, grey_photo, encode_png):
    response = auto_client.post("/v1/mask?subject=person", data=encode_png(grey_photo),
                                content_type="image/png")
    error = assert_api_error(response, 422, "no_subject")
    assert "person" in error["message"] and error["backend"] == "modnet"


def test_without_modnet_u2netp_serves_everything(only, sample_photo_bytes, caplog):
    client = only(U2NETP)
    assert MODNET.filename in caplog.text
    ready = client.get("/readyz").get_json()
    assert ready["backends"] == ["u2netp"] and ready["policy"]["mode"] == "single"
    response = client.post("/v1/mask", data=sample_photo_bytes, content_type="image/png")
    _mask_of(response)
    assert response.headers["X-Segmentation-Backend"] == "u2netp"
    assert f"{MODNET.filename} missing" in response.headers["X-Segmentation-Reason"]


def test_without_u2netp_other_classes_say_which_file_is_missing(only, sample_photo_bytes):
    client = only(MODNET)
    ok = client.post("/v1/mask", data=sample_photo_bytes, content_type="image/png")
    assert ok.status_code == 200 and ok.headers["X-Segmentation-Backend"] == "modnet"
    refused = client.post("/v1/mask?classes=dog", data=sample_photo_bytes, content_type="image/png")
    error = assert_api_error(refused, 503, "not_ready")
    assert U2NETP.filename in error["message"] and "make weights WEIGHTS=u2netp" in error["message"]


def test_model_size_sets_modnet_working_size(auto_client, sample_photo_bytes):
    """``model_size`` is the person model's shorter side: smaller is coarser but the same
    subject, at the input's size (at 256 px it loses the helmet she holds: the reason video
    alone defaults to a smaller size); a size outside 128..1024 is a 400 naming the field."""
    def mask(query: str) -> np.ndarray:
        return _mask_of(auto_client.post("/v1/mask" + query, data=sample_photo_bytes,
                                         content_type="image/png"))

    full, small = mask(""), mask("?model_size=384")
    assert small.shape == full.shape == (512, 512)
    assert small[100:150, 190:250].min() > 0.95 and small[:200, :80].max() < 0.05
    assert 0.005 < np.abs(small - full).mean() < 0.05  # ran at another size, same subject
    assert np.array_equal(mask("?model_size=512"), full)  # 512 is the reference size
    for bad, words in (("64", "outside 128..1024"), ("big", "not a whole number")):
        response = auto_client.post(f"/v1/mask?model_size={bad}", data=sample_photo_bytes,
                                    content_type="image/png")
        error = assert_api_error(response, 400, "invalid_parameter")
        assert error["field"] == "model_size" and words in error["message"]


def test_bmp_upload_gives_the_same_mask_as_png(auto_client, sample_photo, sample_photo_bytes):
    """The uncompressed hop the matting service uses on one machine is lossless."""
    bmp = io.BytesIO()
    Image.fromarray(sample_photo).save(bmp, format="BMP")
    as_bmp = auto_client.post("/v1/mask", data=bmp.getvalue(), content_type="image/bmp")
    as_png = auto_client.post("/v1/mask", data=sample_photo_bytes, content_type="image/png")
    assert np.array_equal(_mask_of(as_bmp), _mask_of(as_png))
