"""Fixtures of the segmentation tests: apps, a Mask R-CNN weights file, a gunicorn service.

* ``u2netp_app`` / ``u2netp_client``: the app with the real offline model (models/u2netp.onnx),
  small upload and pixel limits so the limit errors are cheap to trigger.
* ``maskrcnn_models_dir``: a temporary models folder holding a Mask R-CNN state dict under
  the real file name. The weights are random (seeded) except the last layers, set so that
  every region proposal is a ``person`` with score 0.8 whose mask fills its box: the real
  network and the real loading code run, and the outcome is known in advance (found at
  the default threshold 0.6, nothing at 0.9 or for other classes).
* ``maskrcnn_app`` / ``maskrcnn_client``: the app with that model injected, at 128 px.
* ``maskrcnn_service``: the same weights under a real gunicorn on a free port.
* ``deeplab_photo``: a 192 x 160 photo, and :data:`DEEPLAB_REGIONS`, where the DeepLabV3
  test weights put a ``person`` and a ``dog`` in it.
* ``deeplab_models_dir`` / ``deeplab_resnet_models_dir``: temporary models folders with
  DeepLabV3 MobileNetV3 / ResNet-101 state dicts under their real file names (plus
  ``u2netp.onnx``): random weights (seeded) whose classifier head is fitted, by least
  squares, to the network's own features of ``deeplab_photo`` at
  :data:`DEEPLAB_SIZE` px, so that on that photo ``person`` wins exactly in its region
  (softmax 0.976), ``dog`` in its region, background elsewhere. The real network and the
  real loading code run; the outcome on that photo is known in advance.

Every test here runs with ``TORCH_HOME`` pointing at an empty folder, so that weights in
the machine's torch hub cache (a fallback of the backends) cannot change the outcome.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from apierrors import body_of
from PIL import Image

from segmentation_api.backends.maskrcnn import MASKRCNN
from segmentation_api.backends.u2netp import U2NETP
from service_common.config import Settings
from service_common.serve import Service, free_port, running

#: Settings every test app shares: one thread, quiet logs, small limits.
MAX_UPLOAD_BYTES = 1_200_000
MAX_PIXELS = 2_000_000
PERSON_SCORE = 0.8
MASKRCNN_ENV = {
    "BACKDROP_MASKRCNN_MIN_SIZE": "128",
    "BACKDROP_MASKRCNN_MAX_SIZE": "192",
    "BACKDROP_MASKRCNN_MAX_DETECTIONS": "4",
    "BACKDROP_TORCH_THREADS": "1",
    "BACKDROP_LOG_LEVEL": "WARNING",
    "BACKDROP_MAX_UPLOAD_MB": str(MAX_UPLOAD_BYTES / (1024 * 1024)),
    "BACKDROP_MAX_PIXELS": str(MAX_PIXELS),
}


#: DeepLabV3 input size in the tests (shorter side, px): the 160 px photo is shrunk to it.
DEEPLAB_SIZE = 96
#: Size (H, W) of ``deeplab_photo``.
DEEPLAB_PHOTO_SHAPE = (160, 192)
#: class -> (top, bottom, left, right) of its region in ``deeplab_photo``, px.
DEEPLAB_REGIONS = {"person": (32, 160, 32, 104), "dog": (0, 56, 136, 192)}
#: Logit of a class inside / outside its region (background: 0 everywhere).
DEEPLAB_LOGIT = 4.0


def build_settings(models_dir: Path, **changes: object) -> Settings:
    """Settings for an in-process test app."""
    base = Settings(
        models_dir=models_dir, torch_threads=1, log_level="WARNING",
        max_upload_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_PIXELS,
        maskrcnn_min_size=128, maskrcnn_max_size=192, maskrcnn_max_detections=4,
        deeplabv3_size=DEEPLAB_SIZE,
    )
    return base.with_overrides(**changes)


@pytest.fixture(scope="session")
def empty_torch_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("torch-home")


@pytest.fixture(autouse=True)
def _isolated_torch_hub(monkeypatch, empty_torch_home: Path) -> None:
    """No test sees the machine's torch hub cache (``torch.hub.get_dir()`` reads TORCH_HOME)."""
    monkeypatch.setenv("TORCH_HOME", str(empty_torch_home))


def person_detector_state_dict(seed: int = 0) -> dict:
    """A Mask R-CNN state dict: random weights, last layers set to 'person, 0.8, whole box'.

    Class logits: 0 for every class but ``person``, whose bias makes its softmax
    probability :data:`PERSON_SCORE` (the other 89 classes get 0.002 each, under
    torchvision's 0.05 cut). Box regression: zero (boxes = proposals). Mask logits: +4 for
    person (sigmoid 0.98) everywhere in the box.
    """
    import torch

    from segmentation_api.backends import maskrcnn as coco
    from segmentation_api.backends.maskrcnn import build_maskrcnn_resnet50_fpn

    torch.manual_seed(seed)
    state = build_maskrcnn_resnet50_fpn(None).state_dict()
    person = coco.label_ids(["person"])[0]
    others = len(coco.COCO_CATEGORIES) - 1
    for key in ("roi_heads.box_predictor.cls_score", "roi_heads.box_predictor.bbox_pred",
                "roi_heads.mask_predictor.mask_fcn_logits"):
        state[key + ".weight"].zero_()
        state[key + ".bias"].zero_()
    state["roi_heads.box_predictor.cls_score.bias"][person] = math.log(
        PERSON_SCORE / (1 - PERSON_SCORE) * others
    )
    state["roi_heads.mask_predictor.mask_fcn_logits.bias"][person] = 4.0
    return state


def deeplab_region_masks(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """:data:`DEEPLAB_REGIONS` as boolean ``H x W`` masks of ``shape``."""
    masks = {}
    for name, (top, bottom, left, right) in DEEPLAB_REGIONS.items():
        mask = np.zeros(shape, dtype=bool)
        mask[top:bottom, left:right] = True
        masks[name] = mask
    return masks


def fitted_deeplab_state_dict(variant: str, rgb: np.ndarray, regions: dict[str, np.ndarray],
                              short_side: int = DEEPLAB_SIZE, seed: int = 0) -> dict:
    """A DeepLabV3 state dict (published layout, aux head included): random weights whose
    classifier head makes ``regions`` come out on ``rgb``.

    The features entering the last 1 x 1 convolution (``classifier.4``) are computed for
    ``rgb`` exactly as the backend prepares it. The batch norm before them (``classifier.2``)
    is set to standardise them over this image (random deep networks shrink or blow up
    their activations), then ``classifier.4`` is solved by least squares so that, at every
    cell of the output grid, the logit of each class of ``regions`` is +4 when the cell's
    centre lies in its region and -4 elsewhere, background 0, every other class -4. There
    are fewer cells (48 to 180) than features (256): the fit is exact.
    """
    import torch

    from segmentation_api.backends import deeplab as voc
    from segmentation_api.backends.deeplab import architecture, input_rule
    from segmentation_api.semantic import preprocess

    torch.manual_seed(seed)
    model = architecture(variant)
    state = model.state_dict()
    model.aux_classifier = None
    model.eval()
    rule = input_rule(variant)
    x = torch.from_numpy(preprocess(rgb, short_side, rule.mean, rule.std))
    seen: dict[str, torch.Tensor] = {}
    hooks = [model.classifier[1].register_forward_hook(lambda m, i, o: seen.__setitem__("pre_bn", o)),
             model.classifier[3].register_forward_hook(lambda m, i, o: seen.__setitem__("features", o))]
    with torch.no_grad():
        model(x)
        pre_bn = seen["pre_bn"][0].double()
        mean, var = pre_bn.mean((1, 2)), pre_bn.var((1, 2), unbiased=False)
        bn = model.classifier[2]
        std = var.sqrt()
        scale = torch.where(std > 0, (var + bn.eps).sqrt() / std.clamp_min(1e-300), torch.ones_like(std))
        for key, value in (("running_mean", mean), ("running_var", var), ("weight", scale),
                           ("bias", torch.zeros_like(mean))):
            state[f"classifier.2.{key}"] = value.float()
            getattr(bn, key).copy_(value.float())
        model(x)
    for hook in hooks:
        hook.remove()
    features = seen["features"][0].double()  # 256 x gh x gw
    channels, gh, gw = features.shape
    height, width = rgb.shape[:2]
    rows = ((np.arange(gh) + 0.5) * height / gh).astype(int)
    cols = ((np.arange(gw) + 0.5) * width / gw).astype(int)
    n_classes = len(voc.VOC_CATEGORIES)
    target = np.full((n_classes, gh, gw), -DEEPLAB_LOGIT)
    target[0] = 0.0
    for name, region in regions.items():
        target[voc.label_ids([name])[0]] = np.where(region[np.ix_(rows, cols)], DEEPLAB_LOGIT, -DEEPLAB_LOGIT)
    design = np.concatenate([features.reshape(channels, -1).T.numpy(), np.ones((gh * gw, 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, target.reshape(n_classes, -1).T, rcond=None)
    assert np.abs(design @ solution - target.reshape(n_classes, -1).T).max() < 1e-3, "fit not exact"
    state["classifier.4.weight"] = torch.from_numpy(solution[:-1].T.copy()).float()[:, :, None, None]
    state["classifier.4.bias"] = torch.from_numpy(solution[-1].copy()).float()
    return state


@pytest.fixture(scope="session")
def deeplab_regions() -> dict[str, tuple[int, int, int, int]]:
    """class -> (top, bottom, left, right) of the region the DeepLabV3 test weights give it."""
    return dict(DEEPLAB_REGIONS)


@pytest.fixture(scope="session")
def deeplab_photo(sample_photo) -> np.ndarray:
    """The portrait squeezed to 192 x 160 (W x H): ``H x W x 3`` uint8."""
    height, width = DEEPLAB_PHOTO_SHAPE
    return np.asarray(Image.fromarray(sample_photo).resize((width, height), Image.Resampling.LANCZOS))


def _deeplab_folder(tmp_path_factory, variant: str, rgb: np.ndarray, models_dir: Path) -> Path:
    import torch

    from segmentation_api.backends.deeplab import VARIANTS

    folder = tmp_path_factory.mktemp(f"{variant}-models")
    state = fitted_deeplab_state_dict(variant, rgb, deeplab_region_masks(rgb.shape[:2]))
    torch.save(state, VARIANTS[variant].file.path(folder))
    (folder / U2NETP.filename).symlink_to(U2NETP.path(models_dir))
    return folder


@pytest.fixture(scope="session")
def deeplab_models_dir(tmp_path_factory, deeplab_photo, models_dir: Path) -> Path:
    """u2netp.onnx + DeepLabV3 MobileNetV3 weights fitted to ``deeplab_photo``."""
    return _deeplab_folder(tmp_path_factory, "deeplabv3_mobilenet", deeplab_photo, models_dir)


@pytest.fixture(scope="session")
def deeplab_resnet_models_dir(tmp_path_factory, deeplab_photo, models_dir: Path) -> Path:
    """u2netp.onnx + DeepLabV3 ResNet-101 weights fitted to ``deeplab_photo``."""
    return _deeplab_folder(tmp_path_factory, "deeplabv3", deeplab_photo, models_dir)


@pytest.fixture(scope="session")
def person_score() -> float:
    """The score every detection of the person-detector weights has."""
    return PERSON_SCORE


@pytest.fixture(scope="session")
def make_settings():
    """``make_settings(models_dir, **overrides) -> Settings`` for an in-process app."""
    return build_settings


@pytest.fixture(scope="session")
def maskrcnn_models_dir(tmp_path_factory) -> Path:
    """A models folder with the person-detector weights under Mask R-CNN's real file name."""
    import torch

    folder = tmp_path_factory.mktemp("maskrcnn-models")
    torch.save(person_detector_state_dict(), MASKRCNN.path(folder))
    return folder


@pytest.fixture(scope="session")
def u2netp_app(models_dir: Path):
    from segmentation_api import create_app

    return create_app(build_settings(models_dir, segmentation_backend="u2netp"))


@pytest.fixture()
def u2netp_client(u2netp_app):
    return u2netp_app.test_client()


@pytest.fixture(scope="session")
def maskrcnn_backend(maskrcnn_models_dir: Path):
    """Mask R-CNN loaded from the weights file by the real loading code."""
    from segmentation_api.backends.maskrcnn import MaskRCNNBackend

    settings = build_settings(maskrcnn_models_dir, segmentation_backend="maskrcnn")
    return MaskRCNNBackend.from_settings(settings)


@pytest.fixture(scope="session")
def maskrcnn_app(maskrcnn_models_dir: Path, maskrcnn_backend):
    from segmentation_api import create_app

    settings = build_settings(maskrcnn_models_dir, segmentation_backend="maskrcnn")
    return create_app(settings, backend=maskrcnn_backend)


@pytest.fixture()
def maskrcnn_client(maskrcnn_app):
    return maskrcnn_app.test_client()


@pytest.fixture(scope="session")
def maskrcnn_service(maskrcnn_models_dir: Path, tmp_path_factory) -> Iterator[Service]:
    """gunicorn serving ``segmentation_api:create_app()`` with ``auto`` -> Mask R-CNN."""
    logs = tmp_path_factory.mktemp("seg-logs")
    env = {**MASKRCNN_ENV, "BACKDROP_MODELS_DIR": str(maskrcnn_models_dir),
           "BACKDROP_SEGMENTATION_BACKEND": "auto"}
    service = Service("segmentation", free_port(), env=env, timeout=120,
                      log_path=logs / "segmentation.log")
    with running(service, ready_timeout=120):
        yield service


@pytest.fixture(scope="session")
def grey_photo() -> np.ndarray:
    """A flat grey 64 x 48 RGB image: nothing salient in it."""
    return np.full((48, 64, 3), 128, dtype=np.uint8)


# --- request helpers (work with Flask test responses and requests responses) ---------------


def _post_trimap(client, data: bytes | None, *, filename: str = "image.png",
                 headers: dict | None = None, **params: str):
    """POST ``data`` as multipart field ``image`` with form ``params`` to /v1/trimap."""
    form: dict = dict(params)
    if data is not None:
        form["image"] = (io.BytesIO(data), filename)
    return client.post("/v1/trimap", data=form, content_type="multipart/form-data",
                       headers=headers or {})


def _read_trimap(response) -> np.ndarray:
    """The PNG trimap of a 200 answer as H x W uint8, checked to be mode L and 0/128/255."""
    assert response.headers["Content-Type"] == "image/png"
    img = Image.open(io.BytesIO(body_of(response)))
    assert img.mode == "L"
    arr = np.asarray(img)
    assert set(np.unique(arr)) <= {0, 128, 255}
    return arr


@pytest.fixture(scope="session")
def post():
    """``post(client, bytes, filename=..., headers=..., **form) -> response`` on /v1/trimap."""
    return _post_trimap


@pytest.fixture(scope="session")
def read_trimap():
    """``read_trimap(response) -> H x W uint8`` (asserts PNG, mode L, 0/128/255)."""
    return _read_trimap
