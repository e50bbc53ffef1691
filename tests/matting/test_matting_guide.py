"""The pipeline's guide: which trimap rule a segmentation answer gets (the rules themselves
are tested in ``tests/trimap``)."""

from __future__ import annotations

import numpy as np

from trimap.from_prior import prior_trimap


def _disc(size: int = 80, radius: float = 24.0, soft: float = 0.0) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    dist = np.hypot(yy - size / 2, xx - size / 2)
    if soft == 0:
        return (dist <= radius).astype(np.float32)
    return np.clip((radius - dist) / soft + 0.5, 0, 1).astype(np.float32)


def test_pipeline_guide_refines_a_matte_and_decides_a_segmentation_mask():
    """A matte is the prior (the band of its own soft edge); a segmentation mask gets the
    segmentation rule's band and no prior."""
    from matting_api.pipeline import guide
    from trimap.from_masks import build_trimap

    mask = _disc(soft=4.0)
    trimap, prior = guide(mask, "matte")
    assert prior is mask and np.array_equal(trimap, prior_trimap(mask))
    trimap, prior = guide(mask, "segmentation")
    assert prior is None and np.array_equal(trimap, build_trimap(mask).trimap)
