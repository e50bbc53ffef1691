"""The pipeline's guide: which trimap rule a segmentation answer gets (the rules themselves
are tested in ``tests/trimap``)."""

from __future__ import annotations

import numpy as np
from masks import disc

from trimap.from_prior import prior_trimap


def test_pipeline_guide_refines_a_matte_and_decides_a_segmentation_mask():
    """A matte is the prior (the band of its own soft edge); a segmentation mask gets the
    segmentation rule's band and no prior."""
    from matting_api.pipeline import guide
    from trimap.from_masks import build_trimap

    mask = disc(soft=4.0)
    trimap, prior = guide(mask, "matte")
    assert prior is mask and np.array_equal(trimap, prior_trimap(mask))
    trimap, prior = guide(mask, "segmentation")
    assert prior is None and np.array_equal(trimap, build_trimap(mask).trimap)
