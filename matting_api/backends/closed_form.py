"""Offline matting backend: closed-form matting (Levin, Lischinski & Weiss 2008), with a prior.

Two uses, one solver (:func:`matting_api.backends.cf_solver.solve_alpha`):

* **refinement** (the pipeline's default): the segmentation's soft mask is the prior; in the
  band the trimap marks unknown (:func:`trimap.from_prior.prior_trimap`) alpha minimises the
  matting Laplacian plus a data term pulling towards the prior, outside it the prior stands;
* **a user's trimap** (no prior): plain closed-form matting of the unknown region.

The foreground colour ``F`` comes from pymatting's multi-level estimation (Germer et al.
2020; at half resolution, corrected at full, :func:`.foreground.estimate_foreground_best`),
or from blur fusion (``foreground=fast``, :func:`.foreground.estimate_foreground_fast`), in
both cases: the composite uses it instead of the photo, so the old background's colour
leaves the soft edges. No weights are needed, which makes this
the default when ``models/FBA.pth`` is absent.

The solver's time and memory grow with the unknown pixels, so the work is restricted to them:

1. crop to the bounding box of the unknown pixels plus :data:`CONTEXT_MARGIN` (the
   Laplacian's 3x3 windows couple pixels 2 px apart, so the solution is that of the whole
   image);
2. if that box's long side exceeds ``max_side`` px (``BACKDROP_CLOSED_FORM_MAX_SIDE``), or it
   holds more than ``max_unknown`` unknown pixels (``BACKDROP_CLOSED_FORM_MAX_UNKNOWN``),
   solve at a smaller working size and upsample the alpha and ``F`` of the unknown pixels
   (a 2 MP photo with a wide user trimap: 24 s -> about 4 s for +2 % SAD, measured when
   this cap was introduced). The refinement of a prior has :data:`PRIOR_CAP_FACTOR` times
   the caps in area (1414 px and 160 000 unknowns by default): its solve starts from the
   prior and costs less per unknown, and on the tuning half of ``bench/refinement.py`` hair
   that flies (wide, unsure priors: up to 170 000 unknowns on a 0.5 MP photo) is recovered
   better at full resolution (flyaway SAD 3.74 -> 3.67 without a cap), so a portrait up to
   2 MP is refined at its own resolution (issue 23, docs/photo_speed.md);
3. known pixels are never touched: alpha stays exactly 0 / 1 and ``F`` equals the image on
   sure foreground.

The non-local (KNN) colour term the solve had before was dropped: it won on the 13 dev photos
it was tuned on (0.78x pymatting's SAD) and lost on held-out alphamatting.com photos (1.05x).

pymatting compiles its numba kernels on first use (several seconds, cached on disk after
the first run); :meth:`~matting_api.backends.WarmedBackend.warm_up` does that at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import cv2
import numba
import numpy as np

from service_common.config import Settings
from service_common.cpu import cores_shared, sharing_cores
from service_common.registry import register_model
from trimap.encoding import BACKGROUND, FOREGROUND, UNKNOWN

from . import WarmedBackend, known_regions, warmup_scene
from .cf_solver import solve_alpha
from .foreground import estimate_foreground_best, estimate_foreground_fast

log = logging.getLogger(__name__)

#: Pixels of known context kept around the unknown band's bounding box.
CONTEXT_MARGIN = 8

#: pymatting's foreground estimation is a numba ``parallel=True`` kernel; numba's fallback
#: "workqueue" threading layer (used when neither OpenMP nor TBB is available) must not be
#: entered from two gunicorn threads at once, so callers take turns here.
_NUMBA_PARALLEL_LOCK = threading.Lock()


@contextlib.contextmanager
def _numba_threads(parallel: bool, all_cores: bool = True) -> Iterator[None]:
    """Around a call of a numba ``parallel=True`` kernel (nothing when not ``parallel``):
    one caller at a time, with all of numba's threads (``all_cores``: the request is alone
    on the cores) or one (a thread-local setting)."""
    if not parallel:
        yield
        return
    with _NUMBA_PARALLEL_LOCK:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS if all_cores else 1)
        yield


def _copy_where(dst: np.ndarray, src: np.ndarray, where: np.ndarray) -> None:
    """``dst[where] = src[where]`` in place (``dst``, ``src``: ``H x W`` or ``H x W x C`` of
    one dtype, ``dst`` may be a crop of a larger array; ``where`` ``H x W`` bool), by OpenCV's
    masked copy: 0.2 ms at 1 MP where numpy's boolean indexing took 10-20. Where OpenCV
    cannot wrap ``dst`` (a layout other than rows of whole pixels) or would not write into
    it, numpy does it."""
    try:
        out = cv2.copyTo(src, np.ascontiguousarray(where).view(np.uint8), dst)
    except cv2.error:
        out = None
    if out is None or not np.shares_memory(out, dst):
        dst[where] = src[where]


#: The caps' multiple for the refinement of a prior: its side cap is ``sqrt`` of it times
#: ``max_side``, its unknown cap this times ``max_unknown`` (see the module docstring).
PRIOR_CAP_FACTOR = 2

#: Smallest side the closed-form solver is given (thinner crops are padded, then cropped back).
MIN_SOLVE_SIDE = 5


@register_model("matting", "closed_form", weights=None, torch=False, title="closed-form matting",
                what="Levin et al. 2008, offline", auto="fallback")
def load(settings: Settings, name: str) -> ClosedFormBackend:
    """Closed-form matting under ``settings``, warmed up."""
    return ClosedFormBackend.from_settings(settings)


class ClosedFormBackend(WarmedBackend):
    """Closed-form matting restricted to the trimap's unknown band, with or without a prior.

    Args:
        max_side: cap on the long side (px) of the unknown band's box at which the solver
            runs; larger boxes are solved downscaled. 0 = no cap. A prior's refinement has
            ``sqrt(PRIOR_CAP_FACTOR)`` times it (and ``PRIOR_CAP_FACTOR`` times ``max_unknown``).
        max_unknown: cap on the unknown pixels the solver sees (downscaled above). 0 = no cap.
        restrict: crop to the unknown band's box (``False`` solves the whole image; only
            for benchmarks).
        epsilon: regularisation of the matting Laplacian.
        cg_rtol: relative tolerance of the conjugate-gradient solve.
        prior_weight, prior_floor, prior_power: the prior's data term
            (:func:`matting_api.backends.cf_solver.prior_confidence`).
    """

    name = "closed_form"
    device = "cpu"

    def __init__(
        self,
        max_side: int = 1000,
        max_unknown: int = 80_000,
        restrict: bool = True,
        epsilon: float = 1e-7,
        cg_rtol: float = 1e-4,
        prior_weight: float = 3e-3,
        prior_floor: float = 0.1,
        prior_power: float = 8.0,
    ) -> None:
        self.max_side = max_side
        self.max_unknown = max_unknown
        self.restrict = restrict
        self.epsilon = epsilon
        self.cg_rtol = cg_rtol
        self.prior_weight = prior_weight
        self.prior_floor = prior_floor
        self.prior_power = prior_power

    @classmethod
    def from_settings(cls, settings: Settings) -> ClosedFormBackend:
        backend = cls(max_side=settings.closed_form_max_side,
                      max_unknown=settings.closed_form_max_unknown)
        backend.warm_up()
        return backend

    def details(self) -> dict[str, Any]:
        return {"max_side": self.max_side, "max_unknown": self.max_unknown,
                "prior_weight": self.prior_weight}

    def warm_up(self) -> None:
        """The base warm-up (a request alone: the solve's parallel kernels), then a prior's
        refinement as one of two requests side by side (its serial kernels), so that no
        first request compiles either."""
        super().warm_up()
        rgb, trimap = warmup_scene()
        with sharing_cores(2):
            self.matte(rgb, trimap, prior=(trimap / 255.0).astype(np.float32), foreground="fast")

    def matte(
        self, rgb: np.ndarray, trimap: np.ndarray, prior: np.ndarray | None = None,
        foreground: str = "best",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Alpha and foreground colour; see :mod:`matting_api.backends` for the contract.

        Args:
            rgb: ``H x W x 3`` uint8.
            trimap: ``H x W`` uint8, 0 / 128 / 255.
            prior: ``H x W`` float32 in ``[0, 1]``, the segmentation's soft mask (refinement),
                or ``None`` (plain closed-form matting of a user's trimap).
            foreground: ``best`` (pymatting's multi-level estimation at half resolution,
                corrected at full) or ``fast`` (blur
                fusion, :mod:`.foreground`: a few box blurs, for video).

        Returns:
            ``(fg H x W x 3 float32 [0, 1], alpha H x W float32 [0, 1])``.
        """
        fg, alpha = known_regions(rgb, trimap)
        unknown = trimap == UNKNOWN
        if not unknown.any():
            return fg, alpha
        height, width = trimap.shape
        if self.restrict:
            margin = CONTEXT_MARGIN
            rows = np.flatnonzero(unknown.any(axis=1))
            cols = np.flatnonzero(unknown.any(axis=0))
            y0 = max(0, int(rows[0]) - margin)
            y1 = min(height, int(rows[-1]) + 1 + margin)
            x0 = max(0, int(cols[0]) - margin)
            x1 = min(width, int(cols[-1]) + 1 + margin)
        else:
            y0, y1, x0, x1 = 0, height, 0, width
        crop_tri = trimap[y0:y1, x0:x1]
        crop_unknown = unknown[y0:y1, x0:x1]
        alpha_view = alpha[y0:y1, x0:x1]
        fg_view = fg[y0:y1, x0:x1]
        if prior is None:
            crop_fg, crop_bg = (crop_tri == FOREGROUND).any(), (crop_tri == BACKGROUND).any()
            if not (crop_fg and crop_bg):
                # Constraints of one kind only: the Laplacian's minimiser is that constant.
                alpha_view[crop_unknown] = 1.0 if crop_fg else 0.0
                return fg, alpha
        crop_prior = None if prior is None else prior[y0:y1, x0:x1]
        a_crop, f_crop = self._solve(rgb[y0:y1, x0:x1], crop_tri, crop_prior, foreground)
        _copy_where(alpha_view, a_crop, crop_unknown)
        _copy_where(fg_view, f_crop, crop_unknown)
        return fg, alpha

    def _scale(self, trimap: np.ndarray, refine: bool = False) -> float:
        """The working scale of a crop: 1, or less to respect ``max_side`` and ``max_unknown``
        (times :data:`PRIOR_CAP_FACTOR`, in area, when ``refine``: a prior's refinement)."""
        height, width = trimap.shape
        factor = PRIOR_CAP_FACTOR if refine else 1
        max_side = self.max_side * factor ** 0.5
        max_unknown = self.max_unknown * factor
        scale = 1.0
        if max_side and max(height, width) > max_side:
            scale = max_side / max(height, width)
        n_unknown = int((trimap == UNKNOWN).sum())
        if max_unknown and n_unknown > max_unknown:
            scale = min(scale, (max_unknown / n_unknown) ** 0.5)
        return scale

    def _solve(
        self, rgb: np.ndarray, trimap: np.ndarray, prior: np.ndarray | None, foreground: str = "best"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Alpha and ``F`` of a crop, at a working size within the caps."""
        height, width = trimap.shape
        scale = self._scale(trimap, refine=prior is not None)
        work_rgb, work_tri, work_prior = rgb, trimap, prior
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            work_tri = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
            if prior is not None:
                work_prior = cv2.resize(prior, size, interpolation=cv2.INTER_AREA)
            kinds = (work_tri == UNKNOWN).any() and (
                prior is not None or ((work_tri == FOREGROUND).any() and (work_tri == BACKGROUND).any()))
            if not kinds:
                work_rgb, work_tri, work_prior, scale = rgb, trimap, prior, 1.0  # too thin: full size
        # The Laplacian's 3x3 windows need a few pixels each way: a thinner image (a 2 px
        # strip) gives a singular system that never converges. Pad by replication, crop back.
        work_h, work_w = work_tri.shape
        pad = ((0, max(0, MIN_SOLVE_SIDE - work_h)), (0, max(0, MIN_SOLVE_SIDE - work_w)))
        if pad[0][1] or pad[1][1]:
            work_rgb = np.pad(work_rgb, (*pad, (0, 0)), mode="edge")
            work_tri = np.pad(work_tri, pad, mode="edge")
            if work_prior is not None:
                work_prior = np.pad(work_prior, pad, mode="edge")
        image = work_rgb.astype(np.float64) / 255.0
        alone = not cores_shared()
        with _numba_threads(alone):
            a = solve_alpha(
                image, work_tri, work_prior,
                epsilon=self.epsilon, prior_weight=self.prior_weight, prior_floor=self.prior_floor,
                prior_power=self.prior_power, rtol=self.cg_rtol, maxiter=2000, parallel=alone,
            )
        if foreground == "fast":
            f = estimate_foreground_fast(image, a)
        else:
            with _numba_threads(True, all_cores=alone):  # pymatting's kernel is parallel=True
                f = estimate_foreground_best(image, a)
        # solve_alpha's alpha and both colour estimates are in [0, 1] already: no clip of
        # the whole frame (two of them cost 10 ms at 1 MP)
        a = a[:work_h, :work_w].astype(np.float32)
        f = f[:work_h, :work_w].astype(np.float32, copy=False)
        if scale < 1.0:
            a = np.clip(cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
            f = np.clip(cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        return a, f
