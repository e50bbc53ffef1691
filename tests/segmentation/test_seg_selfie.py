"""The selfie segmenter (models/selfie_segmentation.tflite, rewritten as ONNX at load time)
against MediaPipe's own mask, and as a backend of the real service."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segmentation_api.backends import plan
from segmentation_api.backends.selfie import SELFIE, SelfieBackend, onnx_bytes, preprocess, sharpen
from segmentation_api.backends.tflite_to_onnx import _same_pads, convert
from service_common.config import Settings
from service_common.weights import ModelError

#: MediaPipe 0.10.14's own mask of samples/astronaut.png (``SelfieSegmentation(model_selection=0)``,
#: the general model), area-resized to 64 x 64, 8 bit. Made once with the mediapipe package,
#: which Backdrop does not depend on.
REFERENCE = Path(__file__).with_name("selfie_astronaut_mediapipe.png")


@pytest.fixture(scope="module")
def selfie_path(models_dir) -> Path:
    path = SELFIE.path(models_dir)
    if not path.is_file():
        pytest.fail(f"{path} is missing: `make models-offline` fetches it")
    return path


@pytest.fixture(scope="module")
def selfie(selfie_path) -> SelfieBackend:
    return SelfieBackend(selfie_path, threads=1)


def test_converted_model_gives_mediapipes_mask(selfie, sample_photo):
    """The rewritten graph (layout, kernels, the custom transposed convolution, the resizes)
    gives MediaPipe's mask: a wrong kernel layout or a missing op would not come close."""
    raw = np.asarray(selfie.model.run(preprocess(sample_photo))[0])[0, ..., 0]
    ours = np.asarray(Image.fromarray(raw).resize((64, 64), Image.Resampling.BOX))
    reference = np.asarray(Image.open(REFERENCE), dtype=np.float32) / 255.0
    diff = np.abs(ours - reference)
    assert diff.mean() < 0.01
    # MediaPipe upsamples its 256 px mask a fraction of a pixel apart from cv2: the edge differs
    assert np.count_nonzero(diff > 0.25) < 0.03 * diff.size


def test_the_answer_is_the_mask_with_a_steeper_ramp(selfie, sample_photo):
    mask = selfie.alpha(sample_photo)
    assert mask.shape == sample_photo.shape[:2] and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    ramp = (1.0 / (1.0 + np.exp(-np.linspace(-8.0, 8.0, 161)))).astype(np.float32)  # a sigmoid edge
    steep = sharpen(ramp)
    assert np.all(np.diff(steep) >= 0) and abs(float(sharpen(np.float32([0.5]))[0]) - 0.5) < 1e-6
    soft = np.count_nonzero((steep > 0.05) & (steep < 0.95))
    assert soft < 0.6 * np.count_nonzero((ramp > 0.05) & (ramp < 0.95))


def test_person_found_and_nothing_in_a_grey_picture(selfie, sample_photo):
    [person] = selfie.predict(sample_photo, ["person"], 0.5)
    assert person.label == "person" and person.score > 0.9
    assert selfie.predict(np.full((240, 320, 3), 128, np.uint8), ["person"], 0.5) == []


def test_input_is_the_frame_stretched_to_256_in_0_1():
    x = preprocess(np.full((480, 640, 3), 255, np.uint8))
    assert x.shape == (1, 256, 256, 3) and x.dtype == np.float32
    assert np.allclose(x, 1.0)


def test_the_graph_keeps_the_files_signature(selfie_path):
    model = convert(selfie_path.read_bytes())
    [graph_input] = model.graph.input
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == [1, 256, 256, 3]
    assert {n.op_type for n in model.graph.node} >= {"Conv", "ConvTranspose", "HardSwish", "Resize"}


def test_not_a_tflite_file_is_a_model_error(tmp_path):
    bad = tmp_path / SELFIE.filename
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(ModelError) as info:
        SelfieBackend(bad, threads=1)
    assert SELFIE.filename in str(info.value) and "make weights" in str(info.value).replace("`", "")


def test_missing_file_names_the_command(tmp_path):
    with pytest.raises(ModelError) as info:
        SelfieBackend(tmp_path / SELFIE.filename, threads=1)
    assert SELFIE.filename in str(info.value)


@pytest.mark.parametrize(("size", "kernel", "stride", "pads"), [
    ([256, 256], [3, 3], [2, 2], [0, 0, 1, 1]),  # TensorFlow puts the odd pixel after
    ([64, 64], [3, 3], [1, 1], [1, 1, 1, 1]),
    ([32, 32], [5, 5], [2, 2], [1, 1, 2, 2]),
    ([16, 16], [1, 1], [1, 1], [0, 0, 0, 0]),
])
def test_same_padding_as_tensorflow(size, kernel, stride, pads):
    assert _same_pads(size, kernel, stride, [1, 1]) == pads


def test_auto_loads_it_when_present(models_dir, tmp_path):
    names, _ = plan(Settings(models_dir=models_dir))
    assert "selfie" in names
    for name in ("u2netp.onnx", "modnet.onnx"):
        (tmp_path / name).symlink_to(models_dir / name)
    names, _ = plan(Settings(models_dir=tmp_path))
    assert "selfie" not in names and "modnet" in names


def test_service_answers_with_it(offline_services, sample_photo_bytes):
    import requests

    seg, _ = offline_services
    answer = requests.post(f"{seg.url}/v1/mask", files={"image": ("a.png", sample_photo_bytes)},
                           data={"backend": "selfie"}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Segmentation-Backend"] == "selfie"
    assert answer.headers["X-Mask-Kind"] == "matte"
    mask = np.asarray(Image.open(io.BytesIO(answer.content)))
    assert mask.shape == (512, 512) and mask.max() > 60000
    ready = requests.get(f"{seg.url}/readyz", timeout=10).json()
    assert "selfie" in ready["backends"]


def test_onnx_bytes_is_a_model(selfie_path):
    import onnx

    model = onnx.load_from_string(onnx_bytes(selfie_path))
    onnx.checker.check_model(model)
