"""The refinement benchmark's degradations of a true matte into a prior (bench/refinement.py)."""

from __future__ import annotations

import numpy as np

from bench import refinement


def _hairy_matte() -> np.ndarray:
    """A solid disc with thin semi-transparent strands flying out of it (``96 x 96`` float32)."""
    yy, xx = np.mgrid[0:96, 0:96]
    alpha = (np.hypot(yy - 48, xx - 30) < 16).astype(np.float32)
    for row in range(30, 70, 6):
        alpha[row, 46:90] = np.maximum(alpha[row, 46:90], 0.6)  # strands, 1 px thick
    return alpha


def test_flyaway_is_a_wide_faint_haze_over_the_lowres_prior() -> None:
    alpha = _hairy_matte()
    lowres = refinement.degrade(alpha, 2.0, seed=1)
    flyaway = refinement.degrade_flyaway(alpha, 2.0, seed=1)
    assert flyaway.shape == alpha.shape and flyaway.dtype == np.float32
    assert np.array_equal(flyaway, refinement.degrade_flyaway(alpha, 2.0, seed=1))  # deterministic
    assert (flyaway >= lowres - 1e-6).all()
    strands = np.zeros_like(alpha, bool)
    strands[28:72, 60:88] = True  # where strands fly, away from the disc
    assert lowres[strands].max() < 0.05  # the opening dropped them
    haze = flyaway[strands]
    assert (haze > 0.02).mean() > 0.9  # wide: between the strands too
    assert haze.max() < 0.5  # thinned: no strand keeps its opacity (0.6)
    assert haze.mean() > alpha[strands].mean()  # widened: more coverage than the strands have


def test_labels_name_their_degradation() -> None:
    assert refinement.degradation_of("am_GT01/lab/x2") == "lowres"
    assert refinement.degradation_of("am_GT01/comp/x4/flyaway") == "flyaway"
