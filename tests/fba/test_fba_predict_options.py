"""``predict`` options (working-resolution cap, crop to the unknown band) and input checks.

FBA has global context (GroupNorm statistics over the whole map at every layer, and the
pyramid pooling), so a crop never reproduces the full run exactly unless it *is* the full
image; what can be asserted honestly is: the output size, exact known regions, that a crop
covering everything is bit-identical to the default path, and that the crop result is the
model's prediction on the crop, pasted at the right place. The accuracy cost is measured by
bench/fba_speed.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from matting_api.backends.fba.model import FBAMatting
from matting_api.backends.fba.predict import capped_size, predict, unknown_box


def make_scene(
    height: int, width: int, cy: float, cx: float, radius: float, band: float
) -> tuple[np.ndarray, np.ndarray]:
    """A disc over a smooth background: float64 RGB image and H×W×2 trimap."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    dist = np.hypot(y - cy, x - cx)
    alpha = np.clip((radius - dist) / (2 * band) + 0.5, 0, 1)[..., None]
    fg = np.stack([0.9 - 0.002 * y, 0.5 + 0.2 * np.sin(x / 9), 0.2 + 0 * x], -1)
    bg = np.stack([0.1 + 0.004 * x, 0.3 + 0 * y, 0.8 - 0.003 * y], -1)
    image = np.clip(alpha * fg + (1 - alpha) * bg, 0, 1)
    trimap = np.zeros((height, width, 2))
    trimap[dist > radius + band, 0] = 1
    trimap[dist < radius - band, 1] = 1
    return image, trimap


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    """100×132 (not multiples of 8) with the object near the top-left corner."""
    return make_scene(100, 132, cy=30, cx=36, radius=18, band=4)


@pytest.fixture(scope="module")
def full_result(
    fba_model: FBAMatting, scene: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return predict(fba_model, *scene)


@pytest.fixture
def input_shapes(fba_model: FBAMatting) -> Iterator[list[tuple[int, ...]]]:
    """Records the ``image`` shape of every forward call of the shared model."""
    shapes: list[tuple[int, ...]] = []
    handle = fba_model.register_forward_pre_hook(lambda _m, args: shapes.append(args[0].shape))
    try:
        yield shapes
    finally:
        handle.remove()


def assert_valid_output(
    result: tuple[np.ndarray, np.ndarray, np.ndarray], image: np.ndarray, trimap: np.ndarray
) -> None:
    fg, bg, alpha = result
    h, w = image.shape[:2]
    assert fg.shape == (h, w, 3) and bg.shape == (h, w, 3) and alpha.shape == (h, w)
    assert fg.dtype == bg.dtype == alpha.dtype == np.float32
    for arr in result:
        assert np.all(arr >= 0) and np.all(arr <= 1)
    assert np.all(alpha[trimap[:, :, 0] == 1] == 0)
    assert np.all(alpha[trimap[:, :, 1] == 1] == 1)
    image32 = image.astype(np.float32)
    np.testing.assert_array_equal(fg[alpha == 1], image32[alpha == 1])
    np.testing.assert_array_equal(bg[alpha == 0], image32[alpha == 0])


def test_default_output_is_valid(full_result, scene) -> None:
    assert_valid_output(full_result, *scene)


def test_fg_wins_where_both_trimap_channels_are_set(fba_model: FBAMatting, scene) -> None:
    image, trimap = scene
    trimap = trimap.copy()
    trimap[:8, :8] = 1
    _, _, alpha = predict(fba_model, image, trimap)
    assert np.all(alpha[:8, :8] == 1)


@pytest.mark.parametrize("max_side", [64, 100])
def test_max_side(fba_model: FBAMatting, scene, input_shapes, max_side: int) -> None:
    result = predict(fba_model, *scene, max_side=max_side)
    assert_valid_output(result, *scene)
    (shape,) = input_shapes
    assert max(shape[-2:]) <= max_side and shape[-2] % 8 == 0 and shape[-1] % 8 == 0


def test_max_side_not_reached_is_the_default_path(fba_model, scene, full_result) -> None:
    result = predict(fba_model, *scene, max_side=132)
    for got, want in zip(result, full_result, strict=True):
        np.testing.assert_array_equal(got, want)


def test_capped_size() -> None:
    assert capped_size(1000, 2000, 512) == (256, 512)
    assert capped_size(2000, 1000, 500) == (496, 248)
    assert capped_size(10, 4000, 64) == (8, 64)
    for h, w in [(333, 777), (1080, 1920), (4000, 3000)]:
        hs, ws = capped_size(h, w, 640)
        assert max(hs, ws) <= 640 and hs % 8 == 0 and ws % 8 == 0


def test_unknown_box(scene) -> None:
    _, trimap = scene
    unknown = (trimap[:, :, 0] != 1) & (trimap[:, :, 1] != 1)
    rows, cols = np.nonzero(unknown)
    box = unknown_box(trimap, margin=10)
    assert box is not None
    assert box.top % 8 == 0 and box.left % 8 == 0
    assert box.top <= max(0, rows.min() - 10) and box.left <= max(0, cols.min() - 10)
    assert box.bottom >= min(100, rows.max() + 1 + 10)
    assert box.right >= min(132, cols.max() + 1 + 10)
    assert box.bottom % 8 == 0 or box.bottom == 100
    assert box.right % 8 == 0 or box.right == 132
    assert unknown_box(np.stack([np.ones((4, 4)), np.zeros((4, 4))], -1), 5) is None


def test_crop_to_unknown(fba_model: FBAMatting, scene, input_shapes) -> None:
    image, trimap = scene
    margin = 16
    result = predict(fba_model, image, trimap, crop_to_unknown=True, crop_margin=margin)
    assert_valid_output(result, image, trimap)
    box = unknown_box(trimap, margin)
    assert box is not None
    # The network saw only the (8-aligned) crop, and the crop result is pasted in place.
    assert input_shapes == [(1, 3, box.bottom - box.top, box.right - box.left)]
    rows, cols = box.slices
    fg_c, bg_c, alpha_c = predict(fba_model, image[rows, cols], trimap[rows, cols])
    # (CPU kernels are not bit-exact run to run: ~1e-7, see the reference spec.)
    np.testing.assert_allclose(result[2][rows, cols], alpha_c, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result[0][rows, cols], fg_c, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result[1][rows, cols], bg_c, rtol=0, atol=1e-6)
    # Outside the crop everything is known: alpha from the trimap, fg/bg = image.
    outside = np.ones(trimap.shape[:2], bool)
    outside[rows, cols] = False
    np.testing.assert_array_equal(result[2][outside], trimap[:, :, 1][outside])


def test_crop_covering_the_image_equals_the_default(fba_model, scene, full_result) -> None:
    result = predict(fba_model, *scene, crop_to_unknown=True, crop_margin=200)
    for got, want in zip(result, full_result, strict=True):
        np.testing.assert_array_equal(got, want)


def test_crop_without_unknown_pixels_skips_the_network(fba_model: FBAMatting, scene, input_shapes) -> None:
    image, _ = scene
    trimap = np.zeros(image.shape[:2] + (2,))
    trimap[:, :50, 1] = 1
    trimap[:, 50:, 0] = 1
    fg, bg, alpha = predict(fba_model, image, trimap, crop_to_unknown=True)
    assert input_shapes == []
    np.testing.assert_array_equal(alpha, trimap[:, :, 1].astype(np.float32))
    np.testing.assert_array_equal(fg, image.astype(np.float32))
    np.testing.assert_array_equal(bg, image.astype(np.float32))


def test_crop_and_max_side_together(fba_model: FBAMatting, scene, input_shapes) -> None:
    result = predict(fba_model, *scene, crop_to_unknown=True, crop_margin=16, max_side=32)
    assert_valid_output(result, *scene)
    (shape,) = input_shapes
    assert max(shape[-2:]) <= 32


def test_float32_inputs_are_accepted(fba_model: FBAMatting, scene, full_result) -> None:
    image, trimap = scene
    result = predict(fba_model, image.astype(np.float32), trimap.astype(np.float32))
    assert_valid_output(result, image.astype(np.float32), trimap)
    np.testing.assert_allclose(result[2], full_result[2], atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image": np.zeros((8, 8, 3), np.uint8)}, "float"),
        ({"image": np.zeros((8, 8))}, "H×W×3"),
        ({"trimap": np.zeros((8, 8))}, "H×W×2"),
        ({"trimap": np.zeros((9, 8, 2))}, "differ"),
        ({"max_side": 4}, "max_side"),
        ({"crop_margin": -1}, "crop_margin"),
        ({"fp16": True}, "CUDA"),
    ],
)
def test_invalid_arguments(fba_model: FBAMatting, kwargs: dict, match: str) -> None:
    args = {"image": np.zeros((8, 8, 3)), "trimap": np.zeros((8, 8, 2))} | kwargs
    image, trimap = args.pop("image"), args.pop("trimap")
    with pytest.raises(ValueError, match=match):
        predict(fba_model, image, trimap, **args)


def test_predict_runs_without_grad(fba_model: FBAMatting, scene, input_shapes) -> None:
    seen: list[bool] = []
    handle = fba_model.register_forward_hook(lambda _m, _a, out: seen.append(torch.is_inference(out)))
    try:
        predict(fba_model, *scene)
    finally:
        handle.remove()
    assert seen == [True]
