"""The offline closed-form matting backend on a synthetic photo with a known matte."""

from __future__ import annotations

import numpy as np
import pytest

from matting_api import compositing as comp
from matting_api.backends import load_matting_backend, nonlocal_cf
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


def _holed_disc() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A white disc with a hole showing the green background, and a trimap whose unknown
    region around the hole touches sure foreground only (``rgb``, ``trimap``, ``hole``)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:64, :64]
    dist = np.hypot(yy - 32, xx - 32)
    subject = (dist <= 24) & (dist > 5)
    rgb = np.where(subject[..., None], (235, 235, 230), (40, 170, 60)).astype(np.float64)
    rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    trimap = np.zeros((64, 64), np.uint8)
    trimap[dist <= 27] = 128  # the outer band
    trimap[(dist <= 21) & (dist > 9)] = 255
    return rgb, trimap, dist <= 4


def test_nonlocal_term_finds_a_hole_that_local_diffusion_fills() -> None:
    """Plain closed-form matting sees only sure foreground around the hole and fills it
    (alpha 1 costs nothing there); the non-local term ties the hole's green pixels to the
    green background next to the outer band."""
    rgb, trimap, hole = _holed_disc()
    _, plain = ClosedFormBackend(nonlocal_weight=0.0).matte(rgb, trimap)
    _, nonlocal_ = ClosedFormBackend().matte(rgb, trimap)
    assert plain[hole].mean() > 0.9
    assert nonlocal_[hole].mean() < 0.1
    ring = (trimap == 128) & ~hole & (np.hypot(*np.mgrid[-32:32, -32:32]) > 20)
    subject = ring & (rgb[..., 0] > 150)
    assert nonlocal_[subject].mean() > 0.9 and nonlocal_[ring & ~subject].mean() < 0.1


def test_solver_without_the_nonlocal_term_is_pymatting_closed_form() -> None:
    from pymatting import estimate_alpha_cf

    rgb, trimap, _ = _holed_disc()
    image = rgb.astype(np.float64) / 255.0
    ours = nonlocal_cf.solve_alpha(image, trimap, nonlocal_weight=0.0, rtol=1e-7)
    reference = estimate_alpha_cf(image, trimap / 255.0)
    assert np.abs(ours - reference).max() < 1e-4


def test_knn_laplacian_is_a_graph_laplacian_over_the_band() -> None:
    rgb, trimap, _ = _holed_disc()
    unknown = trimap == 128
    lap = nonlocal_cf.knn_laplacian_near_band(rgb / 255.0, unknown, neighbors=5, ring=2)
    assert abs(lap - lap.T).max() == 0
    assert np.allclose(np.asarray(lap.sum(axis=1)).ravel(), 0.0)
    assert (lap.diagonal()[unknown.ravel()] >= 5).all()  # each node keeps its 5 neighbours
    far = ~(np.hypot(*np.mgrid[-32:32, -32:32]) <= 30)  # > 2 px from the unknown pixels
    assert lap[far.ravel()].nnz == 0
