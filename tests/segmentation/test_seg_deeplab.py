"""DeepLabV3 backends: weights registry, loading (models folder and hub cache), prediction,
selection by configuration and per request, over HTTP through the real app.

The weights are random but for a classifier head fitted to ``deeplab_photo`` (see
``conftest.py``): on that photo ``person`` wins in ``DEEPLAB_REGIONS["person"]``, ``dog`` in
``DEEPLAB_REGIONS["dog"]``, background elsewhere.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import PurePosixPath
from urllib.parse import urlparse

import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from PIL import Image

from contract.vocab import SEGMENTATION_BACKENDS
from segmentation_api import create_app
from segmentation_api.backends import deeplab as voc
from segmentation_api.backends import load_backend, resolve_name
from segmentation_api.backends.deeplab import DEEPLABV3, DEEPLABV3_MOBILENET
from segmentation_api.backends.maskrcnn import MASKRCNN
from segmentation_api.options import parse_backend
from segmentation_api.semantic import class_instances, preprocess, resize_mask, resized_size
from service_common.config import ENV_DOCS, ConfigError, Settings
from service_common.serve import Service, free_port, running
from service_common.weights import ModelError, main, registry

DEEPLAB_PHOTO_SHAPE = (160, 192)
PERSON_AT = (100, 64)  # (row, col) in deeplab_photo, well inside the person region
DOG_AT = (20, 170)
BACKGROUND_AT = [(8, 8), (150, 180)]
#: Softmax of logit 4 against background 0 and 19 classes at -4.
INSIDE_PROB = float(np.exp(4.0) / (np.exp(4.0) + 1.0 + 19 * np.exp(-4.0)))


# --- facts: registry, class names, input rule ---------------------------------------------


def test_probe_points_lie_where_the_test_weights_put_the_classes(deeplab_photo, deeplab_regions):
    def within(point, region, margin):
        """``point`` lies in ``region`` grown by ``margin`` px (shrunk when negative)."""
        top, bottom, left, right = region
        return top - margin <= point[0] < bottom + margin and left - margin <= point[1] < right + margin

    assert deeplab_photo.shape[:2] == DEEPLAB_PHOTO_SHAPE
    person, dog = deeplab_regions["person"], deeplab_regions["dog"]
    assert within(PERSON_AT, person, -16) and within(DOG_AT, dog, -16)
    assert not within(PERSON_AT, dog, 16) and not within(DOG_AT, person, 16)
    assert not any(within(p, r, 16) for p in BACKGROUND_AT for r in (person, dog))


@pytest.mark.parametrize(("key", "enum_name"), [
    ("deeplabv3", "DeepLabV3_ResNet101_Weights"),
    ("deeplabv3_mobilenet", "DeepLabV3_MobileNet_V3_Large_Weights"),
])
def test_weights_registry_matches_torchvision_enum(key, enum_name):
    import torchvision.models.segmentation as seg

    from segmentation_api.backends.deeplab import VARIANTS

    facts = getattr(seg, enum_name).COCO_WITH_VOC_LABELS_V1
    w = registry()[key]
    assert w is VARIANTS[key].file
    assert w.url == facts.url and w.filename == PurePosixPath(urlparse(facts.url).path).name
    assert w.sha256_prefix and w.filename.endswith(f"-{w.sha256_prefix}.pth")
    assert abs(w.approx_size - facts.meta["_file_size"] * 2**20) < 2**20
    assert key in w.used_by and "BSD-3-Clause" in w.licence


def test_weights_list_shows_the_deeplab_files(tmp_path):
    lines: list[str] = []
    main(["--list", "--models-dir", str(tmp_path)], out=lines.append)
    for w in (DEEPLABV3, DEEPLABV3_MOBILENET):
        [line] = [x for x in lines if x.split()[0] == w.key]
        assert "missing" in line and str(tmp_path / w.filename) in line


def test_voc_class_names_come_from_torchvision():
    from torchvision.models.segmentation import DeepLabV3_MobileNet_V3_Large_Weights as Mobile

    names = voc.class_names()
    assert len(names) == 20 and "person" in names and "dog" in names and "__background__" not in names
    assert tuple(Mobile.COCO_WITH_VOC_LABELS_V1.meta["categories"]) == voc.VOC_CATEGORIES
    assert voc.VOC_CATEGORIES[voc.label_ids(["person"])[0]] == "person"


def test_coco_spellings_name_voc_classes():
    from segmentation_api.backends import maskrcnn as coco

    for coco_name, voc_name in voc.COCO_SPELLINGS.items():
        assert coco_name in coco.class_names() and voc_name in voc.class_names()
    # every VOC class has a COCO counterpart, by the same name or through the table
    assert set(voc.class_names()) <= set(coco.class_names()) | set(voc.COCO_SPELLINGS.values())


@pytest.mark.parametrize("variant", ["deeplabv3", "deeplabv3_mobilenet"])
def test_input_rule_is_the_weights_transforms(variant):
    from segmentation_api.backends.deeplab import input_rule

    rule = input_rule(variant)
    assert rule.short_side == 520 == int(ENV_DOCS["BACKDROP_DEEPLABV3_SIZE"][0]) == Settings().deeplabv3_size
    assert rule.mean == pytest.approx((0.485, 0.456, 0.406))  # ImageNet's
    assert rule.std == pytest.approx((0.229, 0.224, 0.225))
    assert rule.interpolation == "bilinear"


def test_settings_for_deeplab_and_preloading():
    s = Settings.from_env({"BACKDROP_SEGMENTATION_BACKEND": "DeepLabV3",
                           "BACKDROP_SEGMENTATION_PRELOAD": " deeplabv3_mobilenet, U2NETP,,u2netp ",
                           "BACKDROP_DEEPLABV3_SIZE": "256"})
    assert s.segmentation_backend == "deeplabv3"
    assert s.segmentation_preload == ("deeplabv3_mobilenet", "u2netp")
    assert s.deeplabv3_size == 256
    assert Settings.from_env({}).segmentation_preload == ()
    assert {"deeplabv3", "deeplabv3_mobilenet"} <= set(SEGMENTATION_BACKENDS)
    for bad in ("auto", "deeplab,magic"):
        with pytest.raises(ConfigError, match="BACKDROP_SEGMENTATION_PRELOAD"):
            Settings.from_env({"BACKDROP_SEGMENTATION_PRELOAD": bad})
    with pytest.raises(ConfigError, match="BACKDROP_DEEPLABV3_SIZE"):
        Settings.from_env({"BACKDROP_DEEPLABV3_SIZE": "8"})


def test_backend_parameter_prefers_the_exact_name_then_the_family():
    both = ["deeplabv3_mobilenet", "deeplabv3"]
    assert parse_backend(lambda name, default: "deeplabv3", both) == "deeplabv3"
    mobile_only = ["u2netp", "deeplabv3_mobilenet"]
    assert parse_backend(lambda name, default: "DeepLabV3", mobile_only) == "deeplabv3_mobilenet"
    assert parse_backend(lambda name, default: "maskrcnn", ["maskrcnn_v2", "maskrcnn"]) == "maskrcnn"
    assert parse_backend(lambda name, default: "auto", both) is None


# --- pure numpy: input rule and class regions ----------------------------------------------


def test_preprocess_resizes_the_shorter_side_and_normalises():
    assert resized_size(160, 192, 96) == (96, 115)  # long side rounded down, as torchvision
    assert resized_size(300, 100, 50) == (150, 50)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    grey = np.full((40, 100, 3), (124, 116, 104), dtype=np.uint8)  # about the ImageNet mean
    x = preprocess(grey, 20, mean, std)
    assert x.shape == (1, 3, 20, 50) and x.dtype == np.float32 and x.flags.c_contiguous
    assert np.abs(x).max() < 0.02
    white = preprocess(np.full((20, 20, 3), 255, np.uint8), 20, mean, std)
    assert white[0, :, 0, 0] == pytest.approx([(1 - m) / s for m, s in zip(mean, std, strict=True)], rel=1e-5)
    with pytest.raises(ValueError):
        preprocess(np.zeros((4, 4), np.uint8), 20, mean, std)


def test_resize_mask_keeps_values_in_range():
    mask = np.zeros((10, 20), np.float32)
    mask[:, 10:] = 1.0
    up = resize_mask(mask, 40, 80)
    assert up.shape == (40, 80) and up.dtype == np.float32 and up.min() >= 0 and up.max() <= 1
    assert up[20, 0] == 0 and up[20, 79] == 1
    down = resize_mask(up, 5, 10)
    assert down.shape == (5, 10) and down[2, 9] == pytest.approx(1.0)


def test_class_instances_one_per_class_present():
    # 2 requested classes (ids 15 and 12) on an 8 x 8 grid; class 3 wins the right half
    probs = np.zeros((2, 8, 8), np.float32)
    probs[0, :, :4] = 0.9   # class 15 ("person") wins the left half with 0.9
    probs[1, :2, :4] = 0.05
    winner = np.full((8, 8), 3)
    winner[:, :4] = 15
    found = class_instances(probs, winner, [15, 12], ["person", "dog"], 16, 16, 0.6)
    [person] = found  # class 12 never wins: no instance
    assert person.label == "person" and person.score == pytest.approx(0.9)
    assert person.mask.shape == (16, 16) and person.box == (0, 0, 8, 16)
    assert class_instances(probs, winner, [15, 12], ["person", "dog"], 16, 16, 0.9) == []
    # wins somewhere, but never reaches 0.5: nothing to build a trimap from
    weak = np.full((1, 8, 8), 0.4, np.float32)
    assert class_instances(weak, np.full((8, 8), 15), [15], ["person"], 8, 8, 0.3) == []
    with pytest.raises(ValueError):
        class_instances(probs, winner[:4], [15, 12], ["person", "dog"], 16, 16, 0.6)


# --- loading and prediction ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mobilenet_backend(deeplab_models_dir, make_settings):
    from segmentation_api.backends.deeplab import DeepLabV3Backend

    return DeepLabV3Backend.from_settings(make_settings(deeplab_models_dir), variant="deeplabv3_mobilenet")


def check_fitted_regions(instances) -> None:
    """``instances`` found on deeplab_photo are the fitted person and dog regions."""
    assert [inst.label for inst in instances] == ["person", "dog"]
    for inst in instances:
        assert inst.mask.shape == DEEPLAB_PHOTO_SHAPE and inst.mask.dtype == np.float32
        assert inst.mask.min() >= 0.0 and inst.mask.max() <= 1.0
        assert 0.85 < inst.score < INSIDE_PROB
    person = instances[0]
    assert person.mask[PERSON_AT] == pytest.approx(INSIDE_PROB, abs=1e-3)
    assert all(person.mask[p] < 0.05 for p in [DOG_AT, *BACKGROUND_AT])
    left, top, width, height = person.box  # region rows 32..160, cols 32..104, blurred by ~1 cell
    assert 15 <= left <= 40 and 15 <= top <= 40 and top + height == 160 and 90 <= left + width <= 120
    dog = instances[1]
    assert dog.mask[DOG_AT] == pytest.approx(INSIDE_PROB, abs=1e-3) and dog.mask[PERSON_AT] < 0.05
    assert dog.area < person.area


def test_mobilenet_from_file_finds_the_fitted_regions(mobilenet_backend, deeplab_photo):
    backend = mobilenet_backend
    assert backend.name == "deeplabv3_mobilenet" and backend.device == "cpu" and backend.classes_used
    assert backend.model.aux_classifier is None and not backend.model.training
    check_fitted_regions(backend.predict(deeplab_photo, ["person", "dog", "cat"], 0.6))
    assert backend.predict(deeplab_photo, ["person"], 0.98) == []  # score is below 0.976
    assert backend.predict(deeplab_photo, ["cat", "car"], 0.0) == []


def test_mobilenet_predicts_well_formed_instances_on_other_images(mobilenet_backend, sample_photo):
    image = np.ascontiguousarray(sample_photo[::4, ::3])  # 128 x 171, network input 96 x 128
    found = mobilenet_backend.predict(image, list(voc.class_names()), 0.0)
    assert found  # (the head, fitted to another photo, still finds person and dog regions here)
    assert [i.score for i in found] == sorted((i.score for i in found), reverse=True)
    for inst in found:
        assert inst.mask.shape == (128, 171) and inst.label in voc.class_names()
        assert 0.0 < inst.score <= 1.0 and inst.box[2] > 0


@pytest.mark.parametrize("variant", ["deeplabv3", "deeplabv3_mobilenet"])
def test_builders_never_download_and_keep_the_published_layout(monkeypatch, variant):
    import torch.hub

    from segmentation_api.backends.deeplab import architecture, build_deeplabv3

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    keys = architecture(variant).state_dict().keys()
    assert any(k.startswith("aux_classifier.") for k in keys)  # the published files have it
    assert "classifier.4.weight" in keys
    if variant == "deeplabv3_mobilenet":  # the ResNet-101 one is built by the tests below
        model = build_deeplabv3(variant)
        assert model.aux_classifier is None and not model.training


@pytest.mark.parametrize("weights", [DEEPLABV3, DEEPLABV3_MOBILENET])
def test_missing_weights_name_the_file_both_places_and_the_command(tmp_path, make_settings, weights,
                                                                   empty_torch_home):
    with pytest.raises(ModelError) as info:
        load_backend(make_settings(tmp_path, segmentation_backend=weights.key))
    message = str(info.value)
    assert str(tmp_path / weights.filename) in message
    assert str(empty_torch_home / "hub" / "checkpoints" / weights.filename) in message
    assert f"make weights WEIGHTS={weights.key}" in message and weights.url in message


def test_wrong_files_are_clear_errors(tmp_path, make_settings):
    import torch

    from segmentation_api.backends.deeplab import architecture

    path = DEEPLABV3_MOBILENET.path(tmp_path)
    settings = make_settings(tmp_path, segmentation_backend="deeplabv3_mobilenet")
    path.write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(ModelError, match="not a readable torch state dict"):
        load_backend(settings)
    # without the auxiliary head's tensors, strict loading refuses the file: aux_loss matters
    state = {k: v for k, v in architecture("deeplabv3_mobilenet").state_dict().items()
             if not k.startswith("aux_classifier.")}
    torch.save(state, path)
    with pytest.raises(ModelError) as info:
        load_backend(settings)
    assert str(path) in str(info.value) and "aux_classifier" in str(info.value)


def test_weights_in_the_hub_cache_are_used(tmp_path, monkeypatch, make_settings, deeplab_models_dir,
                                           deeplab_photo):
    from service_common.weights import find_weights

    torch_home = tmp_path / "torch-home"
    cached = torch_home / "hub" / "checkpoints" / DEEPLABV3_MOBILENET.filename
    cached.parent.mkdir(parents=True)
    cached.symlink_to(DEEPLABV3_MOBILENET.path(deeplab_models_dir))
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    empty = tmp_path / "models"
    empty.mkdir()
    assert find_weights(DEEPLABV3_MOBILENET, empty) == cached
    local = DEEPLABV3_MOBILENET.path(deeplab_models_dir)
    assert find_weights(DEEPLABV3_MOBILENET, deeplab_models_dir) == local  # the models folder first
    backend = load_backend(make_settings(empty, segmentation_backend="deeplabv3_mobilenet"))
    check_fitted_regions(backend.predict(deeplab_photo, ["person", "dog"], 0.6))


def test_maskrcnn_weights_in_the_hub_cache_are_used(tmp_path, monkeypatch, make_settings,
                                                    maskrcnn_models_dir, sample_photo, caplog):
    torch_home = tmp_path / "torch-home"
    cached = torch_home / "hub" / "checkpoints" / MASKRCNN.filename
    cached.parent.mkdir(parents=True)
    cached.symlink_to(MASKRCNN.path(maskrcnn_models_dir))
    empty = tmp_path / "models"
    empty.mkdir()
    settings = make_settings(empty, segmentation_backend="auto")
    with caplog.at_level(logging.WARNING, logger="segmentation_api.backends"):
        assert resolve_name(settings) == "modnet"  # the tests' empty TORCH_HOME: offline
    assert "torch hub's cache" in caplog.text and MASKRCNN.filename in caplog.text
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    assert resolve_name(settings) == "maskrcnn"
    backend = load_backend(settings)
    assert backend.name == "maskrcnn"
    found = backend.predict(sample_photo[::4, ::4].copy(), ["person"], 0.6)
    assert found and {inst.label for inst in found} == {"person"}


def test_resnet101_selected_by_configuration(deeplab_resnet_models_dir, make_settings, deeplab_photo,
                                             encode_png, post, read_trimap):
    """The ResNet-101 variant, loaded by create_app from BACKDROP_SEGMENTATION_BACKEND=deeplabv3."""
    from service_common.web import STATE_KEY

    app = create_app(make_settings(deeplab_resnet_models_dir, segmentation_backend="deeplabv3"))
    backend = app.extensions[STATE_KEY].backend()
    assert backend.name == "deeplabv3" and backend.model.aux_classifier is None
    check_fitted_regions(backend.predict(deeplab_photo, ["person", "dog"], 0.6))
    client = app.test_client()
    assert client.get("/readyz").get_json()["backends"] == ["deeplabv3"]
    response = post(client, encode_png(deeplab_photo))
    assert response.status_code == 200 and response.headers["X-Segmentation-Backend"] == "deeplabv3"
    trimap = read_trimap(response)
    assert trimap.shape == DEEPLAB_PHOTO_SHAPE and trimap[PERSON_AT] == 255 and trimap[DOG_AT] == 0


# --- HTTP: selection by configuration -------------------------------------------------------


@pytest.fixture(scope="module")
def deeplab_app(deeplab_models_dir, make_settings):
    """The app with BACKDROP_SEGMENTATION_BACKEND=deeplabv3_mobilenet (loaded by create_app)."""
    return create_app(make_settings(deeplab_models_dir, segmentation_backend="deeplabv3_mobilenet"))


@pytest.fixture(scope="module")
def photo_png(deeplab_photo, encode_png) -> bytes:
    return encode_png(deeplab_photo)


def test_trimap_of_the_configured_deeplab(deeplab_app, photo_png, post, read_trimap):
    client = deeplab_app.test_client()
    name = "deeplabv3_mobilenet"
    assert client.get("/readyz").get_json() == {
        "status": "ready", "backend": name, "device": "cpu", "backends": [name],
        "policy": {"mode": "single", "person": name, "other": name,
                   "why": f"BACKDROP_SEGMENTATION_BACKEND={name}"}}
    response = post(client, photo_png)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["X-Segmentation-Backend"] == "deeplabv3_mobilenet"
    assert response.headers["X-Subjects"] == "1"
    trimap = read_trimap(response)  # PNG, mode L, values 0/128/255
    assert trimap.shape == DEEPLAB_PHOTO_SHAPE
    assert trimap[PERSON_AT] == 255 and trimap[DOG_AT] == 0  # only persons asked for
    assert all(trimap[p] == 0 for p in BACKGROUND_AT)
    assert (trimap == 128).any()
    rows, cols = np.nonzero(trimap)
    box = [int(cols.min()), int(rows.min()),
           int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)]
    assert [int(v) for v in response.headers["X-Subject-Box"].split(",")] == box
    assert [part.split(";")[0] for part in response.headers["Server-Timing"].split(", ")] == [
        "decode", "model", "trimap", "encode"]


def test_all_classes_and_the_largest_region(deeplab_app, photo_png, post, read_trimap):
    client = deeplab_app.test_client()
    body = post(client, photo_png, classes="dog,person",
                headers={"Accept": "application/json"}).get_json()
    assert body["backend"] == "deeplabv3_mobilenet" and body["classes_ignored"] is False
    assert body["subjects"] == 2 and [i["label"] for i in body["instances"]] == ["person", "dog"]
    assert all(0.85 < i["score"] < INSIDE_PROB for i in body["instances"])
    both = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["trimap_png_base64"]))))
    assert both[PERSON_AT] == 255 and both[DOG_AT] == 255
    largest = post(client, photo_png, classes="dog,person", instances="largest")
    assert largest.headers["X-Subjects"] == "1"
    trimap = read_trimap(largest)
    assert trimap[PERSON_AT] == 255 and trimap[DOG_AT] == 0


def test_coco_spellings_are_accepted_and_answers_name_the_backend(deeplab_app, photo_png, post):
    response = post(deeplab_app.test_client(), photo_png, classes="Couch, TV")
    error = assert_api_error(response, 422, "no_subject")
    assert error["classes"] == ["sofa", "tvmonitor"] and error["backend"] == "deeplabv3_mobilenet"
    assert response.headers["X-Segmentation-Backend"] == "deeplabv3_mobilenet"


def test_score_threshold_decides_no_subject(deeplab_app, photo_png, post):
    assert_api_error(post(deeplab_app.test_client(), photo_png, score_threshold="0.98"), 422, "no_subject")


@pytest.mark.parametrize("classes", ["unicorn", "person,traffic light", "__background__"])
def test_unknown_class_lists_the_voc_names(deeplab_app, photo_png, classes, post):
    response = post(deeplab_app.test_client(), photo_png, classes=classes)
    error = assert_api_error(response, 400, "invalid_parameter")
    assert error["field"] == "classes" and error["valid"] == list(voc.class_names())
    assert error["unknown"] == [classes.split(",")[-1]]
    assert "tvmonitor" in error["message"] and "tv (tvmonitor)" in error["message"]


# --- HTTP: selection per request ------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_app(deeplab_models_dir, make_settings):
    """Default u2netp, with BACKDROP_SEGMENTATION_PRELOAD=deeplabv3_mobilenet."""
    return create_app(make_settings(deeplab_models_dir, segmentation_backend="u2netp",
                                    segmentation_preload=("deeplabv3_mobilenet",)))


def test_readiness_lists_the_loaded_backends(mixed_app):
    ready = mixed_app.test_client().get("/readyz").get_json()
    assert ready["backend"] == "u2netp" and ready["backends"] == ["u2netp", "deeplabv3_mobilenet"]


def test_backend_chosen_per_request(mixed_app, photo_png, post, read_trimap):
    client = mixed_app.test_client()
    default = post(client, photo_png)
    assert default.status_code == 200 and default.headers["X-Segmentation-Backend"] == "u2netp"
    for name in ("deeplabv3_mobilenet", "deeplabv3"):  # the family name serves the loaded variant
        chosen = post(client, photo_png, backend=name)
        assert chosen.status_code == 200 and chosen.headers["X-Segmentation-Backend"] == "deeplabv3_mobilenet"
        trimap = read_trimap(chosen)
        assert trimap[PERSON_AT] == 255 and trimap[DOG_AT] == 0
    raw = client.post("/v1/trimap?backend=deeplabv3_mobilenet&classes=dog", data=photo_png,
                      content_type="image/png", headers={"Accept": "application/json"})
    assert raw.headers["X-Segmentation-Backend"] == "deeplabv3_mobilenet"
    assert [i["label"] for i in raw.get_json()["instances"]] == ["dog"]


def test_classes_are_checked_against_the_chosen_backend(mixed_app, photo_png, post):
    client = mixed_app.test_client()
    assert post(client, photo_png, classes="traffic light").status_code == 200  # u2netp: COCO names
    response = post(client, photo_png, classes="traffic light", backend="deeplabv3_mobilenet")
    assert assert_api_error(response, 400, "invalid_parameter")["field"] == "classes"
    assert response.headers["X-Segmentation-Backend"] == "deeplabv3_mobilenet"


@pytest.mark.parametrize("name", ["maskrcnn", "maskrcnn_v2"])
def test_backend_not_loaded_says_how_to_preload(mixed_app, photo_png, name, post):
    response = post(mixed_app.test_client(), photo_png, backend=name)
    error = assert_api_error(response, 400, "invalid_parameter")
    assert error["field"] == "backend" and error["loaded"] == ["u2netp", "deeplabv3_mobilenet"]
    assert f"BACKDROP_SEGMENTATION_PRELOAD={name}" in error["message"]
    assert "X-Segmentation-Backend" not in response.headers  # nothing served


def test_u2netp_not_loaded_in_a_deeplab_only_service(deeplab_app, photo_png, post):
    response = post(deeplab_app.test_client(), photo_png, backend="u2netp")
    assert assert_api_error(response, 400, "invalid_parameter")["loaded"] == ["deeplabv3_mobilenet"]


def test_preload_from_the_environment(monkeypatch, deeplab_models_dir):
    monkeypatch.setenv("BACKDROP_MODELS_DIR", str(deeplab_models_dir))
    monkeypatch.setenv("BACKDROP_SEGMENTATION_BACKEND", "deeplabv3_mobilenet")
    monkeypatch.setenv("BACKDROP_SEGMENTATION_PRELOAD", "u2netp,deeplabv3_mobilenet")
    monkeypatch.setenv("BACKDROP_DEEPLABV3_SIZE", "96")
    monkeypatch.setenv("BACKDROP_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("BACKDROP_TORCH_THREADS", "1")
    ready = create_app().test_client().get("/readyz").get_json()
    assert ready["backend"] == "deeplabv3_mobilenet"
    assert ready["backends"] == ["deeplabv3_mobilenet", "u2netp"]


def test_preloading_a_backend_without_weights_fails_at_start(deeplab_models_dir, make_settings):
    settings = make_settings(deeplab_models_dir, segmentation_backend="u2netp",
                             segmentation_preload=("deeplabv3",))  # only the MobileNet file is there
    with pytest.raises(ModelError, match=DEEPLABV3.filename):
        create_app(settings)


# --- real gunicorn ----------------------------------------------------------------------------


def test_preloaded_deeplab_under_gunicorn(deeplab_models_dir, deeplab_photo, encode_png, empty_torch_home,
                                          tmp_path, read_trimap):
    env = {"BACKDROP_TORCH_THREADS": "1", "BACKDROP_LOG_LEVEL": "WARNING",
           "BACKDROP_MODELS_DIR": str(deeplab_models_dir), "TORCH_HOME": str(empty_torch_home),
           "BACKDROP_SEGMENTATION_BACKEND": "u2netp", "BACKDROP_SEGMENTATION_PRELOAD": "deeplabv3_mobilenet",
           "BACKDROP_DEEPLABV3_SIZE": "96"}
    service = Service("segmentation", free_port(), env=env, timeout=120, log_path=tmp_path / "seg.log")
    with running(service, ready_timeout=120):
        ready = requests.get(service.url + "/readyz", timeout=10).json()
        assert ready["backends"] == ["u2netp", "deeplabv3_mobilenet"]
        response = requests.post(service.url + "/v1/trimap", data={"backend": "deeplabv3_mobilenet"},
                                 files={"image": ("photo.png", encode_png(deeplab_photo), "image/png")},
                                 timeout=60)
        assert response.status_code == 200, response.text
        assert response.headers["X-Segmentation-Backend"] == "deeplabv3_mobilenet"
        trimap = read_trimap(response)
        assert trimap.shape == DEEPLAB_PHOTO_SHAPE and trimap[PERSON_AT] == 255 and trimap[DOG_AT] == 0
