"""Backends and their registry: real models, real weights files, no HTTP."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segmentation_api.backends import load_backend, resolve_name
from segmentation_api.backends import maskrcnn as coco
from segmentation_api.backends.maskrcnn import MASKRCNN, MASKRCNN_V2
from segmentation_api.backends.u2netp import U2NETP
from service_common.config import REPO_ROOT
from service_common.weights import ModelError


@pytest.fixture()
def u2netp_only_dir(tmp_path: Path, models_dir: Path) -> Path:
    """A models folder with u2netp.onnx and no Mask R-CNN weights."""
    (tmp_path / U2NETP.filename).symlink_to(U2NETP.path(models_dir))
    return tmp_path


def test_import_has_no_side_effects():
    code = ("import sys, logging, segmentation_api, segmentation_api.backends; "
            "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules; "
            "assert not logging.getLogger().handlers")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_coco_class_names_come_from_torchvision():
    names = coco.class_names()
    assert len(names) == 80
    assert names[0] == "person" and "traffic light" in names
    assert "N/A" not in names and "__background__" not in names
    assert coco.COCO_CATEGORIES[coco.label_ids(["person", "dog"])[1]] == "dog"


def test_auto_falls_back_to_u2netp_with_a_warning_naming_the_file(
    u2netp_only_dir, make_settings, caplog
):
    settings = make_settings(u2netp_only_dir, segmentation_backend="auto")
    with caplog.at_level(logging.WARNING, logger="segmentation_api.backends"):
        backend = load_backend(settings)
    assert backend.name == "u2netp" and backend.device == "cpu" and not backend.classes_used
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and MASKRCNN.filename in warnings[0].getMessage()
    assert "make weights" in warnings[0].getMessage()


def test_auto_picks_maskrcnn_when_its_file_is_there(maskrcnn_models_dir, make_settings):
    assert resolve_name(make_settings(maskrcnn_models_dir, segmentation_backend="auto")) == "maskrcnn"


@pytest.mark.parametrize(("backend", "weights"), [
    ("maskrcnn", MASKRCNN), ("maskrcnn_v2", MASKRCNN_V2), ("u2netp", U2NETP),
])
def test_missing_weights_are_a_clear_error(tmp_path, make_settings, backend, weights):
    with pytest.raises(ModelError) as info:
        load_backend(make_settings(tmp_path, segmentation_backend=backend))
    message = str(info.value)
    assert weights.filename in message and str(tmp_path) in message
    assert f"make weights WEIGHTS={weights.key}" in message


@pytest.mark.parametrize("content", [b"this is not a checkpoint", "wrong-keys"])
def test_wrong_maskrcnn_file_is_a_clear_error(tmp_path, make_settings, content):
    import torch

    path = MASKRCNN.path(tmp_path)
    if content == "wrong-keys":
        torch.save({"backbone.body.conv1.weight": torch.zeros(1)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ModelError) as info:
        load_backend(make_settings(tmp_path, segmentation_backend="maskrcnn"))
    assert str(path) in str(info.value)


def test_corrupt_onnx_file_is_a_clear_error(tmp_path, make_settings):
    U2NETP.path(tmp_path).write_bytes(b"not an onnx model")
    with pytest.raises(ModelError) as info:
        load_backend(make_settings(tmp_path, segmentation_backend="u2netp"))
    assert str(U2NETP.path(tmp_path)) in str(info.value)


def test_device_rules():
    from service_common.torch_runtime import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ModelError):
        resolve_device("not-a-device")


def test_random_maskrcnn_builds_offline_and_predicts_valid_instances(monkeypatch, sample_photo):
    """Pure random weights: the builder must not download anything; outputs are well formed."""
    import torch
    import torch.hub

    from segmentation_api.backends.maskrcnn import MaskRCNNBackend, build_maskrcnn_resnet50_fpn

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    torch.manual_seed(1)
    model = build_maskrcnn_resnet50_fpn(None, min_size=96, max_size=96, max_detections=3)
    backend = MaskRCNNBackend(model)
    image = sample_photo[::4, ::4].copy()
    instances = backend.predict(image, list(coco.class_names()), 0.0)
    assert 1 <= len(instances) <= 3
    for inst in instances:
        assert inst.mask.shape == image.shape[:2] and inst.mask.dtype == np.float32
        assert inst.mask.min() >= 0.0 and inst.mask.max() <= 1.0
        assert inst.label in coco.class_names()
        assert 0.0 < inst.score <= 1.0
        left, top, width, height = inst.box
        assert left >= 0 and top >= 0 and left + width <= 128 and top + height <= 128
    assert [i.score for i in instances] == sorted((i.score for i in instances), reverse=True)


def test_maskrcnn_from_file_finds_persons_per_its_weights(maskrcnn_backend, sample_photo, person_score):
    assert maskrcnn_backend.name == "maskrcnn" and maskrcnn_backend.device == "cpu"
    found = maskrcnn_backend.predict(sample_photo, ["person"], 0.6)
    assert 1 <= len(found) <= 4  # BACKDROP_MASKRCNN_MAX_DETECTIONS=4
    for inst in found:
        assert inst.label == "person"
        assert inst.score == pytest.approx(person_score, abs=1e-3)
        assert inst.mask.shape == (512, 512) and inst.mask.max() > 0.9
    assert maskrcnn_backend.predict(sample_photo, ["person"], 0.9) == []
    assert maskrcnn_backend.predict(sample_photo, ["dog", "cat"], 0.0) == []


def test_u2netp_finds_the_astronaut_and_nothing_on_a_flat_image(u2netp_app, sample_photo, grey_photo):
    from service_common.web import STATE_KEY

    backend = u2netp_app.extensions[STATE_KEY].backend()
    [inst] = backend.predict(sample_photo, ["dog"], 0.6)  # classes are ignored
    assert inst.label == "salient" and inst.score > 0.9
    assert inst.mask.shape == (512, 512) and inst.mask.dtype == np.float32
    assert inst.mask[130, 220] > 0.9 and inst.mask[5, 500] < 0.1
    assert backend.predict(grey_photo, ["person"], 0.6) == []


def test_coco_names_equal_torchvisions() -> None:
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    from segmentation_api.backends import maskrcnn as coco

    assert tuple(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]) == coco.COCO_CATEGORIES
    assert len(coco.class_names()) == 80 and coco.label_ids(["person", "dog"]) == [1, 18]
