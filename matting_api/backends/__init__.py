"""Matting backends and the registry that picks one per worker.

A backend turns an image and its trimap into a matte and the subject's colours:

* ``name``: ``"fba"`` or ``"closed_form"`` (the ``X-Matting-Backend`` header);
* ``device``: ``"cpu"``, ``"cuda"``, ...;
* ``matte(rgb, trimap, prior=None) -> (fg, alpha)`` with ``rgb`` ``H x W x 3`` uint8,
  ``trimap`` ``H x W`` uint8 in {0, 128, 255} and ``prior`` the segmentation's soft mask
  (``H x W`` float32 ``[0, 1]``) when the trimap was derived from it
  (:func:`trimap.from_prior.prior_trimap`), ``None`` for a user's trimap; ``fg``
  ``H x W x 3`` float32 ``[0, 1]`` (the predicted foreground colour), ``alpha`` ``H x W``
  float32 ``[0, 1]``. Known trimap regions come back exactly: alpha 0 where the trimap is
  0, alpha 1 and ``fg == rgb / 255`` where it is 255. Closed-form matting refines the prior
  in the unknown band; FBA uses the trimap only.
* ``info() -> dict``: what ``/readyz`` shows.

:func:`load_matting_backend` reads ``BACKDROP_MATTING_BACKEND``: ``auto`` takes FBA when
``models/FBA.pth`` exists and otherwise the offline closed-form backend (with a loud warning
naming the missing file); ``fba`` and ``closed_form`` force one (``fba`` without its weights
fails at start-up with a message saying where to put them).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from service_common.config import Settings
from service_common.weights import ModelError, missing_message

from .fba import FBA

log = logging.getLogger(__name__)


class MattingBackend(Protocol):
    """What the pipeline needs from a matting backend (see the module docstring)."""

    name: str
    device: str

    def matte(
        self, rgb: np.ndarray, trimap: np.ndarray, prior: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def info(self) -> dict[str, Any]: ...


def load_matting_backend(settings: Settings) -> MattingBackend:
    """Build the backend ``settings.matting_backend`` asks for (once per worker)."""
    choice = settings.matting_backend
    weights = FBA.path(settings.models_dir)
    if choice == "auto":
        if weights.exists():
            choice = "fba"
        else:
            log.warning(
                "MATTING BACKEND FALLBACK: %s. Using the offline closed-form matting "
                "(slower, softer edges) instead.", missing_message(FBA, settings.models_dir),
            )
            choice = "closed_form"
    if choice == "fba":
        if not weights.exists():
            raise ModelError(missing_message(FBA, settings.models_dir))
        from service_common.torch_runtime import set_threads  # local: imports torch

        from .fba.backend import FBABackend

        set_threads(settings.torch_threads)  # once, at app start

        return FBABackend.from_settings(settings)
    if choice == "closed_form":
        from .closed_form import ClosedFormBackend

        return ClosedFormBackend.from_settings(settings)
    raise ModelError(f"unknown matting backend {choice!r}")


def known_regions(rgb: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start values of every backend: ``fg = rgb / 255``, ``alpha = 1`` on sure foreground,
    0 elsewhere. Returns ``(fg H x W x 3 float32, alpha H x W float32)``."""
    fg = rgb.astype(np.float32) / 255.0
    alpha = (trimap == 255).astype(np.float32)
    return fg, alpha
