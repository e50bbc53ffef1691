"""The offline closed-form matting backend on a synthetic photo with a known matte."""

from __future__ import annotations

import numpy as np
import pytest

from matting_api.backends import cf_solver, load_matting_backend
from matting_api.backends.closed_form import ClosedFormBackend
from render import backgrounds
from render import composite as compositing
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
    red = backgrounds.solid_background((255, 0, 0, 255), scene.size, scene.size)
    with_f = compositing.composite(fg, alpha, red).astype(int)
    with_image = compositing.composite(scene.rgb.astype(np.float32) / 255, alpha, red).astype(int)
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


def test_solver_without_a_prior_is_pymatting_closed_form() -> None:
    from pymatting import estimate_alpha_cf

    rgb, trimap, _ = _holed_disc()
    image = rgb.astype(np.float64) / 255.0
    ours = cf_solver.solve_alpha(image, trimap, rtol=1e-7)
    reference = estimate_alpha_cf(image, trimap / 255.0)
    assert np.abs(ours - reference).max() < 1e-4


def test_band_laplacian_rows_equal_pymatting_laplacian() -> None:
    from pymatting import cf_laplacian

    rng = np.random.default_rng(3)
    image = rng.random((30, 40, 3))
    unknown = np.zeros((30, 40), bool)
    unknown[0:12, 5:20] = True  # touching the border
    unknown[20:26, 30:38] = True
    l_uu, l_uk, unknown_idx, known_idx = cf_solver.matting_laplacian(image, unknown)
    assert abs(l_uu - l_uu.T).max() < 1e-12
    assert np.array_equal(unknown_idx, np.flatnonzero(unknown))
    assert not unknown.ravel()[known_idx].any()
    reference = cf_laplacian(image, 1e-7, 1, is_known=~unknown).tocsr()[unknown.ravel()]
    rows = np.zeros((len(unknown_idx), unknown.size))
    rows[:, unknown_idx] = l_uu.toarray()
    rows[:, known_idx] = l_uk.toarray()
    assert np.abs(rows - reference.toarray()).max() < 1e-10


def test_prior_data_term_pulls_alpha_towards_the_prior() -> None:
    """On a flat grey image the Laplacian only asks for smoothness: with the default (weak)
    data term alpha is a smooth ramp across the band, centred where the prior crosses 0.5;
    with a strong one it is the prior."""
    rgb = np.full((40, 40, 3), 128, np.uint8)
    prior = np.zeros((40, 40), np.float32)
    prior[:, 20:] = 1.0
    prior[:, 18:22] = (0.02, 0.3, 0.7, 0.98)
    trimap = np.where(prior >= 0.5, 255, 0).astype(np.uint8)
    trimap[:, 16:24] = 128
    _, weak = ClosedFormBackend().matte(rgb, trimap, prior)
    assert (np.diff(weak[:, 15:25], axis=1) > 0).all()  # a ramp
    assert abs(weak[:, 19:21].mean() - 0.5) < 0.02
    _, strong = ClosedFormBackend(prior_weight=1e3).matte(rgb, trimap, prior)
    assert np.abs(strong[:, 16:24] - prior[:, 16:24]).max() < 0.01
    assert (strong[:, :16] == 0).all() and (strong[:, 24:] == 1).all()


def test_refinement_recovers_a_soft_edge_from_a_blurred_shifted_prior(closed_form, scene) -> None:
    """The scene's true matte, moved 2 px and blurred as a low-resolution model would give
    it: the refinement in the band it implies is closer to the truth than the prior."""
    import cv2

    from trimap.from_prior import prior_trimap

    shifted = np.roll(scene.alpha, 2, axis=1)
    prior = cv2.GaussianBlur(cv2.resize(cv2.resize(shifted, (16, 16), interpolation=cv2.INTER_AREA),
                                        (64, 64), interpolation=cv2.INTER_LINEAR), (0, 0), 1.0)
    trimap = prior_trimap(prior)
    fg, alpha = closed_form.matte(scene.rgb, trimap, prior)
    _check_contract(scene.rgb, trimap, fg, alpha)
    prior_error = np.abs(prior - scene.alpha).sum()
    refined_error = np.abs(alpha - scene.alpha).sum()
    assert refined_error < 0.5 * prior_error, (refined_error, prior_error)


def test_prior_warm_start_reaches_the_same_solution() -> None:
    """Started from the prior (and with the zero fill-in incomplete Cholesky factor) the conjugate
    gradients stop at the solution a tight tolerance gives."""
    rgb, trimap, _ = _holed_disc()
    image = rgb.astype(np.float64) / 255.0
    rng = np.random.default_rng(5)
    prior = np.clip((trimap / 255.0) + rng.normal(0.0, 0.1, trimap.shape), 0.0, 1.0)
    default = cf_solver.solve_alpha(image, trimap, prior)
    tight = cf_solver.solve_alpha(image, trimap, prior, rtol=1e-9)
    assert np.abs(default - tight).mean() < 2e-3
    assert np.abs(default - tight).max() < 0.1


def test_best_foreground_at_half_resolution() -> None:
    """The best estimate (multi-level at half resolution, corrected at full): the photo where
    alpha is 1, the subject's colour in the soft edge (not the old background's), and close to
    pymatting's full-resolution estimate on a smooth scene."""
    from pymatting import estimate_foreground_ml

    from matting_api.backends.foreground import HALF_RESOLUTION_FROM, estimate_foreground_best

    size = 2 * HALF_RESOLUTION_FROM
    yy, xx = np.mgrid[0:size, 0:size] / size
    subject = np.stack([0.9 - 0.2 * xx, 0.3 + 0.2 * yy, np.full_like(xx, 0.2)], axis=-1)
    old = np.stack([np.full_like(xx, 0.1), np.full_like(xx, 0.8), 0.9 - 0.3 * yy], axis=-1)
    alpha = np.clip((0.65 - xx) * 8, 0.0, 1.0)  # opaque left, a soft edge, transparent right
    image = alpha[..., None] * subject + (1 - alpha[..., None]) * old
    fg = estimate_foreground_best(image, alpha)
    assert fg.shape == image.shape and fg.dtype == np.float32
    assert np.array_equal(fg[alpha == 1], image[alpha == 1].astype(np.float32))
    soft = (alpha > 0.2) & (alpha < 0.8)
    assert soft.sum() > 100
    assert np.abs(fg[soft] - subject[soft]).mean() < 0.05
    assert np.abs(image[soft] - subject[soft]).mean() > 0.2  # the photo alone is far off
    full = estimate_foreground_ml(image, alpha)
    assert np.abs(fg[soft] - full[soft]).mean() < 0.03
    small = estimate_foreground_best(image[:32, :32], alpha[:32, :32])  # too small: full resolution
    assert np.allclose(small, np.clip(estimate_foreground_ml(image[:32, :32], alpha[:32, :32]), 0, 1),
                       atol=1e-6)


def test_a_prior_is_refined_at_full_resolution_up_to_larger_caps() -> None:
    """A wide band (hair that flies) above ``max_unknown`` is still refined at full resolution
    with a prior, up to ``PRIOR_CAP_FACTOR`` times the cap; a user's trimap is downscaled."""
    from matting_api.backends.closed_form import PRIOR_CAP_FACTOR

    backend = ClosedFormBackend(max_side=100, max_unknown=1000)
    trimap = np.zeros((120, 120), np.uint8)
    trimap[:, 40:55] = 128  # 1800 unknown pixels, a 120 px box
    assert backend._scale(trimap) < 1.0
    assert backend._scale(trimap, refine=True) == 1.0
    wider = np.full((120, 120), 128, np.uint8)  # 14 400 > PRIOR_CAP_FACTOR * 1000
    assert wider.size > PRIOR_CAP_FACTOR * 1000
    assert backend._scale(wider, refine=True) == pytest.approx((PRIOR_CAP_FACTOR * 1000 / wider.size) ** 0.5)


def test_stencil_solve_with_a_prior_equals_pymatting_conjugate_gradients(monkeypatch) -> None:
    """The compiled zero fill-in path and pymatting's thresholded factor solve the same system."""
    rgb, trimap, _ = _holed_disc()
    image = rgb.astype(np.float64) / 255.0
    prior = np.clip(trimap / 255.0 + 0.2 * np.sin(np.arange(64) / 5.0)[None, :], 0.0, 1.0)
    ours = cf_solver.solve_alpha(image, trimap, prior, rtol=1e-8)
    monkeypatch.setattr(cf_solver, "_solve_with_prior", lambda *args: None)  # the fallback
    reference = cf_solver.solve_alpha(image, trimap, prior, rtol=1e-8)
    assert np.abs(ours - reference).max() < 1e-4


@pytest.mark.parametrize("blocks", [2, 3])
def test_block_preconditioner_solves_the_same_system_alike_on_one_thread_or_many(
        monkeypatch, blocks: int) -> None:
    """A large band's factor in blocks of rows (the couplings between them dropped): the
    conjugate gradients still reach the system's solution, and the parallel kernels (a
    request alone) give the serial ones' alpha (requests side by side) to the last bit."""
    import numba

    rgb, trimap, _ = _holed_disc()
    image = rgb.astype(np.float64) / 255.0
    prior = np.clip(trimap / 255.0 + 0.2 * np.sin(np.arange(64) / 5.0)[None, :], 0.0, 1.0)
    one_block = cf_solver.solve_alpha(image, trimap, prior, rtol=1e-8)
    monkeypatch.setattr(cf_solver, "BLOCKS_FROM_UNKNOWNS", 1)
    monkeypatch.setattr(cf_solver, "SOLVE_BLOCKS", blocks)
    serial = cf_solver.solve_alpha(image, trimap, prior, rtol=1e-8)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    parallel = cf_solver.solve_alpha(image, trimap, prior, rtol=1e-8, parallel=True)
    assert np.array_equal(serial, parallel)
    assert np.abs(serial - one_block).max() < 1e-4
    assert not np.array_equal(serial, one_block)  # the blocks were used


@pytest.mark.parametrize("channels", [0, 3])
def test_masked_copy_writes_into_a_crop_of_the_frame(channels: int) -> None:
    """The refined pixels go into the crop of the whole frame in place, as numpy's boolean
    assignment would put them; a view OpenCV cannot wrap (every other column) too."""
    from matting_api.backends.closed_form import _copy_where

    rng = np.random.default_rng(0)
    extra = (channels,) if channels else ()
    frame = rng.random((60, 90, *extra)).astype(np.float32)
    src = rng.random((50, 40, *extra)).astype(np.float32)
    where = rng.random((50, 40)) < 0.3
    for crop in (np.s_[5:55, 7:47], np.s_[5:55, 0:80:2]):
        want, got = frame.copy(), frame.copy()
        want[crop][where] = src[where]
        _copy_where(got[crop], src, where)
        assert np.array_equal(got, want)
