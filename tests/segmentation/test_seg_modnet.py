"""The MODNet backend with the real model (models/modnet.onnx) on the sample portrait."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation_api.backends.base import MIN_AREA_FRACTION, score_of
from segmentation_api.backends.modnet import MODNET, MODNetBackend, input_size
from service_common.weights import ModelError

#: Regions of the 512 x 512 sample portrait: (rows, columns).
FLAG = (slice(0, 200), slice(0, 80))  # the US flag, left of her shoulder
FLAG_EDGE = (slice(0, 512), slice(0, 12))  # the flag's strip along the left edge
SHUTTLE = (slice(0, 250), slice(360, 470))  # the shuttle model, top right
FACE = (slice(100, 150), slice(190, 250))
HELMET = (slice(380, 480), slice(320, 460))  # the helmet she holds, bottom right


@pytest.fixture(scope="module")
def modnet(models_dir) -> MODNetBackend:
    return MODNetBackend(MODNET.path(models_dir), threads=1)


@pytest.mark.parametrize(("shape", "expected"), [
    ((512, 512), (512, 512)),
    ((480, 640), (480, 640)),  # straddles the reference size: kept (as the reference does)
    ((500, 700), (480, 672)),  # kept, rounded down to multiples of 32
    ((1080, 1920), (512, 896)),  # larger on both sides: shorter side to 512 (910 -> 896)
    ((100, 50), (1024, 512)),  # smaller on both sides: enlarged to the working size
    ((200, 20000), (32, 2048)),  # a panorama: the long side is capped
])
def test_input_size_rule(shape, expected):
    assert input_size(*shape) == expected
    assert all(side % 32 == 0 for side in input_size(*shape))


@pytest.mark.parametrize("mirrored", [False, True])
def test_portrait_person_without_flag_or_shuttle(modnet, sample_photo, mirrored):
    """The flag and the shuttle are background, her face and the helmet she holds are the
    subject, in the photo and in its mirror image (U^2-Net-p lost the helmet there)."""
    photo = np.ascontiguousarray(sample_photo[:, ::-1]) if mirrored else sample_photo
    [person] = modnet.predict(photo, ["person"], 0.6)
    mask = person.mask[:, ::-1] if mirrored else person.mask
    assert person.label == "person" and 0.95 < person.score <= 1.0
    assert person.mask.shape == (512, 512) and person.mask.dtype == np.float32
    assert mask[FLAG].max() < 0.05 and mask[SHUTTLE].max() < 0.05
    assert mask[FLAG_EDGE].max() < 0.1
    assert mask[FACE].min() > 0.95 and mask[HELMET].min() > 0.95
    left, top, width, _ = person.box
    if mirrored:
        left = 512 - (left + width)
    assert left >= 12  # the subject box leaves the flag's edge strip out


def test_nothing_to_find_is_no_subject(modnet, grey_photo):
    assert modnet.predict(grey_photo, ["person"], 0.6) == []
    assert modnet.predict(np.zeros((64, 64, 3), np.uint8), ["person"], 0.0) == []


def test_score_ignores_tiny_regions():
    alpha = np.zeros((100, 100), np.float32)
    alpha[:2, :2] = 1.0  # 0.04 % of the image
    assert score_of(alpha) == 0.0
    side = int(np.ceil((MIN_AREA_FRACTION * 10_000) ** 0.5)) + 1
    alpha[:side, :side] = 0.9
    assert score_of(alpha) == pytest.approx(0.9)


def test_missing_or_corrupt_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError) as info:
        MODNetBackend(MODNET.path(tmp_path))
    assert MODNET.filename in str(info.value) and "make weights WEIGHTS=modnet" in str(info.value)
    MODNET.path(tmp_path).write_bytes(b"not onnx")
    with pytest.raises(ModelError) as info:
        MODNetBackend(MODNET.path(tmp_path))
    assert "not a usable ONNX model" in str(info.value)
