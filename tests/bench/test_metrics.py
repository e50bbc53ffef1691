"""Matting metrics against values computed by hand on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest

from bench import metrics


def test_sad_and_mse() -> None:
    pred = np.array([[0.0, 1.0], [0.5, 0.25]])
    gt = np.zeros((2, 2))
    assert metrics.sad(pred, gt) == pytest.approx(1.75 / 1000)
    region = np.array([[False, True], [True, False]])
    assert metrics.sad(pred, gt, region) == pytest.approx(1.5 / 1000)
    assert metrics.mse(pred, gt, region) == pytest.approx((1.0 + 0.25) / 2 * 1000)
    assert metrics.mse(pred, gt, np.zeros((2, 2), bool)) == 0.0


def test_gaussian_derivative_filter_shape_and_norm() -> None:
    hx, hy = metrics.gaussian_derivative_filters(1.4)
    # half size ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4
    assert hx.shape == (9, 9)
    assert (hx**2).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(hx[:, ::-1], -hx)  # odd along x
    np.testing.assert_allclose(hy, hx.T)


def test_grad_of_a_ramp() -> None:
    slope = 0.01
    gt = np.tile(np.arange(40) * slope, (40, 1))
    pred = np.zeros_like(gt)
    region = np.zeros_like(gt, dtype=bool)
    region[10:30, 10:30] = True  # far from the border
    # By hand: for f(x) = s x, (f * hx)(x) = s * sum_ij j^2 g(i) g(j) / sigma^2 / norm
    sigma = 1.4
    x = np.arange(-4, 5)
    g = np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    norm = np.sqrt(((np.outer(g, -x * g / sigma**2)) ** 2).sum())
    magnitude = slope * g.sum() * (x**2 * g).sum() / sigma**2 / norm
    assert metrics.grad(pred, gt, region) == pytest.approx(400 * magnitude**2 / 1000)
    assert metrics.grad(gt, gt, region) == 0.0


def test_conn_by_hand() -> None:
    # levels: pixel 0 stays connected up to t=1 -> 1; pixels 1, 2 drop out at t=0.1 -> 0
    # phi_pred = [1, 1, 0], phi_gt = [1, 0, 0] -> error 1
    pred = np.array([[1.0, 0.0, 1.0]])
    gt = np.array([[1.0, 1.0, 1.0]])
    assert metrics.conn(pred, gt) == pytest.approx(1 / 1000)
    assert metrics.conn(gt, gt) == 0.0


def test_iou() -> None:
    pred = np.array([[1.0, 0.6, 0.0, 0.0]])
    gt = np.array([[1.0, 0.0, 0.7, 0.0]])
    assert metrics.iou(pred, gt) == pytest.approx(1 / 3)
    assert metrics.iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError):
        metrics.sad(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        metrics.mse(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((3, 3), bool))


def test_conn_uses_4_connected_components() -> None:
    # pixel (1, 2) touches the top pair only diagonally: with 4-connectivity it is never in
    # the largest component, so its level is 0: phi_pred = 1 - 1 = 0, phi_gt = 1 (d = 0.12
    # < 0.15) -> error 1. (8-connectivity would give level 0.1 and an error of 0.9.)
    pred = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    gt = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.12]])
    assert metrics.conn(pred, gt) == pytest.approx(1 / 1000)


def test_conn_thresholds_are_exact_decimals() -> None:
    # pred 0.6 (8-bit 153) stays in the component at t = 0.6 and drops at 0.7: level 0.6,
    # phi_pred = 1 (d = 0), phi_gt = 1 - 0.4 = 0.6 -> error 0.4. A threshold of
    # 0.6000000000000001 would drop it at 0.6: level 0.5 and an error of 0.5.
    pred = np.array([[1.0, 153 / 255]])
    gt = np.array([[1.0, 1.0]])
    assert metrics.conn(pred, gt) == pytest.approx(0.4 / 1000)
