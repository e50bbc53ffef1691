"""Offline matting backend: closed-form matting (Levin, Lischinski & Weiss 2008) via pymatting.

Alpha comes from :func:`matting_api.backends.nonlocal_cf.solve_alpha`: the closed-form
matting Laplacian plus a small non-local colour term (KNN matting's graph over the band,
weight ``nonlocal_weight``; 0 gives exactly :func:`pymatting.estimate_alpha_cf`), solved by
conjugate gradients. The foreground colour ``F`` comes from
:func:`pymatting.estimate_foreground_ml` (multi-level estimation, Germer et al. 2020). No
weights are needed, which makes it the default when ``models/FBA.pth`` is absent.

The solver's time and memory grow with the pixels it sees, so the work is restricted to the
unknown band of the trimap:

1. crop to the bounding box of the unknown pixels plus a margin (the Laplacian's 3x3 windows
   only couple pixels 2 px apart and the non-local graph only takes known pixels within
   ``ring`` px of the band, so a margin of ``CONTEXT_MARGIN + ring`` gives the same
   solution as the whole image);
2. if that box's long side exceeds ``max_side`` px (``BACKDROP_CLOSED_FORM_MAX_SIDE``), or it
   holds more than ``max_unknown`` unknown pixels (``BACKDROP_CLOSED_FORM_MAX_UNKNOWN``),
   solve at a smaller working size and upsample the alpha and ``F`` of the unknown pixels.
   Measured on the 13 dev photos (~0.5 MP, 5-40 % unknown) with the non-local term: with
   their given trimaps, capping at 80 000 unknown pixels (3 photos have 120 000-180 000)
   costs +9 % mean SAD over the unknown region (3.60 vs 3.30) and saves ~30 % time (the
   worst photo: 5.8 s -> 2.4 s); with the automatic trimaps it costs nothing (mean SAD 30.8
   vs 31.0) and saves ~40 % (worst: 13 s -> 3 s). Plain closed-form: a 2 MP photo with a
   wide band goes from 24 s to ~4 s. The Laplacian alone takes ~450 bytes per pixel of the
   box, hence the side cap;
3. known pixels are never touched: alpha stays exactly 0 / 1 and ``F`` equals the image on
   sure foreground.

pymatting compiles its numba kernels on first use (several seconds, cached on disk after
the first run); :meth:`ClosedFormBackend.warm_up` does that at start-up on a tiny image.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import cv2
import numpy as np

from service_common.config import Settings

from . import known_regions
from .nonlocal_cf import NUMBA_PARALLEL_LOCK, solve_alpha

log = logging.getLogger(__name__)

#: Pixels of known context kept around the unknown band's bounding box.
CONTEXT_MARGIN = 8

#: pymatting's foreground estimation calls numba ``parallel=True`` kernels that must not be
#: entered from two gunicorn threads at once (see :data:`nonlocal_cf.NUMBA_PARALLEL_LOCK`).
_NUMBA_PARALLEL_LOCK = NUMBA_PARALLEL_LOCK


#: Smallest side the closed-form solver is given (thinner crops are padded, then cropped back).
MIN_SOLVE_SIDE = 5

class ClosedFormBackend:
    """Closed-form matting restricted to the trimap's unknown band.

    Args:
        max_side: cap on the long side (px) of the unknown band's box at which the solver
            runs; larger boxes are solved downscaled. 0 = no cap.
        max_unknown: cap on the unknown pixels the solver sees (downscaled above). 0 = no cap.
        restrict: crop to the unknown band's box (``False`` solves the whole image; only
            for benchmarks).
        epsilon: regularisation of the matting Laplacian.
        cg_rtol: relative tolerance of the conjugate-gradient solve (1e-4: on the dev
            photos the alphas match those at 1e-5 to 0.1 % SAD, in 15 % less time).
        nonlocal_weight: weight of the non-local colour term; 0 = plain closed-form matting.
        neighbors, spatial_weight, ring: the non-local term's graph (see
            :func:`matting_api.backends.nonlocal_cf.knn_laplacian_near_band`).
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
        nonlocal_weight: float = 1e-3,
        neighbors: int = 20,
        spatial_weight: float = 0.05,
        ring: float = 10.0,
    ) -> None:
        self.max_side = max_side
        self.max_unknown = max_unknown
        self.restrict = restrict
        self.epsilon = epsilon
        self.cg_rtol = cg_rtol
        self.nonlocal_weight = nonlocal_weight
        self.neighbors = neighbors
        self.spatial_weight = spatial_weight
        self.ring = ring
        self.warmup_ms: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ClosedFormBackend:
        backend = cls(max_side=settings.closed_form_max_side,
                      max_unknown=settings.closed_form_max_unknown)
        backend.warm_up()
        return backend

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "max_side": self.max_side,
            "max_unknown": self.max_unknown,
            "nonlocal_weight": self.nonlocal_weight,
            "warmed_up": self.warmup_ms is not None,
            "warmup_ms": None if self.warmup_ms is None else round(self.warmup_ms),
        }

    def warm_up(self) -> None:
        """Run once on a tiny synthetic image so numba's JIT compiles before any request."""
        started = time.perf_counter()
        rgb = np.zeros((24, 24, 3), dtype=np.uint8)
        rgb[:, 12:] = (200, 120, 40)
        trimap = np.zeros((24, 24), dtype=np.uint8)
        trimap[:, 10:14] = 128
        trimap[:, 14:] = 255
        self.matte(rgb, trimap)
        self.warmup_ms = (time.perf_counter() - started) * 1000.0
        log.info("closed-form matting warmed up in %.0f ms", self.warmup_ms)

    def matte(self, rgb: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alpha and foreground colour; see :mod:`matting_api.backends` for the contract.

        Args:
            rgb: ``H x W x 3`` uint8.
            trimap: ``H x W`` uint8, 0 / 128 / 255.

        Returns:
            ``(fg H x W x 3 float32 [0, 1], alpha H x W float32 [0, 1])``.
        """
        fg, alpha = known_regions(rgb, trimap)
        unknown = trimap == 128
        if not unknown.any():
            return fg, alpha
        has_fg = bool((trimap == 255).any())
        has_bg = bool((trimap == 0).any())
        if not (has_fg and has_bg):
            # With constraints of one kind only, the Laplacian's minimiser is that constant.
            alpha[unknown] = 1.0 if has_fg else 0.0
            return fg, alpha

        height, width = trimap.shape
        if self.restrict:
            margin = CONTEXT_MARGIN + (math.ceil(self.ring) if self.nonlocal_weight > 0 else 0)
            rows = np.flatnonzero(unknown.any(axis=1))
            cols = np.flatnonzero(unknown.any(axis=0))
            y0 = max(0, int(rows[0]) - margin)
            y1 = min(height, int(rows[-1]) + 1 + margin)
            x0 = max(0, int(cols[0]) - margin)
            x1 = min(width, int(cols[-1]) + 1 + margin)
        else:
            y0, y1, x0, x1 = 0, height, 0, width
        crop_rgb = rgb[y0:y1, x0:x1]
        crop_tri = trimap[y0:y1, x0:x1]
        crop_unknown = unknown[y0:y1, x0:x1]
        alpha_view = alpha[y0:y1, x0:x1]
        fg_view = fg[y0:y1, x0:x1]
        crop_fg, crop_bg = (crop_tri == 255).any(), (crop_tri == 0).any()
        if not (crop_fg and crop_bg):  # the band touches one kind of known region only
            alpha_view[crop_unknown] = 1.0 if crop_fg else 0.0
            return fg, alpha
        a_crop, f_crop = self._solve(crop_rgb, crop_tri, max(height, width))
        alpha_view[crop_unknown] = a_crop[crop_unknown]
        fg_view[crop_unknown] = f_crop[crop_unknown]
        return fg, alpha

    def _solve(
        self, rgb: np.ndarray, trimap: np.ndarray, picture_side: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Alpha and ``F`` of a crop, at a working size of at most ``max_side``.

        ``picture_side`` is the long side (px) of the whole picture the crop comes from.
        """
        from pymatting import estimate_foreground_ml

        height, width = trimap.shape
        scale = 1.0
        if self.max_side and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
        n_unknown = int((trimap == 128).sum())
        if self.max_unknown and n_unknown > self.max_unknown:
            scale = min(scale, (self.max_unknown / n_unknown) ** 0.5)
        work_rgb, work_tri = rgb, trimap
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            work_tri = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
            if not ((work_tri == 255).any() and (work_tri == 0).any() and (work_tri == 128).any()):
                work_rgb, work_tri, scale = rgb, trimap, 1.0  # too thin to survive: full size
        # The Laplacian's 3x3 windows need a few pixels each way: a thinner image (a 2 px
        # strip) gives a singular system that never converges. Pad by replication, crop back.
        work_h, work_w = work_tri.shape
        pad = ((0, max(0, MIN_SOLVE_SIDE - work_h)), (0, max(0, MIN_SOLVE_SIDE - work_w)))
        if pad[0][1] or pad[1][1]:
            work_rgb = np.pad(work_rgb, (*pad, (0, 0)), mode="edge")
            work_tri = np.pad(work_tri, pad, mode="edge")
        image = work_rgb.astype(np.float64) / 255.0
        a = solve_alpha(
            image, work_tri,
            epsilon=self.epsilon, nonlocal_weight=self.nonlocal_weight,
            neighbors=self.neighbors, spatial_weight=self.spatial_weight, ring=self.ring,
            length_unit=picture_side * scale, rtol=self.cg_rtol, maxiter=2000,
        )
        with _NUMBA_PARALLEL_LOCK:
            f = estimate_foreground_ml(image, a)
        a = np.clip(a[:work_h, :work_w], 0.0, 1.0).astype(np.float32)
        f = np.clip(f[:work_h, :work_w], 0.0, 1.0).astype(np.float32)
        if scale < 1.0:
            a = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
            f = cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(a, 0.0, 1.0), np.clip(f, 0.0, 1.0)
