"""Pre/post-processing helpers (pure numpy) and package hygiene."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from matting_api.backends.fba.transforms import (
    network_size,
    normalise_image,
    resize_back,
    scale_input,
    trimap_transform,
    wrap_to_uint8,
)


def test_uint8_wrap_quirk() -> None:
    values = np.array([-5.1, -0.3, 256.7, 300.0, 0.0, 254.9, 255.0, -1.0])
    assert wrap_to_uint8(values).tolist() == [251, 0, 0, 44, 0, 254, 255, 255]


def test_overshooting_trimap_values_follow_the_quirk() -> None:
    """t = 1.02 → m = 251 ("not FG"), t = -0.004 → m = 0 ("is FG")."""
    trimap = np.zeros((8, 8, 2))
    trimap[:, :, 1] = 1.02
    trimap[0, 0, 1] = -0.004
    channels = trimap_transform(trimap)
    assert channels[3, 0, 0] == 1  # distance 0 to "FG": the single wrapped pixel
    assert channels[3, 0, 1] == pytest.approx(np.exp(-1 / 81.92), abs=1e-7)


def test_absent_class_gives_zero_channels() -> None:
    trimap = np.zeros((16, 24, 2))
    trimap[:, :12, 1] = 1  # FG on the left, no BG anywhere
    channels = trimap_transform(trimap)
    assert channels.shape == (6, 16, 24) and channels.dtype == np.float32
    assert np.all(channels[:3] == 0)
    assert np.all(channels[3:, :, :12] == 1)
    expected = np.exp(-(np.arange(1, 13, dtype=np.float32) ** 2) / np.float32(81.92))
    np.testing.assert_allclose(channels[3, 5, 12:], expected, rtol=1e-6)


def test_distances_agree_with_opencv() -> None:
    """The official code uses OpenCV's precise EDT; ours is exact (OpenCV has ~1e-4 noise)."""
    rng = np.random.default_rng(0)
    trimap = np.zeros((64, 96, 2))
    trimap[:, :, 1] = rng.random((64, 96)) > 0.995
    ours = trimap_transform(trimap)
    mask = ((1 - trimap[:, :, 1]) * 255).astype(np.uint8)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    np.testing.assert_allclose(ours[4], np.exp(-(dist**2) / 1310.72), rtol=0, atol=1e-6)


def test_network_size_rounds_up_to_multiples_of_8() -> None:
    assert network_size(64, 80) == (64, 80)
    assert network_size(61, 83) == (64, 88)
    assert network_size(1, 9) == (8, 16)


def test_scale_input_is_an_exact_copy_on_the_grid() -> None:
    image = np.random.default_rng(1).random((16, 24, 3))
    out = scale_input(image)
    assert out is not image and np.array_equal(out, image) and out.dtype == np.float64
    stretched = scale_input(image[:13, :21])
    assert stretched.shape == (16, 24, 3)


def test_resize_back_is_bilinear() -> None:
    out = np.random.default_rng(2).random((16, 24, 7)).astype(np.float32)
    back = resize_back(out, 13, 21)
    expected = cv2.resize(out, (21, 13), interpolation=cv2.INTER_LINEAR)
    assert back.shape == (13, 21, 7) and np.array_equal(back, expected)
    assert np.array_equal(resize_back(out, 16, 24), out)


def test_normalise_image() -> None:
    image = np.full((2, 2, 3), 0.5)
    out = normalise_image(image)
    assert out.dtype == np.float32
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    np.testing.assert_array_equal(out[0, 0], (np.float32(0.5) - mean) / std)


def test_package_imports_no_flask_and_prints_nothing() -> None:
    """FBA's package (network, weights entry, builder, inference, backend) imports no flask
    itself (the parent package may) and does not print."""
    import ast
    from pathlib import Path

    import matting_api.backends.fba as fba

    sources = list(Path(fba.__file__).parent.glob("*.py"))
    for source in sources:
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "flask" for n in names), source
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", source
    code = ("from matting_api.backends.fba.build import build_model; "
            "from matting_api.backends.fba.predict import predict; "
            "from matting_api.backends.fba.model import FBAMatting")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
