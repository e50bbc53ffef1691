"""The offline closed-form matting backend on a synthetic photo with a known matte."""

from __future__ import annotations

import numpy as np
import pytest

from matting_api import compositing as comp
from matting_api.backends import load_matting_backend
from matting_api.backends.closed_form import ClosedFormBackend
from service_common.config import Settings


def _check_contract(rgb, trimap, fg, alpha):
    h, w = trimap.shape
    assert fg.shape == (h, w, 3) and fg.dtype == np.float32
    assert alpha.shape == (h, w) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert fg.min() >= 0.0 and fg.max() <= 1.0
    assert (alpha[trimap == 0] == 0.0).all()
    assert (alpha[trimap == 255] == 1.0).all()
    assert np.array_equal(fg[trimap == 255], rgb[trimap == 255].astype(np.float32) / 255.0)


def test_matte_is_accurate_and_keeps_known_regions(closed_form, scene):
    fg, alpha = closed_form.matte(scene.rgb, scene.trimap)
    _check_contract(scene.rgb, scene.trimap, fg, alpha)
    band = scene.trimap == 128
    error = np.abs(alpha - scene.alpha)[band]
    assert error.mean() < 0.01, error.mean()


def test_predicted_foreground_removes_the_green_fringe(closed_form, scene):
    """The subject is white on green/blue; on a red background its edge must not be green."""
    fg, alpha = closed_form.matte(scene.rgb, scene.trimap)
    red = comp.solid_background((255, 0, 0, 255), scene.size, scene.size)
    with_f = comp.composite(fg, alpha, red).astype(int)
    with_image = comp.composite(scene.rgb.astype(np.float32) / 255, alpha, red).astype(int)
    edge = (alpha > 0.2) & (alpha < 0.8)
    assert edge.sum() > 50
    excess_f = (with_f[..., 1] - with_f[..., 2])[edge].mean()  # green over blue
    excess_image = (with_image[..., 1] - with_image[..., 2])[edge].mean()
    assert excess_image > 20  # the original pixels carry the old green into the new picture
    assert excess_f < 3  # the predicted F does not


def test_band_restriction_gives_the_same_matte_as_the_whole_image(scene):
    wide = np.zeros((64, 160, 3), np.uint8)
    wide[:] = scene.rgb[:, :1]  # extend the left background column
    wide[:, 48:112] = scene.rgb
    tri = np.zeros((64, 160), np.uint8)
    tri[:, 48:112] = scene.trimap
    _, restricted = ClosedFormBackend(restrict=True).matte(wide, tri)
    _, whole = ClosedFormBackend(restrict=False).matte(wide, tri)
    assert np.abs(restricted - whole).max() < 1e-3


def test_downscaled_solve_keeps_known_regions_exact(scene):
    backend = ClosedFormBackend(max_side=40)  # forces the working-size path
    fg, alpha = backend.matte(scene.rgb, scene.trimap)
    _check_contract(scene.rgb, scene.trimap, fg, alpha)
    assert np.abs(alpha - scene.alpha)[scene.trimap == 128].mean() < 0.04


def test_trimaps_without_unknown_or_one_sided(closed_form, scene):
    binary = np.where(scene.trimap == 255, 255, 0).astype(np.uint8)
    fg, alpha = closed_form.matte(scene.rgb, binary)
    assert np.array_equal(alpha, (binary == 255).astype(np.float32))
    no_bg = np.where(scene.trimap == 0, 128, scene.trimap).astype(np.uint8)
    _, alpha = closed_form.matte(scene.rgb, no_bg)
    assert (alpha == 1.0).all()
    no_fg = np.where(scene.trimap == 255, 128, scene.trimap).astype(np.uint8)
    _, alpha = closed_form.matte(scene.rgb, no_fg)
    assert (alpha == 0.0).all()


def test_registry_falls_back_to_closed_form_loudly(tmp_path, caplog):
    caplog.set_level("WARNING")
    backend = load_matting_backend(Settings(models_dir=tmp_path, matting_backend="auto"))
    assert backend.name == "closed_form" and backend.device == "cpu"
    assert backend.info()["warmed_up"] is True
    assert any("FBA.pth" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


@pytest.mark.parametrize("shape", [(48, 2), (2, 48), (1, 30), (3, 3)])
def test_strips_thinner_than_the_laplacian_window_are_solved(shape) -> None:
    backend = ClosedFormBackend.from_settings(Settings())
    rgb = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    line = np.full(max(shape), 128, np.uint8)  # background, unknown, foreground thirds
    line[: max(shape) // 3] = 0
    line[-(max(shape) // 3):] = 255
    along_rows = shape[0] >= shape[1]
    trimap = np.ascontiguousarray(np.broadcast_to(line[:, None] if along_rows else line[None, :], shape))
    fg, alpha = backend.matte(rgb, trimap)
    assert alpha.shape == shape and fg.shape == (*shape, 3)
    assert alpha[trimap == 0].max(initial=0) == 0 and alpha[trimap == 255].min(initial=1) == 1
    assert np.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1
